"""Groups of cells from obs columns (cytodask.aggregation.groups)."""

from __future__ import annotations

import pandas as pd

from cytodask.aggregation.groups import group_codes


def test_group_codes_nan_and_exclusions():
    obs = pd.DataFrame({"ct": ["a", None, "b", "Doublets", "a"], "s": ["x", "x", "y", "y", "y"]})
    codes, table, dropped = group_codes(obs, ["ct", "s"], {"ct": ["Doublets"]})
    assert dropped == {"dropped_missing_label": 1, "dropped_excluded": 1}
    assert codes.tolist() == [0, -1, 2, -1, 1]
    assert table.values.tolist() == [["a", "x"], ["a", "y"], ["b", "y"]]
