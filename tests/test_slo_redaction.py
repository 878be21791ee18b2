"""A password in a Prometheus (or mode store) URL never reaches an error, a report or the CLI's output."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from onsale_obs.exceptions import BadInputError, PrometheusUnavailableError
from onsale_obs.modes import generate_key_pair
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.testing import free_port
from onsale_obs.testing_prometheus import PrometheusServer

SECRET = "s3cret"
SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"
JSON = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal: a wrapped line could split the password and hide it from the check."""
    monkeypatch.setenv("COLUMNS", "200")


def invoke(*args: str | Path) -> Result:
    from onsale_obs.cli import app  # here: a CLI that fails to import fails these tests only

    return CliRunner().invoke(app, [str(a) for a in args])


def _echo_html(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=f"<html>proxy: no route for {request.url}</html>")


def _error_quoting_the_password(request: httpx.Request) -> httpx.Response:
    error = {"status": "error", "errorType": "auth", "error": f"bad password {SECRET!r}"}
    return httpx.Response(403, json=error, headers=JSON)


def _not_a_vector(request: httpx.Request) -> httpx.Response:
    body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    return httpx.Response(200, json=body, headers=JSON)


def _refused_naming_the_url(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)


def _undecodable_naming_the_url(request: httpx.Request) -> httpx.Response:
    raise httpx.DecodingError(f"bad gzip from {request.url}", request=request)


@pytest.mark.parametrize(
    "handler",
    [
        _echo_html,
        _error_quoting_the_password,
        _not_a_vector,
        _refused_naming_the_url,
        _undecodable_naming_the_url,
    ],
)
def test_client_errors_name_the_server_without_its_password(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    """Every failure names user, host and port, and masks the password (also in echoed text)."""
    client = PrometheusClient(
        f"http://prom:{SECRET}@prom.example:9090/prometheus",
        transport=httpx.MockTransport(handler),
        retries=0,
    )
    with pytest.raises(PrometheusUnavailableError) as info:
        client.query("up", 1_800_000_000.0)
    assert SECRET not in str(info.value)
    assert info.value.url == "http://prom:***@prom.example:9090/prometheus"
    assert str(info.value).startswith("http://prom:***@prom.example:9090/prometheus: ")


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://u:{SECRET}@prom.example",
        f"http://u:{SECRET}@[::1",
        f"http://u:{SECRET}@",
    ],
)
def test_a_bad_url_is_refused_without_its_password(url: str) -> None:
    """The message about an unusable URL quotes it masked."""
    with pytest.raises(BadInputError) as info:
        PrometheusClient(url)
    assert SECRET not in str(info.value)
    assert "u:***@" in str(info.value)


def test_the_client_keeps_the_real_url_for_requests() -> None:
    """Masking is for display: requests still carry the credentials (as basic auth)."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return _not_a_vector(request)

    client = PrometheusClient(
        f"http://prom:{SECRET}@prom.example", transport=httpx.MockTransport(handler), retries=0
    )
    assert client.shown_url == "http://prom:***@prom.example"
    assert client.query_matrix("up[5m]", 1_800_000_000.0) == []
    assert seen == ["Basic " + base64.b64encode(f"prom:{SECRET}".encode()).decode()]


def test_slo_report_on_an_unreachable_prometheus_hides_the_password() -> None:
    """The installed ``onsale-obs`` exits 3 naming user@host:port, and prints no password."""
    port = free_port()
    command = Path(sys.executable).with_name("onsale-obs")
    url = f"http://user:{SECRET}@127.0.0.1:{port}"
    args = ["slo", "report", "--spec", str(SPEC), "--timeout", "1", "--prometheus", url]
    done = subprocess.run([command, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert f"http://user:***@127.0.0.1:{port}" in done.stderr


@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_slo_report_names_its_source_without_the_password(
    prometheus_server: PrometheusServer, fmt: str
) -> None:
    """A report read from Prometheus shows where it came from, password masked."""
    url = prometheus_server.url.replace("://", f"://user:{SECRET}@", 1)
    result = invoke("slo", "report", "--spec", SPEC, "--prometheus", url, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    shown = url.replace(SECRET, "***")
    if fmt == "json":
        assert json.loads(result.stdout)["source"].startswith(f"prometheus: {shown} (")
    else:
        assert shown in " ".join(result.output.split())


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(f"redis://:{SECRET}@127.0.0.1:99999/0", id="bad-port"),
        pytest.param(f"redis://:{SECRET}@127.0.0.1:6379/x", id="bad-db"),
        pytest.param(f"rediz://:{SECRET}@127.0.0.1:6379/0", id="unknown-scheme"),
    ],
)
def test_mode_get_with_a_bad_backend_url_hides_the_password(tmp_path: Path, backend: str) -> None:
    """A mode store URL that cannot be used is named masked in the error."""
    keys = generate_key_pair(tmp_path)
    result = invoke("mode", "get", "--backend", backend, "--verify-key", keys.verify_key)
    assert result.exit_code == 2, result.output
    assert SECRET not in result.output


def test_mode_get_on_an_unreachable_redis_hides_the_password(tmp_path: Path) -> None:
    """An unreachable store exits 3 naming it masked."""
    keys = generate_key_pair(tmp_path)
    backend = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    result = invoke("mode", "get", "--backend", backend, "--verify-key", keys.verify_key)
    assert result.exit_code == 3, result.output
    assert SECRET not in result.output
    assert "redis://:***@127.0.0.1" in result.output


def test_exit_rate_recommend_on_an_unreachable_prometheus_hides_the_password(
    tmp_path: Path,
) -> None:
    """The 'rate holds' warning names Prometheus masked."""
    keys = generate_key_pair(tmp_path)
    backend = f"sqlite:///{tmp_path / 'modes.db'}"
    on_sale = invoke("mode", "set", "onsale", "--scope", "event:final", "--for", "2h",
                     "--backend", backend, "--signing-key", keys.signing_key)  # fmt: skip
    assert on_sale.exit_code == 0, on_sale.output
    result = invoke(
        "exit-rate", "recommend", "--spec", SPEC, "--backend", backend,
        "--verify-key", keys.verify_key, "--queue", "10", "--timeout", "0.5",
        "--prometheus", f"http://user:{SECRET}@127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "user:***@127.0.0.1" in result.output
    assert SECRET not in result.output
