"""Each vdsmlib package says what it owns and exports what users call, and nothing else."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import vdsmlib

PACKAGES = sorted(
    name
    for _, name, is_package in pkgutil.walk_packages(vdsmlib.__path__, "vdsmlib.")
    if is_package
)
#: packages whose modules are imported one by one (their __init__ imports nothing, so a light
#: install ships only the modules it uses)
BY_MODULE = {"vdsmlib.docker", "vdsmlib.dsm"}
#: at most this many names in a package's ``__all__``
SHORT = 30


def test_the_packages_are_the_concepts() -> None:
    assert PACKAGES == [
        "vdsmlib.checkpoints",
        "vdsmlib.cli",
        "vdsmlib.docker",
        "vdsmlib.dsm",
        "vdsmlib.evidence",
        "vdsmlib.notebook",
        "vdsmlib.pipeline",
        "vdsmlib.qemu",
        "vdsmlib.services",
        "vdsmlib.testing",
        "vdsmlib.webapi",
        "vdsmlib.wizard",
    ]


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_says_what_it_owns_and_exports_a_short_list(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__ and len(package.__doc__.strip()) > 40, f"{name}: no docstring"
    exported = package.__all__
    assert len(exported) <= SHORT, f"{name} exports {len(exported)} names"
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for item in exported:
        assert hasattr(package, item), f"{name}.__all__ names {item}, which it does not have"
    if name in BY_MODULE:
        assert exported == []


def test_the_public_names_are_few() -> None:
    total = sum(len(importlib.import_module(name).__all__) for name in PACKAGES)
    total += len(vdsmlib.__all__)
    print(f"{total} names exported by vdsmlib's packages")
    assert total <= 150
