"""The three atlas designs (one module each) and :func:`design`, which picks one."""

from __future__ import annotations

from cytodask.demo.world.model import AtlasDesign
from cytodask.demo.world.spec import WorldSpec


def design(spec: WorldSpec) -> AtlasDesign:
    """The design of ``spec.atlas`` (deterministic in ``spec.seed``; independent of ``n_cells``)."""
    if spec.atlas == "inflammation":
        from cytodask.demo.world.atlases.inflammation import design as make
    elif spec.atlas == "scatlas":
        from cytodask.demo.world.atlases.scatlas import design as make
    else:
        from cytodask.demo.world.atlases.cima import design as make
    return make(spec)
