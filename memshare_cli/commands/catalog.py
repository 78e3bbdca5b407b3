"""``memshare models`` and ``memshare datasets``: what can be run, and from where."""

from __future__ import annotations

import json

import typer

from memshare_cli import options as o
from memshare_cli.errors import clean_errors


@clean_errors
def models(json_out: o.Json = False) -> None:
    """List model aliases: source, size, and whether each is available offline."""
    from memshare.models import MODELS, is_offline_available

    rows = [{"alias": s.alias, "source": s.source, "params": s.params, "offline": is_offline_available(s),
             "note": s.note} for s in MODELS.values()]
    if json_out:
        typer.echo(json.dumps({"models": rows}, indent=2))
        return
    from memshare_cli.render import rows_table

    rows_table("models (any hub id or local folder also works)",
               [(c, c) for c in ("alias", "source", "params", "offline", "note")], rows)


@clean_errors
def datasets(json_out: o.Json = False) -> None:
    """List benchmarks, their grader kind, and where each would load from now."""
    from memshare.data import DATASETS, source_of

    rows = [{"name": s.name, "kind": s.kind, "hub_id": s.hub_id, "loads_from": source_of(s.name), "note": s.note}
            for s in DATASETS.values()]
    if json_out:
        typer.echo(json.dumps({"datasets": rows}, indent=2))
        return
    from memshare_cli.render import rows_table

    rows_table("datasets (--data-file PATH overrides; $MEMSHARE_DATA_DIR/<name>.jsonl is used when present)",
               [("name", "name"), ("kind", "kind"), ("hub id", "hub_id"), ("loads from", "loads_from"),
                ("note", "note")], rows)
