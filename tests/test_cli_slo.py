"""``onsale-obs slo report`` and ``slo onsales`` on access logs, as an SRE runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.modes import Broadcaster, ModeHistory, Signer, SqliteBackend, Verifier
from onsale_obs.slo import evaluate, load_spec, plan
from onsale_obs.testing import FakeClock, free_port
from tests.slo_oracle import Record, oracle

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
AT = 1_800_000_000.0  # 2027-01-15T08:00:00Z
AT_ISO = "2027-01-15T08:00:00Z"
DAY = 86_400.0
ROUTE = "/events/{event_id}/checkout"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ONSALE_OBS_BACKEND",
        "ONSALE_OBS_SIGNING_KEY",
        "ONSALE_OBS_VERIFY_KEY",
        "ONSALE_OBS_SLO_SPEC",
        "ONSALE_OBS_PROMETHEUS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def checkout(
    ts: float,
    status: int = 200,
    mode: str = "normal",
    seconds: float = 0.05,
    event: str | None = "final",
) -> Record:
    return Record(ts, "checkout", ROUTE, "POST", status, seconds, mode, event, mode == "onsale")


ONSALE_START = AT - 3 * DAY
ONSALE_END = ONSALE_START + 3600


def traffic(outage: bool = False) -> list[Record]:
    """20 days of quiet normal traffic with 3 errors, one on-sale with 2 errors in 6,000."""
    records = [
        checkout(AT - 20 * DAY + i * 600, 503 if i % 1000 == 7 else 200) for i in range(2880)
    ]
    records += [
        checkout(ONSALE_START + 0.6 * i, 500 if i in (10, 4000) else 200, "onsale", 0.4)
        for i in range(1, 6001)
    ]
    if outage:  # the last 90 seconds: every on-sale checkout fails
        records += [checkout(AT - 90 + i, 503, "onsale") for i in range(90)]
    return sorted(records, key=lambda r: r.ts)


def write_log(path: Path, records: list[Record], garbage: bool = False) -> Path:
    lines = [orjson.dumps(r.line()) for r in records]
    if garbage:
        lines[5:5] = [b'{"ts": 1, "service": "checkout"', b"not json at all", b'{"ts": "x"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def history(tmp_path: Path) -> tuple[str, Path]:
    """A sqlite mode store holding the on-sale of event final, and the key that verifies it."""
    result = invoke("keys", "generate", "--out", tmp_path / "keys")
    assert result.exit_code == 0, result.output
    signing = tmp_path / "keys" / "onsale-signing.pem"
    backend = SqliteBackend(str(tmp_path / "modes.db"))
    clock = FakeClock(ONSALE_START)
    b = Broadcaster(backend, Signer.from_file(signing), clock=clock)
    b.set("event:final", "onsale", reason="general sale")
    clock.advance(ONSALE_END - ONSALE_START)
    b.set("event:final", "normal", reason="sold out")
    backend.close()
    return f"sqlite:///{tmp_path / 'modes.db'}", tmp_path / "keys" / "onsale-verify.pem"


def report_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = invoke("slo", "report", "--spec", SPEC, "--at", AT_ISO, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, data


def test_report_numbers_are_the_engines_on_the_same_records(
    tmp_path: Path, history: tuple[str, Path]
) -> None:
    records = traffic()
    log = write_log(tmp_path / "access.log", records)
    url, verify = history
    code, data = report_json("--logs", log, "--backend", url, "--verify-key", verify)
    spec = load_spec(SPEC)
    backend = SqliteBackend(url.removeprefix("sqlite:///"))
    try:
        windows = ModeHistory(backend, Verifier.from_files([verify])).onsale_windows()
    finally:
        backend.close()
    truth = evaluate(spec, oracle(records, plan(spec, AT, onsale_windows=windows)), AT).to_json()
    assert data["slos"] == truth["slos"]
    availability = data["slos"][0]
    assert availability["modes"]["onsale"]["total"] == 6000
    assert availability["modes"]["onsale"]["bad"] == 2
    assert availability["modes"]["normal"]["bad"] == 3
    [onsale] = availability["onsales"]
    assert (onsale["scope"], onsale["total"], onsale["bad"]) == ("event:final", 6000, 2)
    assert availability["modes"]["onsale"]["status"] == "breached"  # 99.967% < 99.99%
    assert code == 1


def test_a_burning_onsale_exits_1_and_shows_p1(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", traffic(outage=True))
    code, data = report_json("--logs", log, "--slo", "checkout-availability")
    onsale = data["slos"][0]["modes"]["onsale"]
    assert onsale["alert"] == {"priority": "P1", "severity": "page", "rule": "fast", "firing": True}
    assert data["slos"][0]["modes"]["normal"]["alert"]["firing"] is False
    assert code == 1
    assert data["failing"] is True


def test_windows_are_found_in_the_logs_without_a_history(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", traffic())
    _, data = report_json("--logs", log, "--slo", "checkout-availability")
    [onsale] = data["slos"][0]["onsales"]
    assert onsale["scope"] == "event:final"
    assert onsale["total"] == 6000


def test_table_and_markdown_show_both_modes_side_by_side(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", traffic())
    table = invoke("slo", "report", "--spec", SPEC, "--logs", log, "--at", AT_ISO)
    assert "normal SLI / objective" in table.stdout
    assert "on-sale SLI / objective" in table.stdout
    assert "checkout-availability" in table.stdout
    md = invoke(
        "slo", "report", "--spec", SPEC, "--logs", log, "--at", AT_ISO, "--format", "markdown"
    )
    assert "| SLO | normal requests |" in md.stdout
    assert "### on-sales" in md.stdout
    only = invoke(
        "slo", "report", "--spec", SPEC, "--logs", log, "--at", AT_ISO, "--mode", "normal"
    )
    assert "on-sale SLI" not in only.stdout


def test_the_table_states_spent_budget_in_requests(tmp_path: Path) -> None:
    """Issue 23: "331 bad requests against 0.28 allowed" says more than a percentage."""
    log = write_log(tmp_path / "access.log", traffic())
    _code, data = report_json("--logs", log, "--slo", "checkout-availability")
    onsale = data["slos"][0]["modes"]["onsale"]
    table = invoke(
        "slo",
        "report",
        "--spec",
        SPEC,
        "--logs",
        log,
        "--at",
        AT_ISO,
        "--slo",
        "checkout-availability",
    )
    allowed = f"{onsale['budget_requests']['allowed']:,.2f}"
    assert (
        f"checkout-availability, on-sale: {onsale['bad']:,} bad requests against {allowed} allowed"
        in " ".join(table.stdout.split())
    )


def test_onsales_lists_each_onsale_with_its_numbers(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", traffic())
    result = invoke(
        "slo", "onsales", "--spec", SPEC, "--logs", log, "--at", AT_ISO, "--format", "json"
    )
    data = json.loads(result.stdout)
    rows = {row["slo"]: row for row in data["onsales"]}
    assert rows["checkout-availability"]["bad"] == 2
    assert rows["checkout-latency"]["total"] == 6000
    assert rows["checkout-latency"]["bad"] == 0  # 0.4 s is within the on-sale threshold of 1 s
    # 2 errors in 6,000 is 99.967%: below the on-sale objective of 99.99% -> exit 1 for scripts
    assert result.exit_code == 1


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", traffic(), garbage=True)
    _, data = report_json("--logs", log, "--slo", "checkout-availability")
    assert data["skipped"] == {"malformed": 3}
    assert data["slos"][0]["modes"]["onsale"]["total"] == 6000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one source"),
        (("--logs", "LOG", "--prometheus", "http://127.0.0.1:9"), "exactly one source"),
        (("--logs", "MISSING"), "missing.log"),
        (("--logs", "LOG", "--slo", "nope"), "no SLO called 'nope'"),
        (("--logs", "LOG", "--window", "forever"), "not a duration"),
        (("--logs", "LOG", "--at", "yesterday"), "not a time"),
        (("--prometheus", "http://"), "name a host"),
    ],
)
def test_bad_input_exits_2_naming_what_was_wrong(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    log = write_log(tmp_path / "access.log", traffic()[:10])
    real = [
        str(log) if a == "LOG" else str(tmp_path / "missing.log") if a == "MISSING" else a
        for a in args
    ]
    result = invoke("slo", "report", "--spec", SPEC, *real)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_bad_spec_exits_2_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "slos:\n  - name: x\n    service: s\n    sli: {type: availability}\n    objectives: {normal: 101, onsale: 99}\n"
    )
    log = write_log(tmp_path / "access.log", traffic()[:10])
    result = invoke("slo", "report", "--spec", spec, "--logs", log)
    assert result.exit_code == 2
    assert "slos.0.objectives.normal" in result.output
    assert str(spec) in result.output


def test_an_unreachable_prometheus_exits_3(tmp_path: Path) -> None:
    port = free_port()
    result = invoke(
        "slo",
        "report",
        "--spec",
        SPEC,
        "--prometheus",
        f"http://127.0.0.1:{port}",
        "--timeout",
        "1",
    )
    assert result.exit_code == 3, result.output
    assert f"127.0.0.1:{port}" in result.output
