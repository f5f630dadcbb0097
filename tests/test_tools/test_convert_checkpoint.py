"""tools/convert_checkpoint.py: an iCAR checkpoint converted to a weights-only ovdense file
(what it prints, what it holds, converting it again); layout errors are reported, not
raised. Its refusals of bad input: tests/test_tools/test_tool_errors.py."""
import os

import torch

from ovdense import checkpoints as ck
from ovdense.testing.backbones import icar_state
from ovdense.testing.backbones import write_checkpoint as write
from ovdense.testing.configs import REPO


def test_convert_tool_writes_weights_only_file(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint',
        os.path.join(REPO, 'tools', 'convert_checkpoint.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _, icar = icar_state()
    src = write(tmp_path / 'icar.pth', icar)
    dst = str(tmp_path / 'out' / 'icar_ovdense.pth')
    assert tool.main([src, dst, '--layout', 'icar']) == 0
    out = capsys.readouterr().out
    assert 'source layout: icar' in out and 'text_projection: 128 -> 12' in out
    assert 'embed_dims=16' in out and 'text_tower:      icar, 3 tensors' in out
    loaded = torch.load(dst, weights_only=True)
    assert set(loaded) == {'ovdense_format', 'format_version', 'source_layout', 'source_naming',
                           'source_file', 'source_model_name', 'backbone_naming',
                           'backbone_arch', 'backbone',
                           'text_projection', 'text_tower_layout', 'text_tower', 'dropped_keys'}
    again = ck.load_converted(dst)
    ref = ck.convert(icar)
    for k in ref['backbone']:
        assert torch.equal(again['backbone'][k], ref['backbone'][k])
    assert not [p for p in os.listdir(tmp_path / 'out') if p.endswith('.tmp')]
    assert loaded['source_model_name'] == ''
    # converting an ovdense file again keeps everything (and can name the model)
    assert tool.main([dst, str(tmp_path / 'again.pth'), '--model-name', 'icar-swin-t']) == 0
    again2 = torch.load(str(tmp_path / 'again.pth'), weights_only=True)
    assert again2['source_model_name'] == 'icar-swin-t'
    assert again2['source_layout'] == 'icar' and again2['text_tower'].keys() == \
        loaded['text_tower'].keys()
    # errors are reported, not raised
    assert tool.main([src, str(tmp_path / 'x.pth'), '--layout', 'open_clip']) == 2
    assert "asked to be read as 'open_clip'" in capsys.readouterr().err
