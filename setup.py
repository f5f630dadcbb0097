"""ovdense: open-vocabulary dense prediction with a jointly trained vision-language model."""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open(osp.join('ovdense', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


# mmcv 2.1.0 must be built with its ops against the installed torch (see tools/setup_env.sh);
# listing it here only checks that a compatible build is present.
INSTALL_REQUIRES = [
    # mmengine resolves `mmdet::`/`mmseg::` config bases through pkg_resources, which
    # setuptools >= 81 no longer ships.
    'setuptools<81',
    'torch>=2.1',
    'torchvision',
    'mmcv>=2.0.0,<2.2.0',
    'mmengine>=0.10.0,<1.0.0',
    'mmdet>=3.3.0,<3.4.0',
    'mmsegmentation>=1.2.0,<1.3.0',
    'open_clip_torch>=2.20',
    'lvis',
    'pycocotools',
    'numpy',
    'pyyaml',
    'tqdm',
    # iCAR's text tower is a Hugging Face RoBERTa; mmaction2 1.2.0 needs transformers < 5.
    'transformers>=4.30,<5',
    'ftfy',
    'regex',
]
EXTRAS = {
    'tests': ['pytest>=7', 'pytest-timeout', 'pytest-xdist>=3'],
    'action': ['mmaction2==1.2.0', 'av', 'importlib_metadata'],
}
EXTRAS['all'] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name='ovdense',
    version=read_version(),
    description='Open-vocabulary detection and segmentation with text-generated cosine '
                'classifiers (iCAR) for MMDetection, MMSegmentation and MMAction2',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['ovdense', 'ovdense.*']),
    package_data={'ovdense': ['resources/README.md', 'resources/vocabularies/*.json',
                              'resources/templates/*.txt', 'resources/text_towers/*.json',
                              'resources/checkpoint_layouts/*.json',
                              'resources/checkpoint_layouts/README.md']},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    zip_safe=False,
)
