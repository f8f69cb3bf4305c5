"""Result tables: one writer and one reader for every family and the export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr

from cytodask.core.tables import read_table, write_table


def _table() -> pd.DataFrame:
    return pd.DataFrame({"signature": ["IL6", "TNF", "IFNG"], "pvalue": [0.01, 0.5, np.nan],
                         "n": np.array([3, 4, 5], dtype=np.int64), "reason": ["", "", "n<3"]},
                        index=[7, 3, 9])  # fmt: skip


def test_round_trip_keeps_columns_and_drops_the_index(tmp_path):
    df = _table()
    write_table(tmp_path / "stage", df)
    got = read_table(tmp_path / "stage")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), df.reset_index(drop=True))
    assert list(got.index) == [0, 1, 2]  # the row number, not the written frame's index


def test_path_replaces_a_group_keeps_its_other_tables(tmp_path):
    write_table(tmp_path / "s", _table())
    write_table(tmp_path / "s", _table().iloc[:1])  # a rerun: the stage's result is written afresh
    assert len(read_table(tmp_path / "s")) == 1
    root = zarr.open_group(str(tmp_path / "g"), mode="w", zarr_format=3)
    write_table(root, _table(), name="a")
    write_table(root, _table().iloc[:2], name="b")
    assert len(read_table(tmp_path / "g", "a")) == 3 and len(read_table(root, "b")) == 2


def test_errors_say_what_and_how(tmp_path):
    with pytest.raises(TypeError, match="needs a pandas DataFrame"):
        write_table(tmp_path / "x", np.zeros(3))  # type: ignore[arg-type]
    write_table(tmp_path / "x", _table())
    with pytest.raises(FileNotFoundError, match="holds no table 'other'"):
        read_table(tmp_path / "x", "other")


def test_family_readers_are_the_core_reader():
    """``from cytodask.differential.stage import read_table`` keeps working and is this reader."""
    from cytodask.differential.stage import read_table as family_reader

    assert family_reader is read_table


def test_attrs_travel_with_the_table(tmp_path):
    import pandas as pd
    import pytest

    from cytodask.core.tables import read_table, write_table

    df = pd.DataFrame({"signature": ["a", "b"], "qvalue": [0.1, 0.2]})
    df.attrs["fdr_family"] = "Benjamini-Hochberg within each stratum (cell_type)"
    write_table(tmp_path / "t.zarr", df)
    back = read_table(tmp_path / "t.zarr")
    assert back.attrs == df.attrs
    pd.testing.assert_frame_equal(back, df)
    bad = df.copy()
    bad.attrs["x"] = object()
    with pytest.raises(TypeError, match="attrs must be JSON-able"):
        write_table(tmp_path / "u.zarr", bad)
