"""``synthetic:<atlas>[?QUERY]``: a world atlas as a rebuild source, generated on first use.

Query keys: ``size`` (unit, ci, bench; default unit), ``cells``, ``genes``,
``seed`` (default 0), ``dir`` (where the atlas, its sample tables and truth are
written; default ``$CYTODASK_SYNTHETIC_DIR/<atlas>`` or
``synthetic-atlases/<atlas>`` under the working directory). In a rebuild spec a
relative ``dir`` is relative to the spec, like every other path, so the spec's
sample-table paths can point into it (``graphs/cima.toml``). Generation is
atomic file by file and reused while the spec is unchanged (``world.json``).
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from pathlib import Path

from cytodask.demo.world.spec import WorldSpec, world_spec

PREFIX = "synthetic:"
_KEYS = ("size", "cells", "genes", "seed", "dir")


def parse_synthetic(text: str) -> tuple[WorldSpec, Path]:
    """``synthetic:<atlas>[?QUERY]`` -> (spec, output directory); errors name the key and the fix."""
    if not text.startswith(PREFIX):
        raise ValueError(f"{text!r} is not a synthetic source; write synthetic:<atlas>[?cells=N&seed=S&dir=DIR]")
    atlas, _, query = text[len(PREFIX):].partition("?")
    args: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key not in _KEYS:
            raise ValueError(f"{text}: unknown key {key!r}; known: {list(_KEYS)}")
        if key in args:
            raise ValueError(f"{text}: {key!r} given twice")
        args[key] = value
    ints = {}
    for key in ("cells", "genes", "seed"):
        if key in args:
            try:
                ints[key] = int(args[key])
            except ValueError:
                raise ValueError(f"{text}: {key}={args[key]!r} is not an integer") from None
    spec = world_spec(atlas, args.get("size"), n_cells=ints.get("cells"), n_genes=ints.get("genes"),
                      seed=ints.get("seed", 0))
    default = Path(os.environ.get("CYTODASK_SYNTHETIC_DIR", "synthetic-atlases")) / atlas
    return spec, Path(args.get("dir") or default).expanduser()


def resolve_synthetic(text: str, base: str | os.PathLike[str]) -> str:
    """``text`` with a relative ``dir`` made absolute against ``base`` (a spec's directory)."""
    head, _, query = text.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    pairs = [(k, str((Path(base) / Path(v).expanduser()).resolve()) if k == "dir" and
              not Path(v).expanduser().is_absolute() else v) for k, v in pairs]
    return head + ("?" + urllib.parse.urlencode(pairs, safe="/:()") if pairs else "")


def open_synthetic(text: str):
    """Generate (or reuse) the atlas of ``text`` and open its ``.h5ad`` as a local source."""
    from cytodask.demo.world.writer import write_world
    from cytodask.ingest.h5ad import LocalH5ADSource

    spec, out = parse_synthetic(text)
    paths = write_world(spec, out, echo=lambda m: print(m, file=sys.stderr, flush=True))
    return LocalH5ADSource(paths.h5ad)
