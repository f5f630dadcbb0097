import os

import pytest


def pytest_configure(config):
    """Under pytest-xdist (``make test``), the workers share the cores instead of each
    running torch with one thread per core."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))
    if workers > 1:
        import torch
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault('OMP_NUM_THREADS', str(threads))  # the tools the tests start


@pytest.fixture(autouse=True)
def isolated_embedding_cache(tmp_path, monkeypatch):
    """Each test gets its own text-embedding cache, so no test sees another's files."""
    monkeypatch.setenv('OVDENSE_CACHE_DIR', str(tmp_path / 'embedding_cache'))
