"""Matching expression genes to signature genes.

Expression genes are identified by symbol; Ensembl IDs are translated through
a symbol column of ``var`` (``feature_name``, ``gene_symbols``, ...). Matching
runs in tiers, each only over genes still unmatched:

0. exact symbol (R SecAct and secactpy do only this);
1. ``aliases=True``: both sides mapped to the official NCBI symbol through the
   shipped alias table (so ``DDX58`` in a signature meets ``RIGI`` in the data);
2. ``ignore_case=True``: upper-cased names (mouse ``Il6`` meets ``IL6``).

Tiers 1 and 2 are off by default: they add genes R SecAct does not use (44 more
for the SecAct reference profile), which changes the results and breaks exact
parity with R.

When several expression genes claim one signature gene, the best tier wins,
then the largest total expression (R SecAct's ``rm_duplicates``), then the
first. Common genes keep the expression order (R's ``intersect(rownames(Y),
rownames(X))``), which the ``"srand"`` permutation tables depend on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

SYMBOL_COLUMNS = (
    "feature_name", "gene_symbols", "gene_symbol", "symbol", "symbols",
    "gene_name", "gene_names", "gene", "Symbol",
)
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")


@dataclass(frozen=True)
class GeneMatch:
    """Common genes between an expression matrix and a signature.

    Attributes
    ----------
    expr_idx
        Positions of the common genes in the expression's genes (expression order).
    sig_idx
        Positions of the matching signature rows, aligned with ``expr_idx``.
    genes
        Signature gene names of the common genes.
    coverage
        Per signature: common genes with a non-zero weight / genes with a
        non-zero weight (NaN for an all-zero signature).
    """

    expr_idx: np.ndarray
    sig_idx: np.ndarray
    genes: pd.Index
    coverage: pd.Series

    @property
    def n_genes(self) -> int:
        return len(self.expr_idx)


def looks_like_ensembl(names: Sequence[str]) -> bool:
    """True when most names are Ensembl gene IDs (``ENSG00000...``, ``ENSMUSG...``)."""
    names = _as_str_index(names)
    prefixed = names[np.char.startswith(names.to_numpy(dtype=str), "ENS")]  # vectorised; the regex runs on these
    hits = sum(bool(_ENSEMBL.match(n)) for n in prefixed)
    return len(names) > 0 and hits > len(names) / 2


def _as_str_index(names: Sequence[str]) -> pd.Index:
    """Names as a pandas Index of Python strings (no per-element work when they already are)."""
    index = names if isinstance(names, pd.Index) else pd.Index(list(names))
    if index.dtype == object and pd.api.types.infer_dtype(index, skipna=False) == "string":
        return index
    return pd.Index([str(n) for n in index], dtype=object)


def resolve_symbols(
    names: Sequence[str], var: pd.DataFrame | None = None, *, symbol_column: str | None = None
) -> pd.Index:
    """Gene symbols for expression genes.

    Uses ``var[symbol_column]`` when given; otherwise names that are mostly
    Ensembl IDs are replaced by the first of :data:`SYMBOL_COLUMNS` present in
    ``var``. Missing symbols fall back to the original identifier.
    """
    names = _as_str_index(names)
    if symbol_column is None:
        if not looks_like_ensembl(names):
            return names
        found = [c for c in SYMBOL_COLUMNS if var is not None and c in var.columns]
        if not found:
            cols = list(var.columns) if var is not None else []
            raise ValueError(
                "The expression genes are Ensembl IDs (e.g. "
                f"{names[0]!r}) and no gene-symbol column was found in var (columns: {cols}). "
                f"Fix: pass symbol_column='<column with symbols>' (looked for {list(SYMBOL_COLUMNS)}), "
                "or index the genes by symbol."
            )
        symbol_column = found[0]
    if var is None or symbol_column not in var.columns:
        raise ValueError(f"symbol_column={symbol_column!r} is not a column of var.")
    symbols = var[symbol_column].astype(object).to_numpy()
    out = [str(s) if isinstance(s, str) and s else n for s, n in zip(symbols, names, strict=False)]
    return pd.Index(out)


@lru_cache(maxsize=1)
def alias_table() -> dict[str, str]:
    """NCBI alias -> official symbol (human; identity pairs omitted)."""
    with resources.as_file(resources.files(__package__) / "data" / "alias2symbol.tsv.gz") as path:
        df = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False, na_filter=False)
    return dict(zip(df["alias"], df["symbol"], strict=False))


def match_genes(
    expr_genes: Sequence[str],
    signature: pd.DataFrame,
    *,
    aliases: bool = False,
    ignore_case: bool = False,
    totals: np.ndarray | Callable[[], np.ndarray] | None = None,
    min_genes: int = 100,
) -> GeneMatch:
    """Match expression genes to the rows of ``signature``.

    Parameters
    ----------
    expr_genes
        Expression gene symbols (see :func:`resolve_symbols`).
    signature
        Genes x signatures.
    aliases, ignore_case
        Enable the alias and case-insensitive tiers (module docs).
    totals
        Total expression per expression gene, to choose among duplicates; or a
        function returning them, called only when two genes compete for one
        signature gene (it costs a pass over the matrix).
    min_genes
        Fewest common genes accepted.
    """
    expr = _as_str_index(expr_genes)
    sig = signature.index
    n_expr = len(expr)
    lazy_totals = totals if callable(totals) else None
    totals = np.zeros(n_expr) if totals is None or callable(totals) else np.asarray(totals, dtype=np.float64)
    free_e = np.ones(n_expr, dtype=bool)
    free_s = np.ones(len(sig), dtype=bool)
    pairs: list[pd.DataFrame] = []
    keyers: list[Callable[[pd.Index], pd.Index]] = [lambda idx: idx]
    if aliases:
        table = alias_table()
        keyers.append(lambda idx: pd.Index([table.get(g, g) for g in idx], dtype=object))
    if ignore_case:
        keyers.append(lambda idx: idx.str.upper())
    for keyer in keyers:
        sig_keys = keyer(sig[free_s])
        first = ~sig_keys.duplicated()
        sig_keys, sig_pos = sig_keys[first], np.flatnonzero(free_s)[first]
        e_pos = np.flatnonzero(free_e)
        hit = sig_keys.get_indexer(keyer(expr[free_e]))
        cand = pd.DataFrame({"e": e_pos[hit >= 0], "s": sig_pos[hit[hit >= 0]]})
        if lazy_totals is not None and bool(cand["s"].duplicated().any()):
            totals = np.asarray(lazy_totals(), dtype=np.float64)
            lazy_totals = None
        cand["t"] = -totals[cand["e"].to_numpy()]
        best = cand.sort_values(["s", "t", "e"], kind="stable").drop_duplicates("s")
        free_e[best["e"].to_numpy()] = False
        free_s[best["s"].to_numpy()] = False
        pairs.append(best)
    chosen = pd.concat(pairs).sort_values("e")
    expr_idx = chosen["e"].to_numpy(dtype=np.intp)
    sig_idx = chosen["s"].to_numpy(dtype=np.intp)
    if len(expr_idx) < min_genes:
        raise ValueError(
            f"Only {len(expr_idx)} genes are shared by the expression ({n_expr} genes, e.g. "
            f"{expr[:3].tolist()}) and the signature ({len(sig)} genes, e.g. {sig[:3].tolist()}); "
            f"min_genes={min_genes}. Fix: use gene symbols (human, as in the signature), pass the "
            "var column holding symbols, try aliases=True / ignore_case=True, or lower min_genes."
        )
    weights = signature.to_numpy() != 0
    found = weights[sig_idx].sum(axis=0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = np.where(total > 0, found / np.maximum(total, 1), np.nan)
    coverage = pd.Series(cov, index=signature.columns, name="coverage")
    return GeneMatch(expr_idx, sig_idx, sig[sig_idx], coverage)
