"""stream.connection_persists: the HTTP/1.1 connection outlives a streamed response, or the
server says it will not.

Every other check sends each request on a fresh connection (see client.Transport), so a
server that silently drops the connection after a stream would go unnoticed; pooled clients
(the official SDKs) notice, as "server disconnected without sending a response".
"""

from __future__ import annotations

from conformance.exchanges.shared import chat_body, ok_json, ok_stream
from conformance.transport.client import RequestSpec
from conformance.verdicts.check import check, expect


@check(
    "stream.connection_persists",
    "SHOULD",
    "HTTP/1.1 connections are persistent unless a 'Connection: close' says otherwise (RFC 9112 "
    "9.3, 9.6): a server that closes after a streamed response announces it, or clients that "
    "reuse pooled connections race against the close.",
)
def test_connection_persists(endpoint):
    model = endpoint.model
    specs = [
        RequestSpec(
            "streamed, on a kept-alive connection", json=chat_body(model, stream=True, max_tokens=4)
        ),
        RequestSpec("next request on the same connection", json=chat_body(model, max_tokens=1)),
    ]
    (first, second), connections = endpoint.transport.send_on_one_connection(specs)
    ok_stream(first)
    ok_json(second)
    said = (first.header("connection") or "").lower()
    expect(
        connections == 1 or "close" in said,
        "the connection kept open after the stream, or 'Connection: close' on the response",
        f"the server closed the connection after the stream without announcing it "
        f"(Connection: {first.header('connection')!r}, Keep-Alive: {first.header('keep-alive')!r});"
        f" the next request needed a new connection",
        first,
        second,
    )
