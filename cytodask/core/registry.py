"""The stage registry: every stage type a spec, ``Pipeline``, the export and the report know.

Stage types register in one of two ways, both public:

- the :func:`register_stage` decorator on the class (``@register_stage("pseudobulk")``);
- the entry-point group ``cytodask.stages`` of an installed distribution
  (``name = "package.module:StageClass"``). cytodask's own families are
  listed there too (``pyproject.toml``), so a package outside cytodask adds a
  stage type exactly as a built-in family does.

Entry points are loaded once, on the first call to :func:`stage_types`; a
failing entry point is reported with the distribution that declared it.
Orchestration, the export stage and the report only iterate over this
registry; none of them names a family.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from cytodask.core.stage import Stage

GROUP = "cytodask.stages"
_TYPES: dict[str, type[Stage]] = {}
_LOADED = False
_LOCK = threading.RLock()

S = TypeVar("S", bound="type[Stage]")


class RegistryError(ValueError):
    """A stage type is unknown, declared twice, or its entry point cannot be loaded."""


def register_stage(type_name: str, *, replace: bool = False) -> Callable[[S], S]:
    """Class decorator: make a :class:`~cytodask.core.stage.Stage` subclass a spec ``type``.

    Parameters
    ----------
    type_name
        The ``type`` a spec writes (``[[stages]] type = "pseudobulk"``); also the
        stage's identity in fingerprints, so moving the class to another module
        does not invalidate finished results.
    replace
        Allow re-registering a name with another class (tests, plugins overriding
        a built-in on purpose). Without it a clash is an error naming both classes.
    """
    if not isinstance(type_name, str) or not type_name.isidentifier():
        raise RegistryError(f"stage type name {type_name!r} must be an identifier (letters, digits, '_')")

    def deco(cls: S) -> S:
        from cytodask.core.stage import Stage

        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise RegistryError(f"@register_stage({type_name!r}) decorates {cls!r}, which is not a Stage subclass")
        with _LOCK:
            old = _TYPES.get(type_name)
            if old is not None and old is not cls and not replace and _qualname(old) != _qualname(cls):
                raise RegistryError(f"stage type {type_name!r} is already registered by {_qualname(old)}; "
                                    f"{_qualname(cls)} cannot take it (pick another name or pass replace=True)")
            _TYPES[type_name] = cls
            cls.type_name = type_name
        return cls

    return deco


def unregister_stage(type_name: str) -> None:
    """Remove a stage type (for tests and plugins); unknown names are ignored."""
    with _LOCK:
        _TYPES.pop(type_name, None)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def load_entry_points(*, reload: bool = False) -> None:
    """Import every ``cytodask.stages`` entry point (once per process unless ``reload``)."""
    global _LOADED
    with _LOCK:
        if _LOADED and not reload:
            return
        _LOADED = True
        for ep in metadata.entry_points(group=GROUP):
            if ep.name in _TYPES and _TYPES[ep.name].__module__ == ep.module and not reload:
                continue
            try:
                cls = ep.load()
            except Exception as e:
                dist = getattr(getattr(ep, "dist", None), "name", "?")
                raise RegistryError(f"entry point {ep.name} = {ep.value!r} of distribution {dist!r} "
                                    f"(group {GROUP!r}) cannot be loaded: {type(e).__name__}: {e}; "
                                    f"fix or uninstall that package") from e
            if getattr(cls, "type_name", None) != ep.name or _TYPES.get(ep.name) is not cls:
                register_stage(ep.name)(cls)
        if "convert" not in _TYPES:
            raise RegistryError("the built-in stage types are not registered: cytodask's entry points "
                                f"(group {GROUP!r}) are missing; reinstall it (`pip install -e .` or `make test`)")


def stage_types() -> dict[str, type[Stage]]:
    """Registered stage types, name → class (built-in and plugin types, entry points loaded)."""
    load_entry_points()
    return dict(_TYPES)


def get_stage_type(type_name: str, *, where: str = "") -> type[Stage]:
    """The class registered as ``type_name``; an error names the close matches and the known types."""
    types = stage_types()
    try:
        return types[type_name]
    except KeyError:
        close = difflib.get_close_matches(str(type_name), list(types), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        prefix = f"{where}: " if where else ""
        raise RegistryError(f"{prefix}unknown stage type {type_name!r}.{hint} Known: {sorted(types)} "
                            f"(a package adds one through the {GROUP!r} entry-point group)") from None


def analyses() -> dict[str, type[Stage]]:
    """Analysis names ``Pipeline`` accepts (a stage's ``analysis`` and aliases) → stage class."""
    out: dict[str, type[Stage]] = {}
    for cls in stage_types().values():
        for name in (cls.analysis, *cls.analysis_aliases):
            if name:
                out[name] = cls
    return out
