"""Rebuild specs: a TOML file naming the source, the config and the stages.

```toml
[atlas]
name = "demo"

[config]                      # cytodask.Config keys
batch_size = 5000

[source]
path = "${CYTODASK_DEMO_ATLAS:-../demo-output/demo_atlas.h5ad}"
layer = "counts"              # optional

[[stages]]
name = "pseudobulk"
type = "pseudobulk"           # a registered stage type (cytodask.core.registry)
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
```

String values expand ``${VAR}`` and ``${VAR:-default}`` from the environment;
relative paths resolve against the spec's directory. A ``convert`` stage
named ``convert`` is added first when the spec does not declare one. Every
unknown key, wrong type and unknown obs column is reported with the fix.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytodask.core.config import Config
from cytodask.core.registry import RegistryError, get_stage_type, stage_types
from cytodask.core.stage import SpecContext, Stage
from cytodask.ingest.base import DataSource
from cytodask.ingest.sources import SUPPORTED, is_local_path, open_source

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TOP = ("atlas", "config", "source", "stages")


class SpecError(ValueError):
    """A spec is invalid; the message names the key and the fix."""


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SpecError(f"{where}: environment variable ${{{name}}} is not set; export it or give a default "
                            f"as ${{{name}:-value}}")
        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    return value


def _unknown(keys: list[str], allowed: list[str], where: str) -> None:
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


@dataclass
class Spec:
    """A parsed, validated rebuild spec."""

    path: Path
    name: str
    config: Config
    source: dict[str, Any]
    stages: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def make_source(self) -> DataSource:
        """Open the spec's source (checks the file exists and is readable)."""
        src = dict(self.source)
        path = src.pop("path", None)
        if not path:
            raise SpecError(f"{self.path}: [source] needs 'path' (a file, directory, URL or census: query; "
                            f"supported: {SUPPORTED})")
        layer = src.pop("layer", None) or None
        _unknown(list(src), [], f"{self.path}:[source]")
        return open_source(path, layer=layer)

    def resolved(self) -> dict[str, Any]:
        """Plain-data form with variables expanded and paths absolute (saved with each run)."""
        return {"path": str(self.path), "name": self.name, "config": self.config.to_dict(),
                "source": self.source, "stages": self.stages}

    @classmethod
    def from_resolved(cls, data: dict[str, Any]) -> Spec:
        """Inverse of :meth:`resolved`."""
        return cls(path=Path(data["path"]), name=data["name"], config=Config.from_dict(data["config"]),
                   source=dict(data["source"]), stages=list(data["stages"]))

    def build(self, *, source: DataSource | None = None, skip_types: tuple[str, ...] = ()) -> list[Stage]:
        """Instantiate the stages through the registry (a ``convert`` stage first if none is declared).

        The source is opened only if a stage asks for it (the convert stage does).
        Every stage is then bound to its upstream stage objects. ``skip_types``
        leaves stages of those types out (e.g. the report, which needs no source).
        """
        opened: list[DataSource | None] = [source]

        def get_source() -> DataSource:
            if opened[0] is None:
                opened[0] = self.make_source()
            return opened[0]

        ctx = SpecContext(spec_path=self.path, config=self.config, source=get_source)
        stages: list[Stage] = []
        decl: list[tuple[str, Any]] = [(f"stages[{i}]", s) for i, s in enumerate(self.stages)]
        if not any(isinstance(s, dict) and s.get("type") == "convert" for _, s in decl):
            decl.insert(0, ("the implicit convert stage", {"name": "convert", "type": "convert"}))
        for at, s in decl:
            where = f"{self.path}:{at}" + (f" ({s.get('name')})" if isinstance(s, dict) and s.get("name") else "")
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
            _unknown(list(s), keys, where)
            absent = [k for k in required if k not in s]
            if absent:
                raise SpecError(f"{where}: missing required key(s) {absent} for stage type {kind!r}")
            _check_types(s, hints, where)
            if "inputs" in s:
                s["inputs"] = tuple(s["inputs"])
            for key in cls.path_params:  # file paths resolve against the spec, like the source
                if isinstance(s.get(key), str) and not Path(s[key]).expanduser().is_absolute():
                    s[key] = str((self.path.parent / s[key]).resolve())
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


def check_obs_columns(stages: list[Stage], columns: list[str], where: str) -> None:
    """Fail before any work if a stage names an obs column the atlas lacks."""
    for st in stages:
        needed = st.obs_columns()
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SpecError(
                f"{where}: stage {st.name!r} names obs column(s) {missing} that the atlas does not have; "
                f"available columns: {columns}"
            )


def load_spec(path: str | os.PathLike[str], *, overrides: dict[str, Any] | None = None) -> Spec:
    """Read and validate a rebuild spec.

    Parameters
    ----------
    path
        The TOML file.
    overrides
        ``Config`` keys that replace the spec's (e.g. from the command line).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"spec {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path} is not valid TOML: {e}") from None
    _unknown(list(doc), list(_TOP), str(path))
    doc = _expand(doc, str(path))
    cfg = dict(doc.get("config", {}))
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = Config.from_dict(cfg, where=f"{path}:[config]")
    except ValueError as e:
        raise SpecError(str(e)) from None
    if "output_dir" in doc.get("config", {}) and not (overrides or {}).get("output_dir"):
        out = Path(doc["config"]["output_dir"])
        config = config.replace(output_dir=out if out.is_absolute() else (path.parent / out).resolve())
    stages = doc.get("stages", [])
    if not isinstance(stages, list):
        raise SpecError(f"{path}: 'stages' must be an array of tables ([[stages]])")
    atlas = doc.get("atlas", {})
    source = dict(doc.get("source", {}))
    if isinstance(source.get("path"), str) and is_local_path(source["path"]):
        p = Path(source["path"]).expanduser()
        source["path"] = str(p if p.is_absolute() else (path.parent / p).resolve())
    return Spec(path=path.resolve(), name=str(atlas.get("name", path.stem)), config=config,
                source=source, stages=stages, raw=doc)
