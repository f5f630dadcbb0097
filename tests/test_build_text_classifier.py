import subprocess
import sys

import numpy as np
import torch

from ovdense.testing import tiny_clip_config
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


def test_user_errors_are_one_line(tmp_path):
    config = tiny_clip_config(str(tmp_path))
    for args, needle in [
        (['--vocab', 'not_a_dataset'], 'unknown vocabulary'),
        (['--vocab', 'a,b', '--checkpoint', str(tmp_path / 'missing.pt')], 'missing.pt'),
    ]:
        result = run_tool('--model', config, '--out', str(tmp_path / 'x.npy'), *args)
        assert result.returncode == 2
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith('error:') and needle in last_line
        assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'x.npy').exists()
