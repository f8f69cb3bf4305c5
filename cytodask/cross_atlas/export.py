"""Export schemas of the cross-atlas stage (one export table per stage table; documented in the README).

=========================  =========================================================================
table                      columns
=========================  =========================================================================
cross_atlas_mapping        atlas, label, common, source (table/rule/fuzzy/unmapped), score, compared_as
cross_atlas_conserved      signature, W, chi2, pvalue, qvalue, n_atlases, n_types, top_type, reason
cross_atlas_consistency    signature, n_pairs, mean_r, W, score, reason
cross_atlas_pairs          signature, atlas_a, atlas_b, n_types, r, r_pvalue, rho, rho_pvalue
cross_atlas_harmonized     atlas, common, signature, n, value, harmonized
cross_atlas_meta           signature, variable, common, fixed, fixed_se, random, random_se, tau2, q,
                           i2, ci_low, ci_high, pvalue, qvalue, k, fixed_pvalue, q_pvalue, reason
cross_atlas_sign_...       signature, variable, common, n_atlases, n_sig, n_up, n_down, consistent,
                           direction
=========================  =========================================================================
"""

from __future__ import annotations

from cytodask.cross_atlas.conserved import W_COLUMNS
from cytodask.cross_atlas.consistency import CONSISTENCY_COLUMNS, PAIR_COLUMNS
from cytodask.cross_atlas.meta import META_COLUMNS

GROUPS = ("signature", "variable", "common")
EXPORTS: dict[str, tuple[tuple[str, ...], str]] = {
    "mapping": (("atlas", "label", "common", "source", "score", "compared_as"),
                "each atlas label, its common cell type and the shared type it is compared as"),
    "conserved": (tuple(W_COLUMNS), "Kendall's W of the atlases' cell-type rankings per signature"),
    "consistency": (tuple(CONSISTENCY_COLUMNS), "mean profile correlation, W and the combined score"),
    "pairs": (tuple(PAIR_COLUMNS), "profile correlation per signature and atlas pair"),
    "harmonized": (("atlas", "common", "signature", "n", "value", "harmonized"),
                   "cell-type means before and after ComBat"),
    "meta": ((*GROUPS, *META_COLUMNS, "fixed_pvalue", "q_pvalue", "reason"),
             "fixed and random-effects meta-analysis of the atlases' effects (ρ as Fisher z; sex: mean difference)"),
    "sign_consistency": ((*GROUPS, "n_atlases", "n_sig", "n_up", "n_down", "consistent", "direction"),
                         "significant correlation effects of one sign in several atlases"),
}
