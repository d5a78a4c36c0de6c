"""Every example in the docstrings of scratchnet.functional runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import scratchnet.functional

MODULES = [
    importlib.import_module(f"scratchnet.functional.{info.name}")
    for info in pkgutil.iter_modules(scratchnet.functional.__path__)
]


@pytest.mark.parametrize("module", [scratchnet.functional] + MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.failed == 0


def test_some_examples_exist():
    assert sum(doctest.testmod(m).attempted for m in MODULES) > 0
