"""Downstream of the detector: a window it opened (source=auto) is an on-sale window for the SLO
reports, and the reports say it was auto."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.detect import AutoMode, DetectorConfig, SurgeDetector
from onsale_obs.modes import Broadcaster, Signer, SqliteBackend, Verifier, generate_key_pair
from onsale_obs.testing import FakeClock
from tests.slo_oracle import Record

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z
AT_ISO = "2027-01-15T08:00:00Z"
DAY = 86_400.0
ROUTE = "/events/{event_id}/checkout"
SURGE = AT - 2 * DAY


class Scripted:
    """Readings a test hands the detector, one per tick."""

    def __init__(self) -> None:
        self.rates: dict[str, float] | None = {}

    def read(self) -> dict[str, float] | None:
        return self.rates


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ONSALE_OBS_BACKEND", "ONSALE_OBS_SIGNING_KEY", "ONSALE_OBS_VERIFY_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_an_auto_window_is_an_onsale_in_reports_shown_as_auto(tmp_path: Path) -> None:
    """The detector flips 'final' for a surge; slo onsales lists it, counted, marked auto."""
    ops = generate_key_pair(tmp_path / "ops", name="ops")
    auto = generate_key_pair(tmp_path / "auto", name="auto")
    db = tmp_path / "modes.db"
    store = SqliteBackend(str(db))
    clock = FakeClock(SURGE - 3600)
    Broadcaster(store, Signer.from_file(ops.signing_key), clock=clock).set(
        "event:other", "normal", reason="set by an operator"
    )
    source = Scripted()
    runner = AutoMode(
        SurgeDetector(DetectorConfig(quiet=120.0)),
        source,
        Broadcaster(
            store,
            Signer.from_file(auto.signing_key),
            clock=clock,
            verifier=Verifier.from_files([ops.verify_key]),
        ),
    )
    clock.now = SURGE
    source.rates = {"final": 200.0}
    flipped = None
    for _ in range(10):
        clock.advance(2.0)
        for action in runner.tick():
            if action.kind == "onsale":
                flipped = clock.now
    assert flipped is not None
    for _ in range(300):  # ten minutes of surge, then quiet
        clock.advance(2.0)
        runner.tick()
    source.rates = {"final": 0.0}
    ended = None
    while ended is None:
        clock.advance(2.0)
        if any(a.kind == "normal" for a in runner.tick()):
            ended = clock.now
    store.close()

    records = [
        Record(AT - 10 * DAY + i * 600, "checkout", ROUTE, "POST", 200, 0.05, "normal", "final")
        for i in range(1000)
    ]
    onsale = [
        Record(flipped + 0.5 * i, "checkout", ROUTE, "POST", 500 if i == 7 else 200, 0.4,
               "onsale", "final", True)
        for i in range(1, int((ended - flipped) * 2))
    ]  # fmt: skip
    log = tmp_path / "access.log"
    lines = [orjson.dumps(r.line()) for r in sorted(records + onsale, key=lambda r: r.ts)]
    log.write_bytes(b"\n".join(lines) + b"\n")
    common = ("slo", "onsales", "--spec", SPEC, "--logs", log, "--at", AT_ISO,
              "--backend", f"sqlite:///{db}", "--verify-key", f"{ops.verify_key},{auto.verify_key}")  # fmt: skip

    result = invoke(*common, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    rows = [r for r in json.loads(result.stdout)["onsales"] if r["slo"] == "checkout-availability"]
    assert [(r["scope"], r["source"]) for r in rows] == [("event:final", "auto")]
    assert rows[0]["total"] == len(onsale)
    assert rows[0]["bad"] == 1
    assert rows[0]["reason"].startswith("auto: surge on final")

    table = invoke(*common)
    assert "event:final (auto)" in table.stdout

    page = tmp_path / "report.html"
    html = invoke("slo", "report", *common[2:], "--format", "html", "-o", page)
    assert html.exit_code in (0, 1), html.output
    assert 'class="pill source-auto">auto<' in page.read_text()
