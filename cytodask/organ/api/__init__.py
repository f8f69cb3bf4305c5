"""Public functions of the organ family.

- :mod:`.profiles`: :func:`organ_profiles`, :func:`profile_correlation`;
- :mod:`.specificity`: :func:`specificity` (and :func:`group_specificity`, shared with the cancer-type analysis);
- :mod:`.composition`: :func:`composition`;
- :mod:`.inputs`: activity AnnData → samples × signatures (shared input handling).
"""

from __future__ import annotations

from cytodask.organ.api.composition import COMPOSITION_COLUMNS, composition
from cytodask.organ.api.inputs import activity_frame, check_columns, per_sample
from cytodask.organ.api.profiles import PROFILE_COLUMNS, organ_profiles, profile_correlation
from cytodask.organ.api.specificity import SPECIFICITY_COLUMNS, group_specificity, specificity

__all__ = [
    "COMPOSITION_COLUMNS",
    "PROFILE_COLUMNS",
    "SPECIFICITY_COLUMNS",
    "activity_frame",
    "check_columns",
    "composition",
    "group_specificity",
    "organ_profiles",
    "per_sample",
    "profile_correlation",
    "specificity",
]
