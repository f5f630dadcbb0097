"""tools/build_text_classifier.py: the .npy / .pt it writes equal the direct computation;
user errors (unknown vocabulary, missing checkpoint, bad vocabulary file, a directory as
output) are one line and leave nothing written."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from ovdense.testing import tiny_clip_config
from ovdense.testing.configs import REPO, load_tool
from ovdense.testing.runs import ONE_THREAD_ENV as ENV
from ovdense.text import PromptStyle, TextTower, build_class_embeddings, load_vocabulary
from ovdense.utils import safe_torch_load


TOOL = 'tools/build_text_classifier.py'


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def test_writes_npy_and_pt_matching_direct_computation(tmp_path):
    config = tiny_clip_config(str(tmp_path))
    checkpoint = tmp_path / 'tower.pt'
    torch.save(TextTower(config).encoder.state_dict(), checkpoint)
    vocab = tmp_path / 'vocab.txt'
    vocab.write_text('red star: a star coloured red\nblue ring\n')
    out = tmp_path / 'out' / 'classifier.npy'
    result = run_tool('--model', config, '--checkpoint', str(checkpoint), '--vocab',
                      str(vocab), '--templates', 'vild', '--out', str(out))
    assert result.returncode == 0, result.stderr
    array = np.load(out)
    record = safe_torch_load(str(tmp_path / 'out' / 'classifier.pt'))
    assert array.shape == (2, 32) and array.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-6)
    assert record['class_names'] == ['red star', 'blue ring']
    assert len(record['templates']) == 14 and record['dim'] == 32
    expected = build_class_embeddings(TextTower(config, checkpoint=str(checkpoint)),
                                      load_vocabulary(str(vocab)), PromptStyle.build('vild'))
    np.testing.assert_allclose(array, expected.numpy(), atol=1e-6)
    assert torch.equal(record['embeddings'], torch.from_numpy(array))


def test_user_errors_are_one_line(tmp_path, capsys):
    """The entry point in a new interpreter once; the second case through run_cli in this
    process, as the tool's __main__ runs it (no interpreter start)."""
    from ovdense.utils.cli import run_cli
    config = tiny_clip_config(str(tmp_path))
    common = ['--model', config, '--out', str(tmp_path / 'x.npy')]
    result = run_tool(*common, '--vocab', 'not_a_dataset')
    missing = ['--vocab', 'a,b', '--checkpoint', str(tmp_path / 'missing.pt')]
    code = run_cli(lambda: load_tool('build_text_classifier').main(common + missing))
    for returncode, stderr, needle in [(result.returncode, result.stderr, 'unknown vocabulary'),
                                       (code, capsys.readouterr().err, 'missing.pt')]:
        assert returncode == 2
        last_line = stderr.strip().splitlines()[-1]
        assert last_line.startswith('error:') and needle in last_line
        assert 'Traceback' not in stderr
    assert not (tmp_path / 'x.npy').exists()


@pytest.mark.parametrize('content, needle', [
    ('', 'is empty'),
    ('cat\ndog\ncat\n', "duplicate class names: 'cat'"),
    (b'caf\xe9\n', 'not valid UTF-8'),
])
def test_bad_vocabulary_file_leaves_no_classifier_file(tmp_path, content, needle):
    """tools/build_text_classifier.py: the error names the file and the fault; nothing is
    written."""
    from ovdense.testing import tiny_clip_config
    from ovdense.text import VocabularyError
    vocab = tmp_path / 'classes.txt'
    if isinstance(content, bytes):
        vocab.write_bytes(content)
    else:
        vocab.write_text(content, encoding='utf-8')
    out = tmp_path / 'out' / 'classes.npy'
    with pytest.raises(VocabularyError, match=f'classes.txt.*{needle}'):
        load_tool('build_text_classifier').main(['--model', tiny_clip_config(str(tmp_path)),
                                             '--vocab', str(vocab), '--out', str(out)])
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def _build_tool_output(tmp_path, out):
    from ovdense.testing import tiny_clip_config
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'build_text_classifier.py'), '--model',
         tiny_clip_config(str(tmp_path)), '--vocab', 'cat,dog', '--out', out],
        capture_output=True, text=True, env=ENV, cwd=REPO)


@pytest.mark.parametrize('out, directory', [
    ('missing_dir/', 'missing_dir'), ('existing_dir', 'existing_dir'),
    ('existing_dir/.npy', 'existing_dir')])
def test_build_tool_refuses_a_directory_as_output(tmp_path, out, directory):
    """'--out DIR/' used to write the hidden files DIR/.npy and DIR/.pt."""
    (tmp_path / 'existing_dir').mkdir()
    out = osp.join(str(tmp_path), out)
    result = _build_tool_output(tmp_path, out)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
    example = osp.join(str(tmp_path), directory, 'classifier.npy')
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: --out {out!r} names a directory, not a file: give a path such as '
        f'{example!r} (OUT.npy and OUT.pt are written)')
    assert not (tmp_path / 'missing_dir').exists() and not os.listdir(tmp_path / 'existing_dir')
