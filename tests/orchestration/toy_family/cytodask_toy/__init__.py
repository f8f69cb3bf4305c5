"""A toy analysis family outside cytodask: per-signature spread of activity across samples.

It follows the family layout (kernels → api → stage) and reaches cytodask only
through public names and the ``cytodask.stages`` entry point; the test that uses
it edits no file under ``cytodask/``.
"""

from cytodask_toy.api import signature_spread
from cytodask_toy.stage import SignatureSpreadStage

__all__ = ["SignatureSpreadStage", "signature_spread"]
