"""The version guard (ovdense/utils/versions.py): an unsupported OpenMMLab package is named
at import."""
import pytest


def test_version_guard_names_the_package(monkeypatch):
    from packaging.version import Version

    from ovdense.utils import versions
    real = versions.installed_version
    monkeypatch.setattr(versions, 'installed_version',
                        lambda d: Version('2.2.0') if d == 'mmcv' else real(d))
    with pytest.raises(ImportError, match=r'mmcv==2.2.0 is installed but ovdense supports'):
        versions.check_versions()
