"""The headers an app behind the middleware sees when its inbound baggage is rewritten."""

from __future__ import annotations

import asyncio
from typing import Any

from onsale_obs.instrument import OnsaleMiddleware, PathParam, current_request_mode
from onsale_obs.modes import Broadcaster, MemoryBackend, ModeSubscriber
from onsale_obs.testing import key_pair
from onsale_obs.types import Message, Receive, Scope, Send


def serve(headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], Any]:
    """One request through the middleware (no OTel): the headers and mode the app saw."""
    signer, verifier = key_pair()
    backend = MemoryBackend()
    Broadcaster(backend, signer).set("event:final", "onsale")
    subscriber = ModeSubscriber(backend, verifier, registry=None)
    subscriber.sync()
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["headers"] = scope["headers"]
        seen["mode"] = current_request_mode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    tagged = OnsaleMiddleware(
        app,
        subscriber=subscriber,
        service="checkout",
        event=[PathParam("event_id")],
        routes=lambda method, path: ("/events/{event_id}", {"event_id": path.split("/")[2]}),
    )
    scope: Scope = {"type": "http", "method": "POST", "path": "/events/final", "headers": headers}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    asyncio.run(tagged(scope, receive, send))
    return seen["headers"], seen["mode"]


def test_the_baggage_header_is_rewritten() -> None:
    """The client's onsale.* claims are replaced; other headers keep their order and values."""
    inbound = [
        (b"host", b"checkout"),
        (b"baggage", b"k=v,onsale.event=other,onsale.mode=normal"),
        (b"x-after", b"1"),
    ]
    headers, rm = serve(list(inbound))
    assert rm.mode == "onsale"
    assert rm.upstream_mode == "normal"
    assert [h for h in headers if h[0] != b"baggage"] == [inbound[0], inbound[2]]
    assert [h for h in headers if h[0] == b"baggage"] == [
        (b"baggage", b"k=v,onsale.event=final,onsale.mode=onsale")
    ]
    assert inbound[1][1] == b"k=v,onsale.event=other,onsale.mode=normal"  # the server's list


def test_several_baggage_headers_become_one() -> None:
    """No onsale.* claim of any inbound baggage header reaches the app."""
    headers, _ = serve(
        [
            (b"baggage", b"onsale.event=other,onsale.mode=normal"),
            (b"host", b"checkout"),
            (b"baggage", b"onsale.mode=normal"),
        ]
    )
    assert sorted(headers) == [
        (b"baggage", b"onsale.event=final,onsale.mode=onsale"),
        (b"host", b"checkout"),
    ]
