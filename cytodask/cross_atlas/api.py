"""All cross-atlas tables from the long activities of several atlases (the stage's one call)."""

from __future__ import annotations

import pandas as pd

from cytodask.cross_atlas.conserved import conserved_signatures, sign_consistency
from cytodask.cross_atlas.consistency import consistency, pairwise_correlations
from cytodask.cross_atlas.harmonize import harmonize
from cytodask.cross_atlas.meta import mean_difference_effects, meta_analysis
from cytodask.cross_atlas.profiles import check_long, check_shared, roll_up, shared_level

TABLES = ("mapping", "conserved", "consistency", "pairs", "harmonized", "meta", "sign_consistency")


def one_effect_per_atlas(effects: pd.DataFrame, group_cols: list[str]) -> pd.DataFrame:
    """Keep one effect per atlas and group: several labels of one atlas mapped to one common type share
    donors (not independent), so the label with the most samples speaks for the atlas."""
    return (effects.sort_values(["n", "atlas"], ascending=[False, True], kind="stable")
            .drop_duplicates(["atlas", *group_cols]).sort_values(["atlas", *group_cols], kind="stable")
            .reset_index(drop=True))


def harmonized_profiles(long: pd.DataFrame) -> pd.DataFrame:
    """Cell-type means before and after ComBat: ``atlas, common, signature, n, value, harmonized``."""
    h = harmonize(long)
    g = h.groupby(["atlas", "common", "signature"], sort=True, observed=True)
    out = pd.DataFrame({"n": g.size(), "value": g["value"].mean(), "harmonized": g["harmonized"].mean()})
    return out.reset_index()


def cross_atlas_tables(long: pd.DataFrame, mapping: pd.DataFrame, effects: pd.DataFrame | None = None, *,
                       min_types: int = 3, alpha: float = 0.05, level: str = "shared") -> dict[str, pd.DataFrame]:
    """Mapping, conserved signatures (W), consistency (pairs and score), ComBat profiles, and, given
    correlation effects (:func:`~cytodask.cross_atlas.inputs.correlation_effects`), their meta-analysis
    and sign consistency per signature × variable × common type; samples with a ``sex`` column add the
    male − female difference (:func:`~cytodask.cross_atlas.meta.mean_difference_effects`) as variable ``sex``.

    ``level="shared"`` first rolls every common type up to the deepest type all atlases have
    (:func:`~cytodask.cross_atlas.profiles.roll_up`); the mapping table's ``compared_as`` column says which
    (``common`` itself at ``level="fine"``).
    """
    check_long(long)
    types = {a: set(g["common"].dropna()) for a, g in long.groupby("atlas", observed=True)}
    check_shared(types)
    if level == "shared":
        up = shared_level(types)
        mapping = mapping.assign(compared_as=mapping["common"].map(up))
        if effects is not None:
            effects = effects.assign(common=effects["common"].map(lambda c: up.get(c, c)))
    else:  # as mapped: each label compared as its own common type (one schema at both levels)
        mapping = mapping.assign(compared_as=mapping["common"])
    long = roll_up(long, level=level)  # also one value per sample × type × signature at level="fine"
    tables = {"mapping": mapping.reset_index(drop=True),
              "conserved": conserved_signatures(long, min_types=min_types),
              "consistency": consistency(long, min_types=min_types),
              "pairs": pairwise_correlations(long, min_types=min_types),
              "harmonized": harmonized_profiles(long)}
    groups = ["signature", "variable", "common"]
    if "sex" in long.columns and long["sex"].notna().any():  # male − female, Welch SE, per atlas
        sex = mean_difference_effects(long, group_col="sex", group1="M", group2="F")
        effects = sex if effects is None else pd.concat([effects, sex], ignore_index=True)
    if effects is not None and len(effects):
        eff = one_effect_per_atlas(effects, groups)
        tables["meta"] = meta_analysis(eff, effect_col="effect", se_col="se", group_cols=groups, alpha=alpha)
        tables["sign_consistency"] = sign_consistency(eff, effect_col="effect", q_col="qvalue", group_cols=groups,
                                                      alpha=alpha)
    return tables
