"""WSGI middleware: every request tagged with its on-sale mode, timed until its body is closed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from onsale_obs.instrument._events import RequestParts
from onsale_obs.instrument._tagger import Started, Tagger, TaggingMiddleware, now

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]


def _environ_header(environ: WSGIEnviron) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)

    return get


def _parts(environ: WSGIEnviron, method: str, path: str, params: Mapping[str, Any]) -> RequestParts:
    return RequestParts(
        method, path, params, _environ_header(environ), environ.get("QUERY_STRING", ""), environ
    )


class OnsaleWSGIMiddleware(TaggingMiddleware[WSGIApp]):
    """Tags each request of a WSGI app (Flask, Django, ...) with its mode (options: ``TaggingMiddleware``)."""

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path in self.exclude_paths:
            return self.app(environ, start_response)
        arrived = now()
        tagger = self.tagger
        try:
            method = str(environ.get("REQUEST_METHOD", "GET"))
            started = tagger.start(method, path, environ.get("HTTP_BAGGAGE"), _parts, environ)
            if started[3] is not None:
                # an inner OTel WSGI middleware extracts from here: give it this service's view
                environ["HTTP_BAGGAGE"] = started[3]
        except Exception:
            tagger.failed("wsgi request start")
            started = tagger.degraded(str(environ.get("REQUEST_METHOD", "GET")))

        status = [0]

        def start_with_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                status[0] = int(status_line.split(" ", 1)[0])
            except (ValueError, TypeError, AttributeError):  # not "200 OK": the app's bug
                status[0] = 500
            return (
                start_response(status_line, headers, exc_info)
                if exc_info
                else start_response(status_line, headers)
            )

        recorder = _Recorder(tagger, started, arrived, status)
        try:
            body = self.app(environ, start_with_status)
        except BaseException:
            recorder.finish(failed=True)
            raise
        return _ClosingBody(body, recorder)


class _Recorder:
    __slots__ = ("arrived", "done", "started", "status", "tagger")

    def __init__(self, tagger: Tagger, started: Started, arrived: float, status: list[int]) -> None:
        self.tagger = tagger
        self.started = started
        self.arrived = arrived
        self.status = status
        self.done = False

    def finish(self, *, failed: bool) -> None:
        if self.done:
            return
        self.done = True
        code = 500 if failed or self.status[0] == 0 else self.status[0]
        try:
            self.tagger.end(self.started, code, now() - self.arrived)
        except Exception:
            self.tagger.failed("wsgi request end")


class _ClosingBody:
    """The app's body, recording the request when the server closes it (PEP 3333)."""

    __slots__ = ("_body", "_recorder")

    def __init__(self, body: Iterable[bytes], recorder: _Recorder) -> None:
        self._body = body
        self._recorder = recorder

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException:
            self._recorder.finish(failed=True)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._recorder.finish(failed=False)
