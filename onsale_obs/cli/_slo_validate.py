"""``onsale-obs slo validate FILE...``: every problem of spec, receivers, schedule and
scenario files at once, each at ``file:line:column`` with the field and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

KindChoice = Literal["spec", "receivers", "schedule", "scenario"]
_FORMATS = {"native": "native", "openslo": "OpenSLO v1", "sloth": "Sloth prometheus/v1"}


def validate(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="YAML files to check (one kind or several)."),
    ],
    kind: Annotated[
        KindChoice | None,
        typer.Option(
            "--kind",
            help="What the files are: spec, receivers, schedule or scenario (default: told "
            "from each file's content).",
        ),
    ] = None,
    fmt: Annotated[
        Literal["text", "json"],
        typer.Option("--format", help="text (a line per problem) or json (for scripts)."),
    ] = "text",
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="Print each valid spec as the native spec YAML (an OpenSLO or Sloth file "
            "converted), to review or to keep instead.",
        ),
    ] = False,
) -> None:
    """Check spec, receivers, schedule and scenario files: every problem at once.

    Each problem is a line `FILE:LINE:COLUMN: FIELD: what was expected`; exit 2 if there is
    any, 0 when every file is valid. Specs may be native, OpenSLO v1 or Sloth prometheus/v1;
    a latency threshold that is not a histogram bucket boundary is a problem unless the SLI
    declares the service's `buckets`.

        onsale-obs slo validate examples/ticketing/slo.yaml

        onsale-obs slo validate --kind schedule onsale-schedule.yaml

        onsale-obs slo validate openslo.yaml --native > slo.yaml
    """
    from onsale_obs.filekinds import check_file

    results = [check_file(path, kind) for path in files]
    if fmt == "json":
        typer.echo(json.dumps({"files": [_as_json(r) for r in results]}, indent=2))
    else:
        for r in results:
            for p in r.problems:
                line = f":{p.line}:{p.column or 1}" if p.line is not None else ""
                field = f" {p.field}:" if p.field else ""
                typer.echo(f"{p.file}{line}:{field} {p.detail}")
            if r.valid:
                what: str = r.kind or "file"
                if r.format and r.format != "native":
                    what = f"{what} ({_FORMATS[r.format]})"
                extra = f", {r.summary}" if r.summary else ""
                typer.echo(f"{r.file}: valid {what}{extra}", err=True)
            elif not r.valid:
                n = len(r.problems)
                typer.echo(f"{r.file}: {n} problem{'s' if n != 1 else ''}", err=True)
    if native and fmt == "text":
        import yaml

        for r in results:
            if r.valid and r.kind == "spec":
                if len(results) > 1:
                    typer.echo(f"# {r.file}")
                typer.echo(
                    yaml.safe_dump(r.native, sort_keys=False, allow_unicode=True, width=100),
                    nl=False,
                )
    if any(not r.valid for r in results):
        raise typer.Exit(2)


def _as_json(r: Any) -> dict[str, Any]:
    return {
        "file": r.file,
        "kind": r.kind,
        "format": r.format,
        "valid": r.valid,
        "problems": [
            {"line": p.line, "column": p.column, "field": p.field, "message": p.detail}
            for p in r.problems
        ],
    }
