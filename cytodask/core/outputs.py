"""Output paths: never write over, delete or move what cytodask did not create.

Every command that writes a directory (``convert STORE``, ``rebuild --output``)
checks its output path first, before anything is touched:

- the output must not be, contain or lie inside one of the run's inputs
  (:func:`refuse_overlap`);
- it must not be a regular file, nor lie below one, and must be creatable
  (:func:`check_creatable`);
- an existing non-empty directory must be one cytodask made
  (:func:`refuse_foreign`); the caller says how it recognises its own.

Each refusal is a ``ValueError`` naming the path and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def refuse_overlap(output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], *, what: str) -> None:
    """Refuse an ``output`` that is, contains or lies inside one of ``inputs``.

    ``what`` names the output in the message (e.g. ``"atlas store"``).
    """
    out = _resolved(output)
    for raw in inputs:
        inp = _resolved(raw)
        if out == inp:
            how = "is the input itself"
        elif out in inp.parents:
            how = f"contains the input {inp}"
        elif inp in out.parents:
            how = f"lies inside the input {inp}"
        else:
            continue
        raise ValueError(
            f"{what} {output} {how}; writing there would replace or change the input. Choose an output "
            f"path outside the input, e.g. {inp.with_suffix('').name}.zarr beside it"
        )


def check_creatable(path: str | os.PathLike[str], *, what: str, flag: str) -> None:
    """Refuse a ``path`` that is a regular file, lies below one, or cannot be created.

    ``flag`` names the option or argument that sets ``path`` in the message.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a directory; pass a directory path as {flag}")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe != path and not probe.is_dir():
        raise ValueError(
            f"{what} {path} lies below {probe}, which is a regular file, so no directory can be created there; "
            f"pass a {flag} inside a directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"{what} {path}: permission denied writing in {probe}; pass a {flag} in a directory you can write "
            "or ask its owner for write permission"
        )


def refuse_foreign(path: str | os.PathLike[str], *, owned: bool, what: str, flag: str) -> None:
    """Refuse an existing non-empty directory that cytodask did not create (``owned`` false)."""
    path = Path(path)
    if owned or not path.is_dir():
        return
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    shown = ", ".join(entries[:5]) + (f", … ({len(entries)} entries)" if len(entries) > 5 else "")
    raise ValueError(
        f"{what} {path} is an existing directory that cytodask did not create (it holds {shown}); "
        f"nothing was changed. Pass a new or empty directory as {flag}, or move those files away first"
    )
