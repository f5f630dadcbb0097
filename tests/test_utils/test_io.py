"""File reading and writing (ovdense/utils/io.py): crafted or unreadable checkpoints are
refused without running code or advising weights_only=False, and atomic writes respect the
umask and keep their temporary files recognisable."""
import os
import stat

import pytest
import torch
import torch.nn.functional as F

from ovdense.testing.fakes import embed_fake_vocabulary, fake_embedder
from ovdense.text import save_classifier_file
from ovdense.utils import OvdenseFileError, safe_torch_load
from ovdense.utils.io import atomic_write


class Payload:
    """Unpickling this would run a command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_crafted_checkpoint_is_refused_and_code_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)}, path)
    with pytest.raises(OvdenseFileError, match='evil.pth.*weights-only'):
        safe_torch_load(str(path))
    from mmengine.runner import CheckpointLoader
    with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_load_errors_never_recommend_weights_only_false(tmp_path):
    """torch's own message says 'Re-running torch.load with weights_only set to False will
    likely succeed': for a crafted file that is the one thing not to do."""
    evil = tmp_path / 'evil.pt'
    torch.save({'call': os.system}, evil)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a torch file')
    with pytest.raises(OvdenseFileError) as unsafe:
        safe_torch_load(str(evil))
    with pytest.raises(OvdenseFileError) as unreadable:
        safe_torch_load(str(garbage))
    assert 'allow-list (Trying to load unsupported GLOBAL posix.system' in str(unsafe.value) \
        or 'allow-list (Unsupported global' in str(unsafe.value)
    assert str(unreadable.value) == (
        f"cannot read checkpoint {str(garbage)!r}: the file is truncated or not a torch "
        'checkpoint (Unsupported operand 110)')
    for err in (unsafe.value, unreadable.value):
        assert 'weights_only' not in str(err) and 'False' not in str(err)


@pytest.fixture
def restore_umask():
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.parametrize('mask, mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=['umask022', 'umask077', 'umask002'])
def test_atomic_writes_respect_the_umask(tmp_path, restore_umask, mask, mode):
    """mkstemp creates 0600 files: a shared cache or a classifier file handed to a colleague
    would be unreadable to them. Written files get 0666 less the umask, like open()."""
    os.umask(mask)
    with atomic_write(str(tmp_path / 'plain.bin')) as f:
        f.write(b'data')
    embeddings = F.normalize(torch.randn(3, 8), dim=-1)
    for suffix in ('.npy', '.pt'):
        save_classifier_file(str(tmp_path / f'classifier{suffix}'), embeddings, {})
    _, cache_path = embed_fake_vocabulary(fake_embedder(tmp_path / 'cache'))
    for path in ('plain.bin', 'classifier.npy', 'classifier.pt', cache_path):
        assert stat.S_IMODE(os.stat(tmp_path / path).st_mode) == mode, path


def test_atomic_write_keeps_its_temporary_file_recognisable(tmp_path):
    seen = []
    with atomic_write(str(tmp_path / 'out.pt')) as f:
        seen.extend(os.listdir(tmp_path))
        f.write(b'x')
    (tmp,) = seen
    assert tmp.startswith('.out.pt.') and tmp.endswith('.tmp')
    assert os.listdir(tmp_path) == ['out.pt']
