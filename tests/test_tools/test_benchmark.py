"""The benchmark harness (tools/benchmark.py): a tiny-size run writes
valid JSON with every row, and the ratio/verdict arithmetic. No assertions on timings."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from ovdense.testing.configs import REPO, load_tool

bench = load_tool('benchmark')


class _FakeDevice:
    def sync(self):
        pass


def test_interleave_alternates_order_and_times_every_call():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    times = bench.interleave(variants, reps=3, warmup=1, device=_FakeDevice())
    assert calls == list('abc') + list('abc') + list('cba') + list('abc')
    assert {k: len(v) for k, v in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_rows_report_the_median_of_paired_ratios_and_the_verdict():
    row = bench.make_row('r', 'g', 'label', 'A', 'B', [1.0, 2.0, 4.0], [1.1, 2.0, 4.8],
                         target=('<=', 1.05))
    assert row['ratio'] == pytest.approx(1.1) and row['ratio_min'] == pytest.approx(1.0)
    assert row['ratio_max'] == pytest.approx(1.2) and row['met'] is False
    assert row['a_time']['median_ms'] == pytest.approx(2000.0)
    speed = bench.make_row('s', 'g', 'label', 'A', 'B', [10.0, 12.0], [0.1, 0.1],
                           target=('>=', 100.0), speedup=True)
    assert speed['ratio'] == pytest.approx(110.0) and speed['met'] is True
    assert bench.make_row('n', 'g', 'l', 'A', 'B', [1.0], [1.0])['met'] is None


def test_peak_memory_sees_a_large_allocation():
    import torch
    device = bench.Device('cpu')
    peak = device.peak_bytes(lambda: torch.ones(16, 2 ** 20).sum())  # 64 MiB
    assert 64 * 2 ** 20 <= peak < 65 * 2 ** 20


@pytest.mark.slow
def test_tiny_benchmark_run_writes_every_row(tmp_path):
    out = tmp_path / 'bench.json'
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), '--tiny', '--out', str(out),
         '--work-dir', str(tmp_path / 'work')],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report['sizes']['name'] == 'tiny'
    rows = {row['id']: row for row in report['rows']}
    assert set(rows) == set(bench.ROW_IDS)
    for row in rows.values():
        for key in ('ratio', 'ratio_min', 'ratio_max'):
            assert math.isfinite(row[key]) and row[key] > 0, (row['id'], key)
        assert row['ratio_min'] <= row['ratio'] <= row['ratio_max']
        assert row['a_time']['n'] == row['b_time']['n'] >= 1
        assert (row['target'] is None) == (row['met'] is None)
        assert row['label'] in proc.stdout
    assert {r['target'] for r in rows.values() if r['target']} == {
        '<= 1.03', '<= 1.02', '<= 1.1', '<= 1.05', '>= 1', '>= 100', '<= 1.5', '<= 1.3',
        '<= 0.8'}
    assert set(rows['peer_infer']['extra']['inference_peak_mb']) == {'stock', 'text'}
    assert set(rows['peer_head']['extra']['peak_mb']) == {'stock', 'text'}
    assert {'peer_head_memory', 'peer_infer_memory', 'dense_large_memory'} <= {
        c['id'] for c in report['memory']}
    # stock FCOS / DINO configs whose heads adopted the text classifier by their type alone
    assert rows['dense_infer']['a'].startswith('stock FCOSHead')
    assert rows['dense_infer']['b'].startswith('TextFCOSHead')
    assert rows['detr_train']['b'].startswith('TextDINOHead')
    memory = rows['det_train']['extra']['memory']
    assert set(memory) == {'stock', 'text'}
    assert rows['build_vs_open_clip']['extra']['max_abs_diff_vs_open_clip'] < 1e-4
    assert rows['vocab_large']['extra']['embedding_resident_mb'] > 0
    assert str(out) in proc.stdout


def test_realistic_preset_is_swin_t_mask_rcnn_with_a_256_dim_text_head(tmp_path):
    """--size realistic: mmdet's Swin-T Mask R-CNN on ICARSwin-T, D = 256, both heads
    class-agnostic (the text head's only form), the stock head a plain Shared2FCBBoxHead."""
    sizes, groups = bench.PRESETS['realistic']
    assert set(groups) == {'detection', 'vocabulary', 'peer', 'segmentation'}
    ctx = bench.Context(sizes, bench.Device('cpu'), str(tmp_path))
    text, stock = ctx.det_model('text', 80), ctx.det_model('stock', 80)
    assert type(text.backbone).__name__ == 'ICARSwin'
    assert list(text.neck.in_channels) == [96, 192, 384, 768]  # Swin-T's stages
    assert text.roi_head.bbox_head.fc_cls.embed_dim == 256
    assert type(stock.roi_head.bbox_head).__name__ == 'Shared2FCBBoxHead'
    assert stock.roi_head.bbox_head.fc_cls.out_features == 81
    assert text.roi_head.bbox_head.fc_cls.in_features == 1024
