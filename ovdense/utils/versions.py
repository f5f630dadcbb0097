"""Version guards: fail early, with the fix, when a dependency is outside the tested range."""
from importlib import metadata

from packaging.version import Version

# (distribution, import name, minimum inclusive, maximum exclusive)
SUPPORTED = (
    ('mmcv', 'mmcv', '2.0.0', '2.2.0'),
    ('mmengine', 'mmengine', '0.10.0', '1.0.0'),
    ('mmdet', 'mmdet', '3.3.0', '3.4.0'),
    ('mmsegmentation', 'mmseg', '1.2.0', '1.3.0'),
)


def installed_version(distribution: str):
    try:
        return Version(metadata.version(distribution))
    except metadata.PackageNotFoundError:
        return None


def check_versions() -> None:
    problems = []
    for distribution, module, low, high in SUPPORTED:
        version = installed_version(distribution)
        if version is None:
            problems.append(f'{distribution} is not installed (need >={low},<{high})')
        elif not Version(low) <= version < Version(high):
            problems.append(f'{distribution}=={version} is installed but ovdense supports '
                            f'{module} >={low},<{high}')
    if problems:
        raise ImportError('ovdense cannot start: ' + '; '.join(problems)
                          + '. Run `make env` (tools/setup_env.sh) to install the tested stack.')
