"""Route templates (never raw paths) and path parameters, from the app's own router.

Resolutions are cached per (method, path) in a bounded LRU, so a route table is scanned once per
distinct path, and a flood of random paths costs memory only up to the cache size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

#: (route template, path parameters), or None when no route matches.
RouteMatch = tuple[str, Mapping[str, Any]] | None
_NO_PARAMS: Mapping[str, Any] = {}


class RouteResolver(Protocol):
    """Maps a request's method and path to its route template and path parameters."""

    def __call__(self, method: str, path: str) -> RouteMatch: ...


class StarletteRoutes:
    """Starlette / FastAPI routing (``Route``, ``Mount`` with sub-routes, ``WebSocketRoute``)."""

    def __init__(self, app: Any, cache_size: int = 4096) -> None:
        self._routes: Sequence[Any] = getattr(app, "routes", ())
        #: the cached resolution; the middleware calls it directly (one call less per request)
        self.lookup: Callable[[str, str], RouteMatch] = lru_cache(maxsize=cache_size)(self._resolve)

    def __call__(self, method: str, path: str) -> RouteMatch:
        return self.lookup(method, path)

    def _resolve(self, method: str, path: str) -> RouteMatch:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        return _match_starlette(self._routes, scope, "")


def _match_starlette(routes: Sequence[Any], scope: dict[str, Any], prefix: str) -> RouteMatch:
    from starlette.routing import Match, Mount

    partial: RouteMatch = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        template = prefix + str(getattr(route, "path", ""))
        params = child.get("path_params", _NO_PARAMS)
        if isinstance(route, Mount):
            sub_routes = getattr(route, "routes", None)
            if sub_routes and match == Match.FULL:
                found = _match_starlette(sub_routes, {**scope, **child}, template)
                if found is not None:
                    return found
            return (template + "/{path:path}", params) if match == Match.FULL else None
        if match == Match.FULL:
            return template, params
        if partial is None:
            partial = (template, params)  # the path matched, the method did not (a 405)
    return partial


class FlaskRoutes:
    """Flask / Werkzeug URL rules (``/events/<event_id>/checkout``)."""

    def __init__(self, app: Any, cache_size: int = 4096) -> None:
        self._map = app.url_map
        #: the cached resolution; the middleware calls it directly (one call less per request)
        self.lookup: Callable[[str, str], RouteMatch] = lru_cache(maxsize=cache_size)(self._resolve)

    def __call__(self, method: str, path: str) -> RouteMatch:
        return self.lookup(method, path)

    def _resolve(self, method: str, path: str) -> RouteMatch:
        from werkzeug.exceptions import HTTPException
        from werkzeug.routing import RequestRedirect

        adapter = self._map.bind("localhost")
        try:
            rule, params = adapter.match(path, method=method, return_rule=True)
        except RequestRedirect:
            return None
        except HTTPException as exc:
            # 405: the path matched a rule for another method; keep its template
            if getattr(exc, "code", None) == 405:
                try:
                    rule, params = adapter.match(path, method=None, return_rule=True)
                except Exception:
                    return None
                return str(rule.rule), params
            return None
        return str(rule.rule), params


def routes_for(app: Any) -> RouteResolver | None:
    """Pick a resolver for a known framework app (Starlette/FastAPI, Flask), or None.

    Middleware added with ``app.add_middleware(...)`` is given the rest of the stack, not the
    app: the ``.app`` chain is followed down to the router.
    """
    for _ in range(32):
        if app is None:
            return None
        if hasattr(app, "url_map"):
            return FlaskRoutes(app)
        routes = getattr(app, "routes", None)
        if isinstance(routes, list | tuple) and all(hasattr(r, "matches") for r in routes):
            return StarletteRoutes(app)
        app = getattr(app, "app", None)
    return None
