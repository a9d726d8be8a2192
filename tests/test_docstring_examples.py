"""Every ``Examples`` section in lowdim's docstrings runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import lowdim
from lowdim.errors import LowdimError

MODULES = sorted(m.name for m in pkgutil.walk_packages(lowdim.__path__, "lowdim.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    try:
        module = importlib.import_module(name)
    except (ImportError, LowdimError) as exc:  # an optional dependency is missing
        pytest.skip(f"{name}: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples:
            runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed (see output)"
