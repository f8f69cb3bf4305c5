"""Correlation of activity with per-sample variables from a metadata table, as a stage.

The metadata file (CSV/TSV/Parquet; e.g. CIMA's sample metadata, blood
biochemistry or metabolites) is an external input: editing it changes this
stage's fingerprint, so only this stage and what reads it are recomputed.
Samples are joined on ``key`` (file column) = ``on`` (activity obs column);
within each stratum (e.g. cell type) every signature is correlated with every
numeric variable in one batched call, and q-values are BH within each
stratum × variable family.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anndata
import dask
import numpy as np
import pandas as pd
import zarr

from cytodask.core.persist import persist_table
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportOptions, ExportTable, PipelinePlan, Stage, StageContext
from cytodask.core.store import StageState
from cytodask.core.tables import read_table

CORRELATION_COLUMNS = ["signature", "signature_type", "variable", "rho", "pvalue", "qvalue", "n_samples"]


def read_metadata(path: str | os.PathLike[str], key: str) -> pd.DataFrame:
    """A per-sample table indexed by ``key`` (CSV, TSV or Parquet); errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"metadata file {path} does not exist")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep="\t" if path.suffix in (".tsv", ".txt") else ",")
    if key not in df.columns:
        raise ValueError(f"metadata file {path} has no column {key!r}; columns: {list(df.columns)}")
    if df[key].duplicated().any():
        dup = df.loc[df[key].duplicated(), key].astype(str).head(5).tolist()
        raise ValueError(f"metadata file {path}: {key!r} repeats values {dup}; one row per sample is needed")
    return df.set_index(df[key].astype(str))


def correlation_table(activity: anndata.AnnData, metadata: pd.DataFrame, *, on: str, variables: list[str] | None,
                      strata: list[str] | None, method: str, min_n: int, signature_type: str) -> pd.DataFrame:
    """Long table of signature × variable correlations (within each stratum of ``strata``).

    q-values are BH within each variable × stratum (the family is written in the
    table's ``attrs["fdr_family"]``).
    """
    from cytodask.core.stats.fdr import fdr_bh
    from cytodask.correlation import pearson, spearman

    strata = list(strata or [])
    obs = activity.obs
    keep = ~obs["empty"].to_numpy(dtype=bool) if "empty" in obs else np.ones(len(obs), bool)
    samples = obs[on].astype(str).to_numpy()
    numeric = [c for c in metadata.columns if pd.api.types.is_numeric_dtype(metadata[c])]
    variables = variables or numeric
    bad = [v for v in variables if v not in numeric]
    if bad:
        raise ValueError(f"metadata variable(s) {bad} are missing or not numeric; numeric columns: {numeric}")
    values = metadata.reindex(samples)[variables].to_numpy(dtype=np.float64)  # samples without metadata → NaN
    z = np.asarray(activity.X, dtype=np.float64)
    keys = obs[strata].astype(str) if strata else pd.DataFrame(index=obs.index)
    codes, uniques = (pd.MultiIndex.from_frame(keys).factorize(sort=True) if strata
                      else (np.zeros(len(obs), dtype=np.int64), [()]))
    func = spearman if method == "spearman" else pearson
    frames = []
    for k in sorted(set(codes[keep])):
        m = keep & (codes == k)
        a = pd.DataFrame(z[m].T, index=activity.var_names)
        b = pd.DataFrame(values[m].T, index=variables)
        t = func(a, b, min_n=min_n).to_frame()
        t = t.rename(columns={"feature_a": "signature", "feature_b": "variable", "n": "n_samples"})
        for col, value in zip(strata, uniques[k] if strata else (), strict=True):
            t[col] = value
        frames.append(t)
    table = pd.concat(frames, ignore_index=True)
    family = table["variable"].astype(str)
    for col in strata:
        family = family + "|" + table[col].astype(str)
    table["qvalue"] = fdr_bh(table["pvalue"].to_numpy(), families=family.to_numpy())
    table["signature_type"] = signature_type
    table["n_samples"] = table["n_samples"].astype(np.int64)
    table = table[CORRELATION_COLUMNS + strata + ["reason"]]
    table.attrs["fdr_family"] = f"Benjamini-Hochberg within each of: variable{''.join(' x ' + c for c in strata)}"
    return table


def _obs_metadata(activity: anndata.AnnData, on: str) -> pd.DataFrame:
    """Per-sample numeric columns carried on the activity samples (one row per ``on`` value)."""
    obs = activity.obs
    numeric = [c for c in obs.columns if pd.api.types.is_numeric_dtype(obs[c]) and c not in ("n_cells", "empty")]
    return obs[[on, *numeric]].drop_duplicates(on).set_index(obs[[on]].drop_duplicates(on)[on].astype(str))[numeric]


def _block(state: StageState, fingerprint: str, src: str, meta: str | None, key: str, on: str,
           variables: list[str] | None, strata: list[str], method: str, min_n: int, signature_type: str) -> dict:
    activity = anndata.read_zarr(src)
    table_meta = read_metadata(meta, key) if meta else _obs_metadata(activity, on)
    table = correlation_table(activity, table_meta, on=on, variables=variables,
                              strata=strata, method=method, min_n=min_n, signature_type=signature_type)
    return persist_table(state, fingerprint, table)


def read_correlations(path: Path, options: ExportOptions) -> pd.DataFrame:
    """The ``correlations`` export table (the stage's table without its ``reason`` column)."""
    from cytodask.core.tables import read_table

    return read_table(path).drop(columns=["reason"], errors="ignore")


@register_stage("correlation")
class CorrelationStage(Stage):
    """Correlate activity (an activity stage) with numeric per-sample variables from ``metadata``.

    Parameters
    ----------
    metadata
        CSV/TSV/Parquet, one row per sample; ``None`` uses the numeric per-sample
        columns carried on the activity samples (e.g. ``age`` carried through pseudobulk).
    key, on
        Join ``metadata[key]`` to the activity samples' ``obs[on]``.
    variables
        Numeric columns to use (default: all numeric columns).
    strata
        obs columns to correlate within (e.g. ``["cell_type_l2"]``); none: all samples together.
    by
        Deprecated spelling of one stratum column (``by = "x"`` is ``strata = ["x"]``).
    method
        ``"spearman"`` or ``"pearson"``.
    """

    version = "2"  # 2: table columns pvalue/qvalue (were p_value/q_value)
    analysis = "correlation"
    path_params = ("metadata",)

    def __init__(self, name: str, *, inputs: tuple[str, ...], metadata: str | None = None, key: str = "",
                 on: str = "sample",
                 variables: list[str] | None = None, strata: list[str] | None = None,
                 method: Literal["spearman", "pearson"] = "spearman", min_n: int = 10,
                 signature_type: str = "CytoSig", by: str | None = None) -> None:
        super().__init__(name, inputs=inputs)
        if method not in ("spearman", "pearson"):
            raise ValueError(f"method={method!r}: use 'spearman' or 'pearson'")
        if metadata and not key:
            raise ValueError(f"stage {name!r}: metadata needs key (its sample column)")
        self.metadata, self.key, self.on = (Path(metadata) if metadata else None), key, on
        if by is not None:
            warnings.warn(f"correlation stage {name!r}: by = {by!r} is deprecated; write strata = [{by!r}] "
                          f"(the word differential stages use)", DeprecationWarning, stacklevel=2)
            if strata and list(strata) != [by]:
                raise ValueError(f"stage {name!r}: give strata or the deprecated by, not both")
            strata = [by]
        self.variables, self.strata, self.method = variables, list(strata or []), method
        self.min_n, self.signature_type = int(min_n), signature_type

    def params(self) -> dict[str, Any]:
        return {"key": self.key, "on": self.on, "variables": self.variables, "strata": self.strata,
                "method": self.method, "min_n": self.min_n, "signature_type": self.signature_type}

    # -- declarations (registry) ------------------------------------------------------------------
    def obs_columns(self) -> list[str]:
        return [self.on, *self.strata]

    def export_tables(self) -> list[ExportTable]:
        return [ExportTable("correlations", read_correlations, tuple(CORRELATION_COLUMNS),
                            f"{self.method} correlation of each signature with each sample variable")]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from cytodask.correlation.report import top_correlations_section

        return top_correlations_section(data, self.method)

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any] | None:
        """Activity vs the numeric per-sample obs columns (``variables=``, default: all of them)."""
        obs = plan.obs()
        per_sample = obs.groupby(plan.sample, observed=True).nunique(dropna=False).le(1).all()
        numeric = [c for c in plan.columns if c != plan.sample and pd.api.types.is_numeric_dtype(obs[c])
                   and per_sample.get(c, False)]
        variables = plan.options.get("variables") or numeric
        if not variables:
            raise ValueError("correlation needs numeric per-sample obs columns (e.g. age, BMI); none found")
        plan.needs(*variables)
        return {"inputs": [plan.activity], "on": plan.sample, "variables": list(variables),
                "strata": [plan.level] if plan.level else [],
                "signature_type": plan.signature}

    def plan(self, ctx: StageContext) -> int:
        obs = anndata.io.read_elem(zarr.open_group(str(ctx.input(self.inputs[0])), mode="r")["obs"])
        missing = [c for c in (self.on, *self.strata) if c not in obs.columns]
        if missing:
            raise ValueError(f"stage {self.name!r}: column(s) {missing} are not in the samples of "
                             f"{self.inputs[0]!r}; available: {list(obs.columns)}")
        if self.metadata is None:
            return 1
        meta = read_metadata(self.metadata, self.key)
        if not set(obs[self.on].astype(str)) & set(meta.index):
            raise ValueError(f"stage {self.name!r}: no sample of {self.on!r} (e.g. "
                             f"{obs[self.on].astype(str).iloc[0]!r}) is in {self.metadata}:{self.key!r} "
                             f"(e.g. {meta.index[0]!r}); check key/on")
        return 1

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        return [dask.delayed(_block, pure=True)(
            ctx.state, ctx.fingerprint, str(ctx.input(self.inputs[0])),
            str(self.metadata) if self.metadata else None, self.key, self.on,
            self.variables, self.strata, self.method, self.min_n, self.signature_type,
            dask_key_name=f"correlation-{ctx.name}-{ctx.fingerprint[:8]}")]

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        t = read_table(ctx.path)
        return {"rows": int(len(t)), "significant_q05": int((t["qvalue"] < 0.05).sum())}
