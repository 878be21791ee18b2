"""A small client for the Prometheus HTTP query API (also Thanos, Mimir, VictoriaMetrics).

Queries are POSTed form-encoded, so long PromQL fits; connect errors, timeouts, 5xx and 429
are retried with a short backoff. Failures become the project's errors, never a traceback:
``PrometheusUnavailableError`` (exit 3) when the server cannot be reached, fails or answers
with something that is not the API's JSON; ``BadInputError`` (exit 2) when Prometheus rejects
the query itself.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import msgspec
import orjson

from onsale_obs.exceptions import BadInputError, PrometheusUnavailableError
from onsale_obs.redact import redact_text, redact_url

_RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})
_BODY_HEADERS: Final = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_QUERY_ERROR_STATUS: Final = frozenset({400, 422})
#: Retry-After longer than this is not "short": give up instead of stalling a report.
_MAX_RETRY_AFTER: Final = 10.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector: labels, value and evaluation time (epoch seconds)."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class Series:
    """One element of a range vector (matrix): labels and ``(timestamp, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class PrometheusClient:
    """Instant, matrix and range queries against one Prometheus-compatible API.

    ``url`` is the API's base, with any path prefix (``http://host/prometheus``); ``retries``
    is how many times a failed attempt is repeated; ``transport`` lets tests plug in
    ``httpx.MockTransport``. Every answer's ``warnings`` are kept in :attr:`warnings`.
    Messages name the server by :attr:`shown_url`, the URL with its credentials masked.

    ``compress`` asks for gzip answers; by default only from a server off this machine: raw
    samples run to hundreds of MB of JSON, which a Prometheus on loopback sends several times
    faster than it gzips them (0.08 s against 0.36 s for a day of on-sale samples, 4.6 MB).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        compress: bool | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")) or not _hostname(url):
            raise BadInputError(
                f"Prometheus URL {redact_url(url)!r} must start with http:// or https:// and name a host "
                "(for example http://127.0.0.1:9090 or http://host/prometheus).",
                field="prometheus",
            )
        self.url = url.rstrip("/")
        #: ``url`` as it may be printed, logged or reported: password and tokens masked.
        self.shown_url = redact_url(self.url)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.queries = 0
        self.warnings: list[str] = []
        self._sleep = sleep
        self._headers = dict(headers or {})
        if not (compress if compress is not None else not _on_loopback(url)):
            self._headers.setdefault("Accept-Encoding", "identity")
        self._transport = transport
        self._http: httpx.Client | None = None

    def close(self) -> None:
        """Close the connections; the client stays usable and reconnects when asked again."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, promql: str, at: float) -> list[Sample]:
        """Evaluate ``promql`` at ``at``; the answer must be an instant vector (or a scalar)."""
        data = self._call("/api/v1/query", {"query": promql, "time": _ts(at)}, promql)
        kind, result = data
        if kind == "scalar":
            return [_sample({}, result, promql)]
        if kind != "vector":  # our queries are instant ones: the server answered wrongly
            raise PrometheusUnavailableError(
                f"an instant query answered with a {kind}, not a vector; "
                "this is not a Prometheus-compatible API.",
                url=self.shown_url,
            )
        return [_sample(item.get("metric"), item.get("value"), promql) for item in _items(result)]

    def query_matrix(self, promql: str, at: float) -> list[Series]:
        """Evaluate a range-selector query at ``at``; the answer is every raw sample."""
        form = {"query": promql, "time": _ts(at)}
        kind, result = self._call("/api/v1/query", form, promql, matrix=True)
        if kind != "matrix":
            raise PrometheusUnavailableError(
                f"a range-selector query answered with a {kind}, not a matrix; "
                "this is not a Prometheus-compatible API.",
                url=self.shown_url,
            )
        return result  # type: ignore[no-any-return]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``promql`` at every ``step`` seconds from ``start`` to ``end``."""
        form = {"query": promql, "start": _ts(start), "end": _ts(end), "step": _ts(step)}
        kind, result = self._call("/api/v1/query_range", form, promql, matrix=True)
        if kind != "matrix":
            raise PrometheusUnavailableError(
                f"a range query answered with a {kind}, not a matrix; "
                "this is not a Prometheus-compatible API.",
                url=self.shown_url,
            )
        return result  # type: ignore[no-any-return]

    def _call(
        self, path: str, form: dict[str, str], promql: str, *, matrix: bool = False
    ) -> tuple[str, Any]:
        """POST one query, retrying what is worth retrying; return (resultType, result).

        ``matrix``: a matrix answer comes back as ``list[Series]``.
        """
        endpoint = self.url + path
        shown = self.shown_url + path
        attempts = self.retries + 1
        last, wait = "", 0.0
        for attempt in range(attempts):
            if attempt:
                self._sleep(wait)
            outcome = self._post(endpoint, form)
            if isinstance(outcome, httpx.Response):
                self.queries += 1
                if matrix and (parsed := self._matrix(outcome)) is not None:
                    return "matrix", parsed
                kind, result = self._answer(outcome, shown, promql)
                if matrix and kind == "matrix":
                    return kind, [_series(item, promql) for item in _items(result)]
                return kind, result
            last, retry_after = outcome
            wait = self.backoff * 2**attempt if retry_after is None else retry_after
            if retry_after is not None and retry_after > min(self.timeout, _MAX_RETRY_AFTER):
                last += f" (asked to retry after {retry_after:g} s: longer than --timeout)"
                break
        raise PrometheusUnavailableError(
            f"POST {shown} failed {attempts} time(s); last: {redact_text(last, self.url)}. "
            "Is Prometheus running there, and is the URL (with any path prefix) right?",
            url=self.shown_url,
        )

    def _post(
        self, endpoint: str, form: dict[str, str]
    ) -> httpx.Response | tuple[str, float | None]:
        """One attempt: the response, or why it is worth another try (and how long to wait)."""
        try:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=self.timeout, headers=self._headers, transport=self._transport
                )
            response = self._post_within(endpoint, form)
            if response is None:
                return f"took longer than {self.timeout:g} s", None
        except httpx.TimeoutException:
            return f"timed out after {self.timeout:g} s", None
        except httpx.TransportError as exc:
            return f"could not connect ({type(exc).__name__}: {exc})", None  # _call redacts it
        except httpx.InvalidURL as exc:
            raise BadInputError(
                f"Prometheus URL {self.shown_url!r} is invalid "
                f"({redact_text(str(exc), self.url)}).",
                field="prometheus",
            ) from None
        except httpx.HTTPError as exc:  # a body that cannot be decoded, too many redirects
            raise PrometheusUnavailableError(
                f"POST {redact_url(endpoint)} failed "
                f"({type(exc).__name__}: {redact_text(str(exc), self.url)}).",
                url=self.shown_url,
            ) from None
        if response.status_code in _RETRY_STATUS:
            return _status_text(response), _retry_after(response)
        return response

    def _post_within(self, endpoint: str, form: dict[str, str]) -> httpx.Response | None:
        """POST and read the whole answer within ``timeout`` seconds (None: it took longer).

        httpx's timeout bounds each network read, so a server trickling bytes could hold a
        request for ever; the body is read in pieces against one deadline.
        """
        assert self._http is not None
        deadline = time.monotonic() + self.timeout
        with self._http.stream("POST", endpoint, data=form) as streamed:
            pieces = []
            for piece in streamed.iter_bytes():
                pieces.append(piece)
                if time.monotonic() > deadline:
                    return None
            # the pieces are decoded already: the copy must not decode them again
            headers = [
                (k, v) for k, v in streamed.headers.items() if k.lower() not in _BODY_HEADERS
            ]
            return httpx.Response(
                streamed.status_code,
                headers=headers,
                content=b"".join(pieces),
                request=streamed.request,
            )

    def _matrix(self, response: httpx.Response) -> list[Series] | None:
        """A successful matrix answer decoded straight into floats, or None to look closer.

        Raw samples run to millions per report: msgspec reads ``[1700000000, "42"]`` into
        ``(1700000000.0, 42.0)`` in C, several times faster than JSON then ``float()``. Any
        other answer (an error, a value such as ``"+Inf"`` it does not read) goes the slow
        way, which checks every part and names what is wrong.
        """
        if response.status_code != 200:
            return None
        try:
            body = _MATRIX.decode(response.content)
        except msgspec.DecodeError:
            return None
        if body.status != "success" or body.data.resultType != "matrix":
            return None
        self.warnings.extend(body.warnings or ())
        return [Series(s.metric, tuple(s.values)) for s in body.data.result]

    def _answer(self, response: httpx.Response, shown: str, promql: str) -> tuple[str, Any]:
        """Check the API envelope and map errors; return (resultType, result).

        ``shown`` is the endpoint as messages may print it (credentials masked).
        """
        body = _json(response.content)
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise PrometheusUnavailableError(
                f"{shown} answered HTTP {response.status_code} with something that is not "
                f"the Prometheus API's JSON ({redact_text(_preview(response), self.url)}); "
                "check the URL.",
                url=self.shown_url,
            )
        self.warnings.extend(str(w) for w in body.get("warnings") or ())
        if body["status"] == "error" or response.status_code >= 400:
            error = f"{body.get('errorType', 'error')}: {body.get('error', 'no message')}"
            if response.status_code in _QUERY_ERROR_STATUS:
                raise BadInputError(f"Prometheus rejected the query {promql!r} ({error}).")
            raise PrometheusUnavailableError(
                f"{shown} answered {_status_text(response)} ({redact_text(error, self.url)}).",
                url=self.shown_url,
            )
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("resultType"), str):
            raise PrometheusUnavailableError(
                f"{shown} answered without data.resultType; this is not the Prometheus API.",
                url=self.shown_url,
            )
        return data["resultType"], data.get("result")


class _MatrixSeries(msgspec.Struct, gc=False):
    values: list[tuple[float, float]]
    metric: dict[str, str] = {}


class _MatrixData(msgspec.Struct, gc=False):
    resultType: str  # the API's name
    result: list[_MatrixSeries]


class _MatrixBody(msgspec.Struct, gc=False):
    status: str
    data: _MatrixData
    warnings: list[str] | None = None


#: ``strict=False``: the values are strings (``"42"``, ``"NaN"``), read as floats
_MATRIX: Final = msgspec.json.Decoder(_MatrixBody, strict=False)


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        return None


def _on_loopback(url: str) -> bool:
    host = _hostname(url) or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return False


def _ts(seconds: float) -> str:
    """Epoch seconds as Prometheus reads them (millisecond precision, no exponent)."""
    return f"{seconds:.3f}"


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _preview(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "no content-type")
    text = response.content[:80].decode("utf-8", "replace").strip()
    return f"{kind}: {text!r}"


def _status_text(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()


def _retry_after(response: httpx.Response) -> float | None:
    """A numeric Retry-After (the caller gives up when it is long: never stall for long)."""
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _malformed(promql: str, what: str) -> PrometheusUnavailableError:
    return PrometheusUnavailableError(
        f"the answer to {promql!r} has {what}; this is not the Prometheus API's JSON."
    )


def _items(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(i, dict) for i in result):
        raise PrometheusUnavailableError(
            "the answer's data.result is not a list of objects; this is not the Prometheus API."
        )
    return result


def _labels(metric: Any, promql: str) -> dict[str, str]:
    if metric is None:
        return {}
    if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
        raise _malformed(promql, "labels that are not strings")
    return metric


def _point(pair: Any, promql: str) -> tuple[float, float]:
    """``[1700000000.123, "42"]`` -> ``(ts, value)``; ``"NaN"``/``"+Inf"`` are floats too."""
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise _malformed(promql, f"a point {pair!r} that is not [time, value]")
    ts, text = pair
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not isinstance(text, str):
        raise _malformed(promql, f"a point {pair!r} that is not [number, string]")
    try:
        return float(ts), float(text)
    except ValueError:
        raise _malformed(promql, f"a value {text!r} that is not a number") from None


def _sample(metric: Any, pair: Any, promql: str) -> Sample:
    ts, value = _point(pair, promql)
    return Sample(_labels(metric, promql), value, ts)


def _series(item: dict[str, Any], promql: str) -> Series:
    values = item.get("values")
    if not isinstance(values, list):
        raise _malformed(promql, "a series without a list of values")
    return Series(_labels(item.get("metric"), promql), _points(values, promql))


def _points(values: list[Any], promql: str) -> tuple[tuple[float, float], ...]:
    """Every ``[time, "value"]`` pair as floats, checked as strictly as :func:`_point`.

    Matrices of raw samples run to millions of points: the pairs are converted in one pass
    and their types checked in another (a few times faster than :func:`_point` per pair);
    any pair that fails is looked at again by :func:`_point`, which names it.
    """
    well_formed = all(
        type(pair) is list and len(pair) == 2 and type(pair[1]) is str and type(pair[0]) in _TIME
        for pair in values
    )
    if well_formed:
        try:
            return tuple([(float(ts), float(text)) for ts, text in values])
        except ValueError:  # a value that is not a number: _point says which
            pass
    return tuple(_point(p, promql) for p in values)


#: JSON numbers as orjson decodes them (``bool`` is not one: ``type(True) is bool``)
_TIME: Final = frozenset({int, float})
