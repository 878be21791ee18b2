"""``onsale-obs keys``: make the Ed25519 key pair that signs and verifies mode changes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Annotated

import typer

from onsale_obs.cli._options import SIGNING_KEY_ENV, VERIFY_KEY_ENV
from onsale_obs.modes import generate_key_pair

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

keys_app = typer.Typer(
    name="keys",
    help="Signing keys for mode changes: publishers sign, every service verifies.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _key_name(text: str) -> str:
    if not _NAME.match(text):
        raise typer.BadParameter(
            f"{text!r} is not a usable file name prefix; expected 1-64 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit."
        )
    return text


@keys_app.command("generate")
def generate(
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Folder to write the keys to (created if missing)."
        ),
    ] = Path("."),
    name: Annotated[
        str,
        typer.Option(
            "--name",
            parser=_key_name,
            metavar="NAME",
            help="File name prefix: NAME-signing.pem and NAME-verify.pem.",
        ),
    ] = "onsale",
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace existing key files (old signatures stop verifying)."),
    ] = False,
) -> None:
    """Write a new Ed25519 key pair and print how to use it.

    NAME-signing.pem is the private key (file mode 0600): only publishers ('mode set',
    'schedule run') need it; keep it in a secret store. NAME-verify.pem is the public key
    every service and reader needs. To rotate keys, give services both verify keys
    (comma-separated) until every publisher uses the new signing key.

    Example:

        onsale-obs keys generate --out keys --name onsale
    """
    pair = generate_key_pair(out, name=name, overwrite=force)
    signing = pair.signing_key.resolve()
    verify = pair.verify_key.resolve()
    typer.echo(f"signing key (private, keep secret): {signing}")
    typer.echo(f"verify key (public, give to services): {verify}")
    typer.echo(f"key id: {pair.kid}")
    typer.echo("")
    typer.echo(f"export {SIGNING_KEY_ENV}={shlex.quote(str(signing))}")
    typer.echo(f"export {VERIFY_KEY_ENV}={shlex.quote(str(verify))}")
