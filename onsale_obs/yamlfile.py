"""Reading a YAML input file with errors that name the file and say what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onsale_obs.exceptions import BadInputError


def read_yaml(
    path: str | Path, *, expected: str, error: type[BadInputError] = BadInputError
) -> Any:
    """Parse ``path``; a missing, unreadable or invalid file raises ``error`` naming it.

    ``expected`` completes "does not exist; expected ...", e.g. "an SLO spec YAML file".
    """
    import yaml  # loaded only when a file is read

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"does not exist; expected {expected}.", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot be read ({exc}).", file=str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"is not valid YAML{line}.", file=str(p)) from None
    except RecursionError:
        # PyYAML composes nested collections recursively: thousands of levels exhaust the stack
        raise error(
            "nests too deeply to be read (thousands of levels); expected a YAML file of "
            "ordinary depth.",
            file=str(p),
        ) from None
