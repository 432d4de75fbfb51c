"""The docstring examples of impls/ and proofs_check/, run under their installed names
(sublin_bench.impls, sublin_bench.proofs_check). pytest's --doctest-modules covers
sublin_bench/ itself; collecting the two mapped folders by path would import them a
second time as top-level packages."""

import doctest
import importlib
import pkgutil

import pytest

import sublin_bench.impls
import sublin_bench.proofs_check


def _modules():
    for pkg in (sublin_bench.impls, sublin_bench.proofs_check):
        yield pkg.__name__
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            yield info.name


MODULES = sorted(_modules())


def test_every_mapped_module_is_found():
    assert "sublin_bench.impls.band" in MODULES and "sublin_bench.proofs_check.width" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
