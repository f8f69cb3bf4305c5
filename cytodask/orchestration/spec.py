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
type = "pseudobulk"           # one of STAGE_TYPES
inputs = ["convert"]
by = ["cell_type_l2", "sample"]
```

String values expand ``${VAR}`` and ``${VAR:-default}`` from the environment;
relative paths resolve against the spec's directory. A ``convert`` stage
named ``convert`` is added first when the spec does not declare one. Every
unknown key, wrong type and unknown obs column is reported with the fix.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytodask.core.config import Config
from cytodask.core.stage import Stage
from cytodask.ingest.base import DataSource
from cytodask.ingest.convert import ConvertStage
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


StageBuilder = Callable[..., Stage]
STAGE_TYPES: dict[str, StageBuilder] = {}


def stage_types() -> dict[str, StageBuilder]:
    """Registered stage types (the built-in ones are registered on first use)."""
    from cytodask.orchestration import builtin  # noqa: F401  (registers the built-in stages)

    return STAGE_TYPES


def register_stage(type_name: str) -> Callable[[StageBuilder], StageBuilder]:
    """Register a stage class/factory under ``type`` for specs."""
    def deco(builder: StageBuilder) -> StageBuilder:
        STAGE_TYPES[type_name] = builder
        return builder
    return deco


def _builder_keys(builder: StageBuilder) -> tuple[list[str], list[str]]:
    sig = inspect.signature(builder)
    keys = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY or
            (p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in ("self", "name"))]
    required = [p.name for p in sig.parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
    return keys, required


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

    def build(self, *, source: DataSource | None = None) -> list[Stage]:
        """Instantiate the stages (a ``convert`` stage first if none is declared)."""
        source = source or self.make_source()
        stages: list[Stage] = []
        decl = list(self.stages)
        if not any(s.get("type") == "convert" for s in decl):
            decl.insert(0, {"name": "convert", "type": "convert"})
        for i, s in enumerate(decl):
            where = f"{self.path}:stages[{i}]" + (f" ({s.get('name')})" if s.get("name") else "")
            s = dict(s)
            name = s.pop("name", None)
            kind = s.pop("type", None)
            if not name or not kind:
                raise SpecError(f"{where}: every stage needs 'name' and 'type' (types: {sorted(stage_types())})")
            types = stage_types()
            if kind not in types and kind != "convert":
                close = difflib.get_close_matches(kind, list(types), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"{where}: unknown stage type {kind!r}.{hint} Known: {sorted(types) + ['convert']}")
            if kind == "convert":
                _unknown(list(s), ["counts"], where)
                try:
                    stages.append(ConvertStage(name, source, block_cells=self.config.batch_size or 10_000,
                                               counts=str(s.get("counts", "strict"))))
                except ValueError as e:
                    raise SpecError(f"{where}: {e}") from None
                continue
            builder = STAGE_TYPES[kind]
            keys, required = _builder_keys(builder)
            _unknown(list(s), keys, where)
            absent = [k for k in required if k not in s]
            if absent:
                raise SpecError(f"{where}: missing required key(s) {absent} for stage type {kind!r}")
            if "inputs" in s:
                s["inputs"] = tuple(s["inputs"])
            for key in ("metadata",):  # file paths resolve against the spec, like the source
                if isinstance(s.get(key), str) and not Path(s[key]).expanduser().is_absolute():
                    s[key] = str((self.path.parent / s[key]).resolve())
            try:
                stages.append(builder(name, **s))
            except TypeError as e:
                raise SpecError(f"{where}: {e}") from None
            except ValueError as e:
                raise SpecError(f"{where}: {e}") from None
        return stages


def check_obs_columns(stages: list[Stage], columns: list[str], where: str) -> None:
    """Fail before any work if a stage names an obs column the atlas lacks."""
    for st in stages:
        needed = getattr(st, "obs_columns", lambda: [])()
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
