"""tools/check_stock_configs.py: the stock-config sweep reports one line per config, and its
summary counts them (a config that adopts the text head, and one refused in one line)."""
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('family,folders,expected', [
    ('decode', ['fcn', 'point_rend'], ['OK      fcn/', 'REFUSED point_rend/', 'OK 1, REFUSED 1']),
    ('dense', ['yolof'], ['OK      yolof/', 'OK 1'])])
def test_sweep_reports_each_config(family, folders, expected):
    run = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'check_stock_configs.py'),
                          family, '--only', *folders], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    for start in expected:
        assert any(line.startswith(start) for line in lines), run.stdout[-2000:]
