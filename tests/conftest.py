import pytest


@pytest.fixture(autouse=True)
def isolated_embedding_cache(tmp_path, monkeypatch):
    """Each test gets its own text-embedding cache, so no test sees another's files."""
    monkeypatch.setenv('OVDENSE_CACHE_DIR', str(tmp_path / 'embedding_cache'))
