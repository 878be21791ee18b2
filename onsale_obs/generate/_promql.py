"""Small, safe PromQL building blocks: quoted label matchers and checked series selectors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

_SELECTOR: Final = re.compile(
    r"""^[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{\s*(?:[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*,?\s*)*\})?$"""
)
#: characters RE2 treats as syntax in a regex matcher
_RE2_SPECIAL: Final = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_alternatives(values: Sequence[str]) -> str:
    """An RE2 pattern matching exactly one of ``values`` (anchored by PromQL)."""
    return "|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values)


def matcher(label: str, values: Sequence[str]) -> str | None:
    """``label="v"`` for one value, ``label=~"a|b"`` for several, None for "any"."""
    if not values:
        return None
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote(regex_alternatives(values))}"


def selector(metric: str, matchers: Sequence[str | None]) -> str:
    """``metric{m1,m2}`` from the matchers that are not None."""
    inner = ",".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def is_selector(text: str) -> bool:
    """True for a plain series selector such as ``payments_total{outcome="ok"}``."""
    return bool(_SELECTOR.match(text.strip()))


def le_matcher(boundary: float) -> str:
    """Matches a histogram ``le`` label however the exporter formatted it (``1``, ``1.0``)."""
    forms = sorted(
        {repr(float(boundary)), f"{boundary:g}", format(boundary, "f").rstrip("0").rstrip(".")}
    )
    return f"le=~{quote(regex_alternatives(forms))}"
