"""Deterministic YAML for generated files: keys in the order given, long strings as blocks."""

from __future__ import annotations

from typing import Any

import yaml

#: libyaml's emitter when PyYAML was built with it: the same text, ten times faster (a
#: 200-SLO rule file is megabytes)
_Base: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):  # type: ignore[valid-type,misc]
    """SafeDumper that writes multi-line strings as ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any, header: str = "") -> str:
    """YAML text of ``data`` with an optional comment header (each line prefixed ``# ``)."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + body
