"""Reading a YAML input file with errors that name the file and say what was expected.

``read_yaml`` gives the data; ``read_yaml_located`` also keeps where every value was written
(line and column), so a validation error can point into the file (``slo.yaml:12:7``).
Both parse with PyYAML's safe loader, so the data is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onsale_obs.exceptions import BadInputError

_TOO_DEEP = (
    "nests too deeply to be read (thousands of levels); expected a YAML file of ordinary depth."
)


@dataclass(frozen=True, slots=True)
class Located:
    """One YAML document: its data and the node tree that knows where each value was written."""

    data: Any
    node: Any = None  # yaml.Node, or None for an empty document

    def position(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int] | None:
        """``(line, column)``, both from 1, of the value at ``path`` (of its key with ``key``).

        A path that goes further than the file (a missing key) gives the deepest place that
        exists: the mapping the key is missing from.
        """
        node = self.node
        if node is None:
            return None
        found = node.start_mark
        for index, part in enumerate(path):
            last = index == len(path) - 1
            child = None
            if node.id == "mapping":
                for k, v in node.value:
                    if k.id == "scalar" and k.value == str(part):
                        child = v
                        if last and key:
                            found = k.start_mark
                            return found.line + 1, found.column + 1
                        break
            elif node.id == "sequence" and isinstance(part, int) and 0 <= part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
            found = node.start_mark
        return found.line + 1, found.column + 1


def _read(p: Path, expected: str, error: type[BadInputError]) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"does not exist; expected {expected}.", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot be read ({exc}).", file=str(p)) from None


def _invalid(exc: Exception, p: Path, error: type[BadInputError]) -> BadInputError:
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return error("is not valid YAML.", file=str(p))
    problem = getattr(exc, "problem", None)
    why = f" ({problem})" if problem else ""
    return error(
        f"is not valid YAML at line {mark.line + 1}{why}.",
        file=str(p),
        line=mark.line + 1,
        column=mark.column + 1,
    )


def read_yaml(
    path: str | Path, *, expected: str, error: type[BadInputError] = BadInputError
) -> Any:
    """Parse ``path``; a missing, unreadable or invalid file raises ``error`` naming it.

    ``expected`` completes "does not exist; expected ...", e.g. "an SLO spec YAML file".
    """
    return read_yaml_located(path, expected=expected, error=error).data


def read_yaml_located(
    path: str | Path, *, expected: str, error: type[BadInputError] = BadInputError
) -> Located:
    """Like :func:`read_yaml`, keeping the line and column of every value."""
    [doc] = read_yaml_documents(path, expected=expected, error=error, several=False)
    return doc


def read_yaml_documents(
    path: str | Path,
    *,
    expected: str,
    error: type[BadInputError] = BadInputError,
    several: bool = True,
) -> list[Located]:
    """Every document of a file (``---`` between them), located; empty documents are kept."""
    import yaml  # loaded only when a file is read

    p = Path(path)
    text = _read(p, expected, error)
    loader = yaml.SafeLoader(text)
    docs: list[Located] = []
    try:
        if not several:
            node = loader.get_single_node()
            return [Located(loader.construct_document(node) if node else None, node)]
        while loader.check_node():
            node = loader.get_node()
            docs.append(Located(loader.construct_document(node), node))
        return docs or [Located(None, None)]
    except yaml.YAMLError as exc:
        raise _invalid(exc, p, error) from None
    except RecursionError:
        # PyYAML composes nested collections recursively: thousands of levels exhaust the stack
        raise error(_TOO_DEEP, file=str(p)) from None
    finally:
        loader.dispose()
