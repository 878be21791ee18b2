"""The ``onsale-obs`` command line (typer)."""

from onsale_obs.cli._app import app, main

__all__ = ["app", "main"]
