"""Profile files: whatever is in them, reading one gives a profile or a named error, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onsale_obs.exceptions import BadInputError
from onsale_obs.plan import load_profile

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plan" / "onsale-profile.json"

_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _mutations(data: Any, value: Any, depth: int) -> Any:
    """``data`` with one value somewhere (``depth`` steps down the first keys) replaced."""
    if depth == 0 or not isinstance(data, dict | list) or not data:
        return value
    if isinstance(data, dict):
        key = sorted(data)[depth % len(data)]
        return {**data, key: _mutations(data[key], value, depth - 1)}
    return [_mutations(data[0], value, depth - 1), *data[1:]]


def test_the_example_profile_reads() -> None:
    """examples/plan/onsale-profile.json is a valid profile of three on-sales."""
    assert [o.event for o in load_profile(EXAMPLE).onsales] == [
        "cup-final",
        "arena-tour",
        "summer-fest",
    ]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_json, depth=st.integers(0, 6))
def test_a_damaged_profile_is_a_named_error(tmp_path: Path, value: Any, depth: int) -> None:
    """Any value anywhere gives a profile or a BadInputError naming the file, nothing else."""
    data = _mutations(json.loads(EXAMPLE.read_text()), value, depth)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    error: BadInputError | None = None
    try:
        load_profile(path)
    except BadInputError as exc:
        error = exc
    assert error is None or error.file == str(path)


def test_missing_and_garbled_files_are_named(tmp_path: Path) -> None:
    """No file, or not JSON: the error names the file and what was expected."""
    path = tmp_path / "p.json"
    with pytest.raises(BadInputError, match="no such file") as missing:
        load_profile(path)
    assert str(path) in str(missing.value)
    path.write_text("{not json")
    with pytest.raises(BadInputError, match="not JSON") as garbled:
        load_profile(path)
    assert str(path) in str(garbled.value)
