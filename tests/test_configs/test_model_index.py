"""model-index.yml and configs/*/metafile.yml (OpenMMLab's model-index format) stay in step
with the configs: every config listed once, every listed path real, names unique, and no metric
that the README does not report as measured."""
import glob
import os.path as osp
import re

import yaml

# the repository root: tests/test_configs/ -> tests/ -> repo (no ovdense import: a 1 s test)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(relative: str):
    with open(osp.join(REPO, relative), encoding='utf-8') as f:
        return yaml.safe_load(f)


def _metafiles():
    index = _load('model-index.yml')
    assert isinstance(index, dict) and set(index) == {'Import'}, 'model-index.yml: only Import'
    return index['Import']


def _models():
    for metafile in _metafiles():
        for model in _load(metafile).get('Models') or []:
            yield metafile, model


def _shipped_configs():
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, REPO) for p in paths
                  if '_base_' not in osp.relpath(p, REPO).split(osp.sep))


def _github_slug(heading: str) -> str:
    slug = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return slug.replace(' ', '-')


def test_index_imports_every_metafile_once():
    imports = _metafiles()
    assert len(imports) == len(set(imports))
    on_disk = sorted(osp.relpath(p, REPO) for p in
                     glob.glob(osp.join(REPO, 'configs', '**', 'metafile.yml'), recursive=True))
    assert sorted(imports) == on_disk


def test_every_config_is_listed_exactly_once():
    listed = [model['Config'] for _, model in _models()]
    duplicates = sorted({c for c in listed if listed.count(c) > 1})
    assert not duplicates, f'listed more than once: {duplicates}'
    missing = sorted(set(_shipped_configs()) - set(listed))
    assert not missing, f'configs missing from the metafiles: {missing}'
    unknown = sorted(c for c in listed if not osp.isfile(osp.join(REPO, c)))
    assert not unknown, f'metafiles list configs that do not exist: {unknown}'


def test_metafiles_are_well_formed_with_unique_names():
    model_names, collection_names = [], []
    for metafile in _metafiles():
        content = _load(metafile)
        assert set(content) <= {'Collections', 'Models'}, metafile
        collections = {c['Name']: c for c in content.get('Collections') or []}
        collection_names += [c['Name'] for c in content.get('Collections') or []]
        for collection in collections.values():
            assert collection['Paper']['URL'].startswith('https://'), collection['Name']
            assert collection['Paper']['Title'], collection['Name']
        for model in content['Models']:
            name = model['Name']
            model_names.append(name)
            assert osp.dirname(model['Config']) == osp.dirname(metafile), name
            assert name == osp.splitext(osp.basename(model['Config']))[0], name
            assert model['In Collection'] in collections, name
            meta = model['Metadata']
            assert 'Training Data' in meta or 'Training Data' in \
                collections[model['In Collection']].get('Metadata', {}), name
            assert 'Epochs' in meta or 'Iterations' in meta, name
            assert 'Weights' not in model or model['Weights'], name
    assert len(model_names) == len(set(model_names)), 'model names must be unique'
    assert len(collection_names) == len(set(collection_names)), 'collection names unique'


def test_readme_links_resolve():
    for metafile in _metafiles():
        for collection in _load(metafile).get('Collections') or []:
            path, _, anchor = collection['README'].partition('#')
            assert osp.isfile(osp.join(REPO, path)), collection['README']
            if anchor:
                with open(osp.join(REPO, path), encoding='utf-8') as f:
                    slugs = {_github_slug(line.lstrip('#')) for line in f
                             if line.startswith('#')}
                assert anchor in slugs, f'{metafile}: no heading for {collection["README"]}'


def test_results_are_only_measured_numbers():
    """Results must come from a run: each value is one the README reports (the demo table);
    configs that were never trained (no GPU here) have no Results at all."""
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    with_results = []
    for metafile, model in _models():
        for result in model.get('Results') or []:
            assert set(result) == {'Task', 'Dataset', 'Metrics'}, model['Name']
            for metric, value in result['Metrics'].items():
                assert isinstance(value, (int, float)), (model['Name'], metric)
                assert re.search(rf'\b{value:.1f}\b', readme), (
                    f'{model["Name"]}: {metric} {value} is not a number the README reports')
            with_results.append(model['Name'])
    assert all('ovdense-demo' in name for name in with_results), with_results
