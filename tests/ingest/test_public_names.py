"""Every public name of :mod:`cytodask.ingest` is the object it documents, whatever was imported first.

A submodule named like a function it exports (``ingest/convert.py`` exporting ``convert``) is bound
on the package when any code imports the submodule, so ``from cytodask.ingest import convert`` then
returns the module: CI failed this way (``TypeError: 'module' object is not callable``) once a test
imported the submodule first. Run in a fresh interpreter so the import order is the one stated.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import cytodask.ingest as ingest


@pytest.mark.parametrize("name", sorted(ingest.__all__))
def test_name_survives_every_submodule_being_imported_first(name: str):
    code = (
        "import importlib, pkgutil, cytodask.ingest as pkg\n"
        "for m in pkgutil.iter_modules(pkg.__path__):\n"
        "    try:\n"
        "        importlib.import_module(f'cytodask.ingest.{m.name}')\n"
        "    except ImportError:\n"
        "        pass  # an optional source whose extra is not installed\n"
        f"from cytodask.ingest import {name} as obj\n"
        "import types\n"
        "assert not isinstance(obj, types.ModuleType), obj\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
