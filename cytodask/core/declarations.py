"""Stage declarations → Stage objects, through the registry.

A declaration is what a spec's ``[[stages]]`` table holds: ``name``, ``type``
and the stage type's keys. :func:`build_stages` turns a list of them into bound
Stage objects, checking every key (unknown keys with a close-match hint,
missing required keys, values against the constructor's type hints) and
resolving path parameters against the spec's directory. Specs, ``Pipeline``
and the run report all build stages here, so they agree on what a declaration
means.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cytodask.core.config import Config
from cytodask.core.registry import RegistryError, get_stage_type, stage_types
from cytodask.core.stage import SpecContext, Stage


class SpecError(ValueError):
    """A spec is invalid; the message names the key and the fix."""


def check_keys(keys: list[str], allowed: list[str], where: str) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"{where}: unknown key {key!r}.{hint} Allowed: {', '.join(allowed)}")


def _spec_keys(cls: type[Stage]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Keys a spec may give a stage type, the required ones, and their annotations."""
    sig = inspect.signature(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name not in ("self", "name")
              and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    allowed = list(cls.spec_keys) if cls.spec_keys is not None else [p.name for p in params]
    required = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty
                and p.name in allowed]
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an unresolvable annotation only costs the type check
        hints = {}
    return allowed, required, hints


def _type_ok(value: Any, hint: Any) -> tuple[bool, str]:
    """Whether a TOML value fits a constructor annotation (simple types, lists, Literal, unions)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True, ""
    if origin is typing.Literal:
        return value in args, " or ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        fits = [_type_ok(value, a) for a in args]
        return any(ok for ok, _ in fits), " or ".join(w for _, w in fits)
    if hint is type(None):
        return value is None, "nothing"
    if hint is bool:
        return isinstance(value, bool), "true/false"
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if hint is str:
        return isinstance(value, str), "a string"
    if origin in (list, tuple, collections.abc.Sequence):
        inner = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(_type_ok(v, inner)[0] for v in value), \
            f"an array ([...]) of {_type_ok(None, inner)[1] if args else 'values'}"
    if origin is dict or hint is dict:
        return isinstance(value, dict), "a table ({...})"
    return True, ""


def _check_types(options: dict[str, Any], hints: dict[str, Any], where: str) -> None:
    for key, value in options.items():
        ok, wanted = _type_ok(value, hints.get(key, Any))
        if not ok:
            raise SpecError(f"{where}: {key} = {value!r} ({type(value).__name__}) must be {wanted}; "
                            f"write e.g. {key} = {_example(wanted)} in the spec")


def _example(wanted: str) -> str:
    return {"an integer": "5", "a number": "0.5", "a string": '"text"', "true/false": "true"}.get(
        wanted, wanted.split(" or ")[0])


def build_stages(declarations: Sequence[Any], *, spec_path: Path, config: Config, source: Callable[[], Any],
                 skip_types: tuple[str, ...] = ()) -> list[Stage]:
    """Instantiate declarations through the registry (a ``convert`` stage first if none is declared).

    ``source`` opens the spec's source; it is called only if a stage asks for it
    (the convert stage does). Every stage is then bound to its upstream stage
    objects. ``skip_types`` leaves stages of those types out (e.g. the report,
    which needs no source).
    """
    ctx = SpecContext(spec_path=spec_path, config=config, source=source)
    stages: list[Stage] = []
    decl: list[tuple[str, Any]] = [(f"stages[{i}]", s) for i, s in enumerate(declarations)]
    if not any(isinstance(s, dict) and s.get("type") == "convert" for _, s in decl):
        decl.insert(0, ("the implicit convert stage", {"name": "convert", "type": "convert"}))
    for at, s in decl:
        where = f"{spec_path}:{at}" + (f" ({s.get('name')})" if isinstance(s, dict) and s.get("name") else "")
        if not isinstance(s, dict):
            raise SpecError(f"{where}: a stage is a table ([[stages]] with name = ..., type = ...), got {s!r}")
        s = dict(s)
        name = s.pop("name", None)
        kind = s.pop("type", None)
        if not name or not kind:
            raise SpecError(f"{where}: every stage needs 'name' and 'type' (types: {sorted(stage_types())})")
        if kind in skip_types:
            continue
        try:
            cls = get_stage_type(kind, where=where)
        except RegistryError as e:
            raise SpecError(str(e)) from None
        keys, required, hints = _spec_keys(cls)
        check_keys(list(s), keys, where)
        absent = [k for k in required if k not in s]
        if absent:
            raise SpecError(f"{where}: missing required key(s) {absent} for stage type {kind!r}")
        _check_types(s, hints, where)
        if "inputs" in s:
            s["inputs"] = tuple(s["inputs"])
        for key in cls.path_params:  # file paths resolve against the spec, like the source
            if isinstance(s.get(key), str) and not Path(s[key]).expanduser().is_absolute():
                s[key] = str((spec_path.parent / s[key]).resolve())
        try:
            stages.append(cls.from_spec(name, s, ctx))
        except (TypeError, ValueError) as e:
            if isinstance(e, SpecError):
                raise
            raise SpecError(f"{where}: {e}") from None
    by_name = {st.name: st for st in stages}
    for st in stages:
        st.bind(by_name)
    return stages
