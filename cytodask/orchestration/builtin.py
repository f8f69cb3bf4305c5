"""Register the built-in stage types for rebuild specs."""

from __future__ import annotations

from cytodask.aggregation.pseudobulk import PseudobulkStage
from cytodask.orchestration.spec import register_stage

register_stage("pseudobulk")(PseudobulkStage)
