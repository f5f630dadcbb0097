"""Classifier files (ovdense/text/embeddings.py: save_classifier_file, load_classifier_file;
the .npy / .pt pair tools/build_text_classifier.py writes): the pair's digest and a mixed pair
left by a killed or full-disk write, rows that are not finite or not normalisable, unreadable
files, and files built for other classes."""
import errno
import hashlib
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovdense.testing.fakes import FAKE_VOCAB as VOCAB
from ovdense.testing.fakes import FullDisk
from ovdense.testing.text import FILE_CLASSES as CLASSES
from ovdense.testing.text import classifier_file, unit_rows
from ovdense.text import load_classifier_file, save_classifier_file
from ovdense.utils import OvdenseFileError, safe_torch_load
from ovdense.utils import io as ovio


def _rows(seed, rows=3, dim=8):
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)),
                       dim=-1)


def _save_pair(stem, embeddings):
    for suffix in ('.npy', '.pt'):
        save_classifier_file(f'{stem}{suffix}', embeddings, {'class_names': VOCAB.split(',')})


def test_classifier_pair_records_the_npy_digest(tmp_path):
    stem = str(tmp_path / 'classifier')
    embeddings = _rows(0)
    _save_pair(stem, embeddings)
    digest = hashlib.sha256(np.load(stem + '.npy').tobytes()).hexdigest()
    assert safe_torch_load(stem + '.pt')['embeddings_sha256'] == digest
    for suffix in ('.npy', '.pt'):
        loaded, _ = load_classifier_file(stem + suffix, 3, 8, VOCAB.split(','))
        torch.testing.assert_close(loaded, embeddings)


def _mixed_pair_message(stem):
    return (f'classifier files {stem + ".npy"!r} and {stem + ".pt"!r} do not match: the .pt '
            'was written with embeddings of sha256 ')


def test_kill_between_the_two_writes_leaves_a_pair_that_is_refused(tmp_path):
    """The build tool writes X.npy, then X.pt: killed in between, a new .npy sits beside the
    old .pt."""
    stem = str(tmp_path / 'classifier')
    _save_pair(stem, _rows(0))
    save_classifier_file(stem + '.npy', _rows(1), {})  # ... and the process dies here
    for suffix in ('.npy', '.pt'):
        with pytest.raises(OvdenseFileError) as err:
            load_classifier_file(stem + suffix, 3, 8)
        assert str(err.value).startswith(_mixed_pair_message(stem))
        assert 'rebuild both with tools/build_text_classifier.py' in str(err.value)
        assert '\n' not in str(err.value)


def test_full_disk_on_the_second_write_leaves_a_pair_that_is_refused(tmp_path, monkeypatch):
    stem = str(tmp_path / 'classifier')
    _save_pair(stem, _rows(0))
    real_fdopen = os.fdopen
    save_classifier_file(stem + '.npy', _rows(1), {})
    monkeypatch.setattr(ovio.os, 'fdopen', lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(OSError) as err:  # torch.save's 'unexpected pos' names no cause
        save_classifier_file(stem + '.pt', _rows(1), {})
    assert str(err.value) == f'[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: ' \
        f'{stem + ".pt"!r}'  # the target's name, not the temporary file's
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['classifier.npy', 'classifier.pt']  # no .tmp
    with pytest.raises(OvdenseFileError, match='do not match'):
        load_classifier_file(stem + '.npy', 3, 8)


def test_pair_written_before_digests_still_loads(tmp_path):
    """A .pt without 'embeddings_sha256' (older ovdense) is not checked against the .npy."""
    stem = str(tmp_path / 'classifier')
    np.save(stem + '.npy', _rows(1).numpy())
    torch.save({'embeddings': _rows(0), 'class_names': VOCAB.split(','), 'dim': 8},
               stem + '.pt')
    torch.testing.assert_close(load_classifier_file(stem + '.npy', 3, 8)[0], _rows(1))
    torch.testing.assert_close(load_classifier_file(stem + '.pt', 3, 8)[0], _rows(0))


def test_unrelated_sibling_checkpoint_is_not_a_pair(tmp_path):
    """X.pt that is no classifier file (a tower checkpoint sharing the stem) is ignored."""
    stem = str(tmp_path / 'clip')
    np.save(stem + '.npy', _rows(1).numpy())
    torch.save({'state_dict': {'w': torch.zeros(2)}}, stem + '.pt')
    torch.testing.assert_close(load_classifier_file(stem + '.npy', 3, 8)[0], _rows(1))


def _file_head(tmp_path):
    """A text classifier on two classes, read from a .npy (no text tower needed)."""
    from ovdense.text import TextCosineClassifier
    return TextCosineClassifier(32, 'a,b', embeddings_file=classifier_file(
        tmp_path / 'ab.npy', unit_rows(2)))


@pytest.mark.parametrize('suffix', ['.npy', '.pt'])
@pytest.mark.parametrize('value, fault', [
    (float('nan'), 'is not finite'), (float('inf'), 'is not finite'), (0.0, 'has zero norm'),
    (1e30, 'has norm 5.66e+30, outside what float32 can normalise'),
], ids=['nan', 'inf', 'zero', 'huge'])
def test_classifier_file_with_a_bad_row_is_refused(tmp_path, suffix, value, fault):
    """One such row makes every prediction NaN (NaN, inf) or a constant score (a zero row,
    or values whose norm overflows float32); the file is refused when it is loaded."""
    from ovdense.text import TextCosineClassifier, load_classifier_file
    from ovdense.utils import OvdenseFileError
    embeddings = unit_rows()
    embeddings[3] = value
    path = classifier_file(tmp_path / f'bad{suffix}', embeddings)
    expected = (f"classifier file {path!r}: row 3 ('zebra') {fault}; every class embedding "
                'must be a finite, non-zero vector')
    with pytest.raises(OvdenseFileError) as err:  # the vocabulary swap (set_model_vocabulary)
        _file_head(tmp_path).set_vocabulary(','.join(CLASSES), path)
    assert str(err.value) == expected
    with pytest.raises(OvdenseFileError) as err:  # a config's embeddings_file
        TextCosineClassifier(32, ','.join(CLASSES), embeddings_file=path)
    assert str(err.value) == expected if suffix == '.pt' else expected.replace(" ('zebra')", '')
    load_classifier_file(classifier_file(tmp_path / f'good{suffix}', unit_rows()), 4, 32,
                         CLASSES)


def test_unreadable_classifier_files_are_named(tmp_path):
    from ovdense.text import TextCosineClassifier
    from ovdense.utils import OvdenseFileError
    empty = tmp_path / 'empty.npy'
    empty.write_bytes(b'')
    listed = tmp_path / 'listed.pt'
    torch.save({'embeddings': unit_rows().tolist(), 'class_names': list(CLASSES)}, listed)
    for path, message in (
            (empty, 'cannot read classifier file {!r}: the file is empty or truncated'),
            (listed, "classifier file {!r}: 'embeddings' is a list, expected a float tensor of "
                     'shape (classes, dim)')):
        with pytest.raises(OvdenseFileError) as err:
            TextCosineClassifier(32, ','.join(CLASSES), embeddings_file=str(path))
        assert str(err.value) == message.format(str(path))


@pytest.mark.parametrize('stored, difference', [
    (CLASSES[::-1], "position 0 holds 'zebra', the vocabulary has 'cat' there"),
    (('cat', 'dog', 'ox', 'zebra'), "position 2 holds 'ox', the vocabulary has 'yak' there"),
], ids=['reversed', 'other-names'])
def test_classifier_file_of_other_classes_is_refused(tmp_path, stored, difference):
    """Rows are matched to classes by position: every class would be scored with another
    class's embedding. A .npy holds no names: it is accepted when the row count matches."""
    from ovdense.utils import OvdenseFileError
    head = _file_head(tmp_path)
    path = classifier_file(tmp_path / 'other.pt', unit_rows(), stored)
    with pytest.raises(OvdenseFileError) as err:
        head.set_vocabulary(','.join(CLASSES), path)
    assert str(err.value) == f'classifier file {path!r} was built for other classes: {difference}'
    assert head.vocabulary.names == ('a', 'b')
    head.set_vocabulary(','.join(CLASSES), classifier_file(tmp_path / 'other.npy', unit_rows(),
                                                            stored))
    assert head.vocabulary.names == CLASSES
