"""Cost of the text-generated classifier, side by side with stock heads (``make bench``).

Prints a table of ratios measured in one run and writes them as JSON; see
``docs/benchmarks.md`` and ``ovdense/benchmark.py``.

    python tools/benchmark.py            # full sizes (< 10 min on a 2-core CPU)
    python tools/benchmark.py --tiny     # the harness at tiny sizes (seconds)
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from ovdense.benchmark import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
