"""``onsale-obs schema NAME``: the JSON Schema of a file kind, for editors and CI.

Registered by the root as a single command (``onsale_obs.cli._schema:schema``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

SchemaName = Literal["spec", "receivers", "schedule", "scenario"]


def schema(
    name: Annotated[
        SchemaName | None,
        typer.Argument(
            metavar="NAME",
            help="spec, receivers, schedule or scenario (none: list them).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of an input file kind, for editors: spec, receivers, schedule, scenario.

    Editors that speak yaml-language-server (VS Code's YAML extension, Neovim, Helix) then
    complete keys and flag mistakes as you type (README, "Editor support"):

        onsale-obs schema spec > .schemas/spec.json

        # first line of slo.yaml:
        # yaml-language-server: $schema=.schemas/spec.json

    `onsale-obs slo validate FILE` checks the rest (bucket boundaries, alert windows, selectors).
    """
    from onsale_obs.filekinds import KINDS, describe, json_schema_text

    if name is None:
        for kind in KINDS:
            typer.echo(f"{kind:<10} {describe(kind)}")
        return
    typer.echo(json_schema_text(name), nl=False)
