"""What a stage contributes to the run report: a titled figure with its caption and values.

A stage type returns :class:`ReportSection` objects from
:meth:`cytodask.core.stage.Stage.report_sections`; :mod:`cytodask.export.report`
lays them out (it knows HTML, the stage knows its statistics). Figures are
PNG bytes drawn with Matplotlib's Agg canvas (:func:`figure_png`): no pyplot
state, nothing written to disk, safe in threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

QVALUE_THRESHOLD = 0.05


@dataclass
class ReportSection:
    """One figure (optional) and one table of values in the run report.

    Attributes
    ----------
    title
        Section heading (the report prefixes the stage name).
    figure
        PNG bytes (:func:`figure_png`) or ``None`` for a table-only section.
    alt
        Text alternative of the figure: what it shows, with the plotted labels.
    caption
        What is plotted, how to read it, and the key numbers.
    table
        The values behind the figure (shown under it) or the section's table.
    table_caption
        Summary line of the table (``Plotted values`` by default).
    numeric_from
        Columns from this index on are right-aligned numbers.
    ident
        HTML id of the figure (stable for tests and links); default from the title.
    """

    title: str
    figure: bytes | None = None
    alt: str = ""
    caption: str = ""
    table: pd.DataFrame | None = None
    table_caption: str = "Plotted values"
    numeric_from: int = 1
    ident: str = ""


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a Matplotlib figure made with ``matplotlib.figure.Figure`` (no pyplot)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, metadata={"Software": "cytodask"})
    return buf.getvalue()


def option(options: dict[str, Any] | Any, key: str, default: Any = None) -> Any:
    """``options[key]`` if given and not ``None``, else ``default``."""
    value = options.get(key) if hasattr(options, "get") else None
    return default if value is None else value
