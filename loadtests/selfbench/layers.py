"""Measure candidate HTTP layers for the Locust user, each in the same gevent harness.

``python -m loadtests.selfbench.layers --host URL --layer raw --streams 64 --seconds 10
--out F.json``
runs N greenlets streaming completions (closed loop, like Locust users) through one layer
and writes, per request, the completion id, TTFT and ITL gaps as that layer observed them.
``loadtests.selfbench.accuracy --layers`` joins them with the truth server's send log. Layers:

* ``raw``: ``loadtests.http_stream`` (one write per request, kernel receive stamps);
* ``raw-user``: the same, stamped with ``perf_counter()`` after each ``recv`` returns;
* ``fasthttp``: Locust's ``FastHttpSession.iter_lines`` (geventhttpclient, 1024-byte reads);
* ``requests``: ``requests`` with ``iter_lines()`` (what a plain ``HttpUser`` script does);
* ``requests-unbuffered``: ``requests`` with ``iter_lines(chunk_size=None)``.

Run it as its own process: it monkey-patches the standard library with gevent, as Locust does.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from loadtests.http_stream import StreamingClient  # noqa: E402
from loadtests.metrics import Sample, StreamMeter  # noqa: E402

LAYERS = ("raw", "raw-user", "fasthttp", "requests", "requests-unbuffered")


def _body(tokens: int) -> bytes:
    return json.dumps(
        {
            "model": "chatcompat-ref-1",
            "messages": [{"role": "user", "content": "Say something."}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": tokens,
            "ignore_eos": True,
        }
    ).encode()


def _feed_lines(meter: StreamMeter, lines, clock: Callable[[], float]) -> None:
    for line in lines:
        now = clock()
        text = line.decode() if isinstance(line, bytes) else line
        if text.startswith("data:"):
            meter._event(text[5:].lstrip(" "), now)


def _one_raw(client: StreamingClient, body: bytes) -> Sample:
    start = time.perf_counter()
    meter = StreamMeter(start)
    response = client.post(
        "/chat/completions", body, {"Content-Type": "application/json"}, meter.on_events
    )
    meter.start = response.start
    return meter.finish(Sample(time.time()), response.end, None)


def _worker(layer: str, host: str, body: bytes, until: float, out: list[Sample]) -> None:
    clock = time.perf_counter
    if layer.startswith("raw"):
        client = StreamingClient(host, kernel_stamps=layer == "raw")
        while clock() < until:
            out.append(_one_raw(client, body))
        return
    if layer == "fasthttp":
        from locust.contrib.fasthttp import FastHttpSession
        from locust.event import EventHook

        session = FastHttpSession(host, request_event=EventHook(), user=None)
        while clock() < until:
            meter = StreamMeter(clock())
            lines = session.iter_lines(
                "/chat/completions", method="POST", data=body, headers={"content-type": "json"}
            )
            _feed_lines(meter, lines, clock)
            out.append(meter.finish(Sample(time.time()), clock(), None))
        return
    import requests

    session = requests.Session()
    chunk_size = None if layer == "requests-unbuffered" else 512
    while clock() < until:
        meter = StreamMeter(clock())
        with session.post(host + "/chat/completions", data=body, stream=True) as response:
            _feed_lines(meter, response.iter_lines(chunk_size=chunk_size), clock)
        out.append(meter.finish(Sample(time.time()), clock(), None))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.selfbench.layers")
    parser.add_argument("--host", required=True)
    parser.add_argument("--layer", choices=LAYERS, default="raw")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    body = _body(args.tokens)
    out: list[Sample] = []
    until = time.perf_counter() + args.seconds
    started = time.perf_counter()
    workers = [
        gevent.spawn(_worker, args.layer, args.host, body, until, out) for _ in range(args.streams)
    ]
    gevent.joinall(workers, timeout=args.seconds + 60)
    elapsed = time.perf_counter() - started
    rows = [[s.completion_id, s.ttft_ms, s.itl_ms, s.e2e_ms, s.content_chunks] for s in out]
    args.out.write_text(json.dumps({"elapsed_s": elapsed, "samples": rows}))


if __name__ == "__main__":
    main()
