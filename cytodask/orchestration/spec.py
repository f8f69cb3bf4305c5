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

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cytodask.core.config import Config
from cytodask.core.declarations import SpecError, build_stages, check_keys
from cytodask.core.stage import Stage
from cytodask.ingest.base import DataSource
from cytodask.ingest.sources import SUPPORTED, is_local_path, open_source

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TOP = ("atlas", "config", "source", "stages")


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
                            f"supported: {SUPPORTED}){self._sourceless_hint()}")
        layer = src.pop("layer", None) or None
        check_keys(list(src), [], f"{self.path}:[source]")
        return open_source(path, layer=layer)

    def _sourceless_hint(self) -> str:
        """When no stage reads the atlas: the runner of the stages' package that runs such a spec."""
        import importlib.util

        from cytodask.core.registry import stage_types

        if not self.stages or any("convert" in (s.get("inputs") or []) for s in self.stages):
            return ""
        types = stage_types()
        packages = sorted({".".join(types[s["type"]].__module__.split(".")[:2])
                           for s in self.stages if s.get("type") in types})
        runners = [p for p in packages if importlib.util.find_spec(f"{p}.__main__") is not None]
        where = f": run it with `python -m {runners[0]} {self.path}`" if runners else ""
        return (f". No stage of this spec reads the atlas (none has 'convert' among its inputs), so it needs "
                f"no [source]{where}")

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
        """The spec's stages, bound to each other (:func:`cytodask.core.declarations.build_stages`).

        The source is opened only if a stage asks for it (the convert stage does).
        """
        opened: list[DataSource | None] = [source]

        def get_source() -> DataSource:
            if opened[0] is None:
                opened[0] = self.make_source()
            return opened[0]

        return build_stages(self.stages, spec_path=self.path, config=self.config, source=get_source,
                            skip_types=skip_types)


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
    check_keys(list(doc), list(_TOP), str(path))
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
    elif isinstance(source.get("path"), str) and source["path"].startswith("synthetic:"):
        from cytodask.demo.world.source import resolve_synthetic  # its dir= is relative to the spec too

        source["path"] = resolve_synthetic(source["path"], path.parent)
    return Spec(path=path.resolve(), name=str(atlas.get("name", path.stem)), config=config,
                source=source, stages=stages, raw=doc)
