"""Optional extras in tests: skip when an extra is NOT INSTALLED, fail when it is installed
but broken (a skip would hide a broken install behind a row of 's')."""
import importlib.util
import types

import pytest


def require_mmaction(module_level: bool = False) -> types.ModuleType:
    """mmaction (through ovdense's import shim), or a skip if the 'action' extra is absent
    (of the whole test module with ``module_level``)."""
    if importlib.util.find_spec('mmaction') is None:
        pytest.skip(reason='mmaction2 is not installed (extra "action")',
                    allow_module_level=module_level)
    from ovdense.compat import import_mmaction
    module = import_mmaction()
    if module is None:  # installed, yet unusable: import_mmaction warned with the reason
        pytest.fail('mmaction2 is installed but does not import (see the warning above); '
                    'a broken install must fail the tests, not skip them')
    return module
