"""The small operands every block shares: common genes and the projection matrix ``T`` (:func:`prepare_signature`).

Built once per call or stage on the client, then given to every block task as
one graph key (or one broadcast copy, :func:`cytodask.core.persist.share`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .genes import GeneMatch, match_genes
from .preprocess import zscore_columns
from .ridge import projection_matrix
from .signatures import SignatureLike, group_signatures, load_signature

_PROJECTIONS_LOCK = threading.Lock()


@dataclass(frozen=True)
class PreparedSignature:
    """What every block needs: the common genes and ``T`` (put in a graph once).

    ``names`` are the signature names reported; ``groups`` maps each row of
    ``T`` (a group name when grouped) to the signatures it stands for.
    """

    T: Any
    match: GeneMatch
    groups: dict[str, list[str]]
    names: list[str]

    @property
    def columns(self) -> np.ndarray:
        """Row of ``T`` of every reported signature (grouped signatures share their group's row)."""
        row_of = {m: i for i, members in enumerate(self.groups.values()) for m in members}
        return np.array([row_of[n] for n in self.names], dtype=np.intp)

    def group_of(self, name: str) -> str:
        """The group (row of ``T``) that signature ``name`` belongs to."""
        return next(g for g, members in self.groups.items() if name in members)


def signature_label(signature: SignatureLike) -> str:
    """``"CytoSig"``/``"SecAct"`` for the built-in names (any case), a file's stem, else ``"custom"``."""
    if isinstance(signature, str) and signature.lower() in ("cytosig", "secact"):
        return "CytoSig" if signature.lower() == "cytosig" else "SecAct"
    if isinstance(signature, (str, os.PathLike)):
        return os.path.basename(os.fspath(signature)).split(".")[0]
    return "custom"


def prepare_signature(
    signature: SignatureLike,
    expr_genes: Sequence[str],
    *,
    lam: float = 5e5,
    group: bool | None = None,
    group_threshold: float = 0.9,
    aliases: bool = False,
    ignore_case: bool = False,
    min_genes: int = 100,
    totals: np.ndarray | Callable[[], np.ndarray] | None = None,
    signature_dir: str | os.PathLike | None = None,
    xp: ModuleType = np,
) -> PreparedSignature:
    """Load, group (default: on except for CytoSig), match genes, z-score and project the signature."""
    sig = load_signature(signature, signature_dir=signature_dir, copy=False)  # only read below
    if group is None:
        group = signature_label(signature) != "CytoSig"
    if group:
        used, groups = group_signatures(sig, group_threshold)
    else:
        used, groups = sig, {n: [n] for n in sig.columns}
    match = match_genes(expr_genes, sig, aliases=aliases, ignore_case=ignore_case, totals=totals, min_genes=min_genes)
    # pandas holds the weights signatures x genes: gather along that layout (genes x k, F-ordered)
    x = zscore_columns(xp.asarray(np.take(used.to_numpy().T, match.sig_idx, axis=1).T), xp=xp)
    T = _cached_projection(x, lam) if xp is np else projection_matrix(x, lam, xp=xp)
    return PreparedSignature(T, match, groups, list(sig.columns))


_PROJECTIONS: OrderedDict[tuple[str, tuple[int, ...], float], np.ndarray] = OrderedDict()
_PROJECTIONS_KEPT = 2  # SecAct's T is 1,170 x ~8,000 float64 (~74 MB)


def _cached_projection(x: np.ndarray, lam: float) -> np.ndarray:
    """:func:`~cytodask.activity.ridge.projection_matrix`, reused for the same z-scored signature and lam.

    The key is a hash of ``x`` itself (its bytes, shape) and ``lam``, so a changed signature or
    gene set can never meet a stale T; hashing costs a fraction of the Cholesky and the two
    k x k x genes products it saves (about 1 s for SecAct). Returned arrays are read-only.
    """
    key = (hashlib.sha256(np.ascontiguousarray(x).data).hexdigest(), x.shape, float(lam))  # SHA-NI: ~1 GB/s
    with _PROJECTIONS_LOCK:
        hit = _PROJECTIONS.get(key)
        if hit is not None:
            _PROJECTIONS.move_to_end(key)
            return hit
    T = projection_matrix(x, lam, xp=np)
    T.setflags(write=False)
    with _PROJECTIONS_LOCK:
        _PROJECTIONS[key] = T
        while len(_PROJECTIONS) > _PROJECTIONS_KEPT:
            _PROJECTIONS.popitem(last=False)
    return T
