"""cytodask.demo.world: three synthetic atlases (CIMA-, Inflammation- and scAtlas-like) with known answers.

Each atlas is a pure function of a :class:`WorldSpec` (atlas, n_cells, n_genes,
seed), generated with the demo atlas's machinery (tiles, SeedSequence streams,
the exact sparse NB sampler): deterministic, independent of block boundaries,
streamed to disk with memory flat in the number of cells. Its truth table
(:func:`truth`, ``truth.json``) lists every planted effect, the null set, the
label crosswalk to the common vocabulary, producers and compositions; the
per-cell truths no label reveals (exhausted CD8 T cells, CAF subtypes) are in
:func:`truth_cells` (``truth_cells.csv``). What the three atlases plant follows
ANALYSES.md §8 (the README's "Synthetic world" section: sizes, files, truth schema).

Modules: :mod:`.spec` (sizes, :func:`world_spec`), :mod:`.genes` (gene space,
producers, markers), :mod:`.model` (the expression model), :mod:`.atlases`
(one design per atlas), :mod:`.cells` (obs, blocks), :mod:`.tables`,
:mod:`.truth`, :mod:`.writer`.

Examples
--------
>>> from cytodask.demo.world import world_spec, write_world, truth
>>> spec = world_spec("inflammation", size="unit")          # doctest: +SKIP
>>> paths = write_world(spec, "out/inflammation")           # doctest: +SKIP
"""

from __future__ import annotations

from cytodask.demo.world.cells import cell_metadata, generate_block, iter_blocks, truth_cells
from cytodask.demo.world.spec import ATLASES, SIZES, WorldSpec, world_spec
from cytodask.demo.world.tables import sample_tables
from cytodask.demo.world.truth import truth
from cytodask.demo.world.writer import WorldPaths, world_paths, write_world

__all__ = [
    "ATLASES",
    "SIZES",
    "WorldPaths",
    "WorldSpec",
    "cell_metadata",
    "generate_block",
    "iter_blocks",
    "sample_tables",
    "truth",
    "truth_cells",
    "world_paths",
    "world_spec",
    "write_world",
]
