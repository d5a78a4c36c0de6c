"""Every example in the docstrings of scratchnet.functional runs and prints what it says."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import scratchnet.functional

# the package and its modules that hold examples (">>>"); a module without any has nothing
# to run, and listing it would only add a test that cannot fail
MODULES = [
    module for module in [scratchnet.functional] + [
        importlib.import_module(f"scratchnet.functional.{info.name}")
        for info in pkgutil.iter_modules(scratchnet.functional.__path__)]
    if ">>>" in inspect.getsource(module)
]


def test_some_modules_hold_examples():
    assert MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0       # the examples were found, not skipped
    assert result.failed == 0
