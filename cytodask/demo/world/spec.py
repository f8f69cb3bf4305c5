"""Shape and seed of a synthetic-world atlas: :class:`WorldSpec`, the named sizes and :func:`world_spec`."""

from __future__ import annotations

from dataclasses import dataclass

from cytodask.demo.spec import N_CYTOSIG_GENES, check_int

#: The three atlases of the world, in a fixed order (their index salts the random streams).
ATLASES = ("cima", "inflammation", "scatlas")
#: Named sizes: (cells, genes) per atlas. unit: tests (seconds); ci: end-to-end CI; bench: 1M+ streamed.
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "unit": {"cima": (12_000, 6_000), "inflammation": (20_000, 6_000), "scatlas": (20_000, 6_000)},
    "ci": {"cima": (60_000, 8_000), "inflammation": (100_000, 8_000), "scatlas": (100_000, 8_000)},
    "bench": {"cima": (1_000_000, 20_000), "inflammation": (1_000_000, 20_000), "scatlas": (1_000_000, 20_000)},
}
#: Version of the generator; written to truth.json and the stamp (bump when the data or truth.json change,
#: so that written atlases are regenerated). 2: named genes' baseline e^1 and markers +4 log2 (were e^-1, +3);
#: 3: truth.json gains the marker genes (exhaustion and CAF rows, lineage_markers); counts unchanged.
GENERATOR = 3


@dataclass(frozen=True)
class WorldSpec:
    """One atlas of the synthetic world (validated on creation; hashable, so models are cached).

    Parameters
    ----------
    atlas
        ``"cima"``, ``"inflammation"`` or ``"scatlas"``.
    n_cells
        Number of cells, ordered by sample. The samples (their number and
        metadata) do not depend on it: only how many cells each has.
    n_genes
        Genes: the CytoSig genes, the named producer and marker genes, then
        synthetic fillers ``SYN00001``...; at least the named ones.
    seed
        Non-negative integer seed; the atlas index salts it, so two atlases with
        one seed share no random stream.
    tile_cells
        Cells per generation tile (the unit of randomness, as in the demo atlas).
    """

    atlas: str
    n_cells: int = 20_000
    n_genes: int = 6_000
    seed: int = 0
    tile_cells: int = 1024

    def __post_init__(self) -> None:
        if self.atlas not in ATLASES:
            raise ValueError(f"atlas={self.atlas!r} is unknown; choose one of {list(ATLASES)}")
        check_int("n_cells", self.n_cells, 1, "a positive number of cells")
        check_int("n_genes", self.n_genes, N_CYTOSIG_GENES + 200,
                  f">= {N_CYTOSIG_GENES + 200} (the CytoSig genes and the named producer and marker genes)")
        check_int("seed", self.seed, 0, "a non-negative integer")
        check_int("tile_cells", self.tile_cells, 1, "a positive number of cells per tile")


@dataclass(frozen=True)
class TileSpec:
    """What the demo tile machinery reads (``n_cells``, ``n_genes``, ``tile_cells``, ``seed``).

    ``seed`` is the SeedSequence entropy ``(seed, 1000 + atlas index)``: the
    world's streams never coincide with the demo atlas's or another atlas's.
    """

    n_cells: int
    n_genes: int
    tile_cells: int
    seed: tuple[int, int]


def tile_spec(spec: WorldSpec) -> TileSpec:
    """The :class:`TileSpec` of ``spec``."""
    return TileSpec(spec.n_cells, spec.n_genes, spec.tile_cells, (spec.seed, 1000 + ATLASES.index(spec.atlas)))


def world_spec(atlas: str, size: str | None = None, *, n_cells: int | None = None, n_genes: int | None = None,
               seed: int = 0, tile_cells: int = 1024) -> WorldSpec:
    """The spec of ``atlas`` at a named ``size`` (default ``"unit"``), or with explicit ``n_cells``/``n_genes``.

    Examples
    --------
    >>> world_spec("inflammation", size="unit").n_cells
    20000
    >>> world_spec("cima", n_cells=5000).n_genes
    6000
    """
    if atlas not in ATLASES:
        raise ValueError(f"atlas={atlas!r} is unknown; choose one of {list(ATLASES)}")
    if size is not None and size not in SIZES:
        raise ValueError(f"size={size!r} is unknown; choose one of {list(SIZES)} or give n_cells")
    cells, genes = SIZES[size or "unit"][atlas]
    if size is None and n_cells is not None and n_genes is None:
        genes = SIZES["unit"][atlas][1] if n_cells <= 100_000 else SIZES["bench"][atlas][1]
    return WorldSpec(atlas, n_cells=cells if n_cells is None else n_cells,
                     n_genes=genes if n_genes is None else n_genes, seed=seed, tile_cells=tile_cells)
