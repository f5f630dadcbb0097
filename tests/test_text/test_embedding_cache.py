"""The text-embedding cache (ovdense/text/embeddings.py: EmbeddingCache, FrozenTextEmbedder):
its key, a bad or full disk that must not fail a run (one warning, the computed embeddings, no
temporary file left), corrupt entries rebuilt, stale temporary files removed, and two
processes building the same entries at the same moment."""
import errno
import os
import os.path as osp
import time
import warnings

import pytest
import torch

from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.fakes import FAKE_VOCAB as VOCAB
from ovdense.testing.fakes import FullDisk, embed_fake_vocabulary, fake_embedder
from ovdense.text import PromptStyle, load_vocabulary
from ovdense.utils import io as ovio


def test_cache_key_is_the_same_before_and_after_the_tower_is_built(tmp_path):
    from ovdense.text import towers
    from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder
    config = tiny_text_tower_cfg(str(tmp_path))
    checkpoint = str(tmp_path / 'tower.pt')
    torch.save(towers.TextTower(**config).encoder.state_dict(), checkpoint)
    embedder = FrozenTextEmbedder(dict(config, checkpoint=checkpoint),
                                  EmbeddingCache(str(tmp_path / 'c')))
    before = embedder.fingerprint()
    embedder.tower  # noqa: B018  build it, as a cache miss does
    assert embedder.fingerprint() == before


def _expected():
    """The embeddings built without any cache."""
    return fake_embedder('/unused').embeddings(load_vocabulary(VOCAB),
                                               PromptStyle.build('single'), use_cache=False)[0]


def _messages(caught):
    return [str(w.message) for w in caught]


def _run_unwritable(cache_dir, reason):
    """Two builds into an unwritable cache: both return the embeddings, one warning names
    the directory and the reason, nothing is left in the directory."""
    expected = _expected()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        first, first_path = embed_fake_vocabulary(fake_embedder(cache_dir))
        second, second_path = embed_fake_vocabulary(fake_embedder(cache_dir))
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)
    assert first_path is None and second_path is None
    messages = _messages(caught)
    assert messages == [f'text embedding cache {str(cache_dir)!r} cannot be written ({reason}); '
                        'using the computed embeddings without caching them'], messages
    assert '\n' not in messages[0]


def test_read_only_cache_directory_warns_once_and_returns_embeddings(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        if os.access(cache_dir, os.W_OK):  # root ignores the mode: fail as the kernel would
            def denied(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            monkeypatch.setattr(ovio.tempfile, 'mkstemp', denied)
        _run_unwritable(cache_dir, 'Permission denied')
        assert os.listdir(cache_dir) == []
    finally:
        cache_dir.chmod(0o755)


def test_file_in_place_of_the_cache_directory_warns_once(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.write_bytes(b'not a directory')
    _run_unwritable(cache_dir, 'it is a file, not a directory')
    assert cache_dir.read_bytes() == b'not a directory'


def test_full_disk_warns_once_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    real_fdopen = os.fdopen
    monkeypatch.setattr(ovio.os, 'fdopen', lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    _run_unwritable(cache_dir, os.strerror(errno.ENOSPC))
    assert os.listdir(cache_dir) == []


def _cache_entry_path(tmp_path):
    """Where the cache entry of the test's vocabulary goes (built once to find out)."""
    probe = fake_embedder(tmp_path / 'probe')
    _, path = embed_fake_vocabulary(probe)
    return os.path.basename(path)


def test_cache_entry_holding_a_bare_tensor_is_rebuilt(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    entry = cache_dir / _cache_entry_path(tmp_path)
    torch.save(torch.zeros(3, 8), entry)
    embedder = fake_embedder(cache_dir)
    with pytest.warns(UserWarning) as caught:
        embeddings, path = embed_fake_vocabulary(embedder)
    assert _messages(caught) == [
        f"text embedding cache entry {str(entry)!r} is corrupt (it holds a Tensor, not a cache "
        "entry (a dict with 'key' and an 'embeddings' tensor)); rebuilding it"]
    torch.testing.assert_close(embeddings, _expected())
    assert path == str(entry) and embedder.tower.encodes == 1
    again = fake_embedder(cache_dir)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        # the rebuilt entry is valid
        torch.testing.assert_close(embed_fake_vocabulary(again)[0], embeddings)
    assert again.tower.encodes == 0


def test_cache_entry_that_is_a_directory_is_rebuilt_and_not_cached(tmp_path):
    cache_dir = tmp_path / 'cache'
    entry = cache_dir / _cache_entry_path(tmp_path)
    entry.mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        embeddings, path = embed_fake_vocabulary(fake_embedder(cache_dir))
    torch.testing.assert_close(embeddings, _expected())
    assert path is None and entry.is_dir() and os.listdir(entry) == []
    assert _messages(caught) == [
        f'text embedding cache entry {str(entry)!r} is corrupt (it is a directory, not a cache '
        'file); rebuilding it',
        f'text embedding cache {str(cache_dir)!r} cannot be written ({entry.name!r} in it is a '
        'directory); using the computed embeddings without caching them']
    assert sorted(os.listdir(cache_dir)) == [entry.name]  # no temporary file left


@pytest.mark.parametrize('content', [b'not a torch file', b'\x80\x02garbage', b''],
                         ids=['text', 'bad-pickle', 'empty'])
def test_garbage_cache_entry_is_called_unreadable_not_unsafe(tmp_path, content):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    entry = cache_dir / _cache_entry_path(tmp_path)
    entry.write_bytes(content)
    with pytest.warns(UserWarning) as caught:
        embeddings, _ = embed_fake_vocabulary(fake_embedder(cache_dir))
    torch.testing.assert_close(embeddings, _expected())
    (message,) = _messages(caught)
    assert message.startswith(f'text embedding cache entry {str(entry)!r} is corrupt (the file '
                              'is truncated or not a torch checkpoint (')
    assert message.endswith('); rebuilding it') and '\n' not in message
    assert 'allow-list' not in message and 'weights_only' not in message


def test_cache_removes_its_own_stale_temporary_files(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    name = _cache_entry_path(tmp_path)
    stale = cache_dir / f'.{name}.k2j3h4x_.tmp'  # left by a killed writer
    fresh = cache_dir / f'.{"0" * 40}.pt.abcd1234.tmp'  # a writer still at work
    foreign = cache_dir / '.notes.txt.abcd1234.tmp'  # not the cache's
    for path in (stale, fresh, foreign):
        path.write_bytes(b'partial')
    hours_ago = time.time() - 2 * 3600
    for path in (stale, foreign):
        os.utime(path, (hours_ago, hours_ago))
    embed_fake_vocabulary(fake_embedder(cache_dir))
    assert sorted(os.listdir(cache_dir)) == sorted([name, fresh.name, foreign.name])
    from ovdense.utils.io import remove_stale_temp_files
    assert remove_stale_temp_files(str(cache_dir), '*.txt', max_age=3600) == [str(foreign)]


# ------------------------------------------------------------------ concurrent builds


CACHE_VOCABULARIES = ['red circle,blue star,green square', 'zebra,lion,tiger,bear',
                      'aerosol can,air conditioner', 'cat,dog,horse,sheep,cow,elephant']


def _cache_builder(barrier, tower_cfg, cache_dir, out_path):
    """Builds each vocabulary's class embeddings through the cache (spawned twice by the test
    below). The tower's encode waits for the other process's: both have then found no cache
    file, both build, and both write the same entry at the same moment."""
    import warnings

    from ovdense.text import PromptStyle, load_vocabulary
    from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder
    embedder = FrozenTextEmbedder(tower_cfg, EmbeddingCache(cache_dir))
    tower = embedder.tower
    encode = tower.encode

    def encode_together(*args, **kwargs):
        barrier.wait(timeout=300)
        return encode(*args, **kwargs)

    tower.encode = encode_together
    results = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for spec in CACHE_VOCABULARIES:
            embeddings, path = embedder.embeddings(load_vocabulary(spec),
                                                   PromptStyle.build('vild'))
            results.append((embeddings, path))
    torch.save({'results': results, 'warnings': [str(w.message) for w in caught]}, out_path)


@pytest.mark.slow
def test_concurrent_processes_build_one_valid_cache(tmp_path):
    """Two processes build the same text-embedding cache entries at the same moment (four
    vocabularies; both miss the cache, build and write each entry): both succeed without a
    'corrupt cache' warning, each entry ends as one file that loads and equals a
    single-process build, and no temporary file is left."""
    import multiprocessing

    from ovdense.testing import tiny_text_tower_cfg
    from ovdense.text import PromptStyle, load_vocabulary
    from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder, cache_key
    from ovdense.text.towers import TextTower

    config = tiny_text_tower_cfg(str(tmp_path / 'tower'))
    checkpoint = str(tmp_path / 'tower.pt')
    torch.save(TextTower(**config).encoder.state_dict(), checkpoint)
    tower_cfg = dict(config, checkpoint=checkpoint)  # same weights, same key in every process
    cache_dir = str(tmp_path / 'cache')

    context = multiprocessing.get_context('spawn')
    barrier = context.Barrier(2)
    outputs = [str(tmp_path / f'builder{i}.pt') for i in range(2)]
    builders = [context.Process(target=_cache_builder,
                                args=(barrier, tower_cfg, cache_dir, out))
                for out in outputs]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join(timeout=600)
        if builder.is_alive():
            builder.kill()
    assert [b.exitcode for b in builders] == [0, 0]

    files = sorted(os.listdir(cache_dir))
    assert len(files) == len(CACHE_VOCABULARIES) and all(f.endswith('.pt') for f in files), files
    reference = FrozenTextEmbedder(tower_cfg, EmbeddingCache(str(tmp_path / 'unused')))
    cache = EmbeddingCache(cache_dir)
    built = [torch.load(out, weights_only=False) for out in outputs]
    for record in built:
        assert not [w for w in record['warnings'] if 'cache' in w], record['warnings']
    for index, spec in enumerate(CACHE_VOCABULARIES):
        vocabulary, style = load_vocabulary(spec), PromptStyle.build('vild')
        expected, _ = reference.embeddings(vocabulary, style, use_cache=False)
        paths = {record['results'][index][1] for record in built}
        assert len(paths) == 1 and osp.basename(paths.pop()) in files
        stored = cache.load(cache_key(reference.fingerprint(), vocabulary, style),
                            len(vocabulary))
        assert stored is not None
        torch.testing.assert_close(stored, expected, rtol=1e-6, atol=1e-7)
        # the file is what one of the builders computed, bit for bit
        assert any(torch.equal(stored, record['results'][index][0]) for record in built)
