"""Register the built-in stage types for rebuild specs."""

from __future__ import annotations

from cytodask.aggregation.pseudobulk import PseudobulkStage
from cytodask.orchestration.spec import register_stage

register_stage("pseudobulk")(PseudobulkStage)

from cytodask.activity.stage import ActivityStage  # noqa: E402

register_stage("activity")(ActivityStage)

from cytodask.differential.stage import DifferentialStage  # noqa: E402

register_stage("differential")(DifferentialStage)

from cytodask.export.stage import ExportStage  # noqa: E402

register_stage("export")(ExportStage)

from cytodask.correlation.stage import CorrelationStage  # noqa: E402

register_stage("correlation")(CorrelationStage)
