"""On-sales that straddle the SLO window's start: clipped rows that add up to the mode total."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from onsale_obs.cli import app
from tests.slo_oracle import Record

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
AT = 1_800_000_000.0
AT_ISO = "2027-01-15T08:00:00Z"
CHECKOUT = "/events/{event_id}/checkout"
WINDOW = 15 * 60
ONSALE = (AT - 30 * 60, AT - 10 * 60)  # began 15 minutes before the window did


def records() -> list[Record]:
    """A 20-minute on-sale with errors before and after the window's start, and normal
    traffic around it."""
    out = [
        Record(AT - 3600 + i * 30.5, "checkout", CHECKOUT, "POST", 200, 0.05, "normal", "f")
        for i in range(118)
    ]
    ts = ONSALE[0] + 0.3
    i = 0
    while ts < ONSALE[1]:
        status = 503 if i % 7 == 0 else 200
        out.append(Record(ts, "checkout", CHECKOUT, "POST", status, 0.3, "onsale", "final", True))
        ts += 2.0
        i += 1
    return sorted(out, key=lambda r: r.ts)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONSALE_OBS_BACKEND", "ONSALE_OBS_SLO_SPEC", "ONSALE_OBS_PROMETHEUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def run_json(tmp_path: Path, command: str) -> dict[str, Any]:
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(orjson.dumps(r.line()) for r in records()) + b"\n")
    result = CliRunner().invoke(
        app,
        [
            "slo",
            command,
            "--spec",
            str(SPEC),
            "--logs",
            str(log),
            "--at",
            AT_ISO,
            "--window",
            "15m",
            "--slo",
            "checkout-availability",
            "--format",
            "json",
        ],
    )
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = orjson.loads(result.stdout)
    return data


def test_a_straddling_onsale_row_adds_up_to_the_mode_total(tmp_path: Path) -> None:
    """The on-sale row counts only the part inside the window: its requests and bad
    requests equal the on-sale mode's, which counts the window only."""
    report = run_json(tmp_path, "report")
    slo = report["slos"][0]
    mode = slo["modes"]["onsale"]
    rows = slo["onsales"]
    assert len(rows) == 1
    inside = [r for r in records() if r.mode == "onsale" and r.ts > AT - WINDOW]
    assert mode["total"] == len(inside)
    assert sum(r["total"] for r in rows) == mode["total"]
    assert sum(r["bad"] for r in rows) == mode["bad"] == sum(r.status >= 500 for r in inside)
    assert slo["onsale_outside_windows"] == 0


def test_the_clipped_row_is_flagged_with_the_whole_onsale_beside_it(tmp_path: Path) -> None:
    """``slo onsales`` flags the clipped row, starts it at the window's start, and keeps the
    whole on-sale's own start and counts."""
    (row,) = run_json(tmp_path, "onsales")["onsales"]
    assert row["clipped"] is True
    assert row["start"] == "2027-01-15T07:45:00Z"
    whole = row["whole"]
    every = [r for r in records() if r.mode == "onsale"]
    assert whole["start"].startswith("2027-01-15T07:30:00")
    assert whole["total"] == len(every)
    assert whole["bad"] == sum(r.status >= 500 for r in every)
    assert row["total"] < whole["total"]


def test_an_onsale_inside_the_window_is_not_clipped(tmp_path: Path) -> None:
    """With a window that holds the whole on-sale, the row is the whole on-sale, unflagged."""
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(orjson.dumps(r.line()) for r in records()) + b"\n")
    result = CliRunner().invoke(
        app,
        [
            "slo",
            "onsales",
            "--spec",
            str(SPEC),
            "--logs",
            str(log),
            "--at",
            AT_ISO,
            "--window",
            "1h",
            "--slo",
            "checkout-availability",
            "--format",
            "json",
        ],
    )
    (row,) = orjson.loads(result.stdout)["onsales"]
    assert row["clipped"] is False
    assert row["whole"] is None
    assert row["total"] == sum(1 for r in records() if r.mode == "onsale")
