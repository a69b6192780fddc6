"""Property-based fuzzing of the SSE decoder (hypothesis).

Why: the decoder reads bytes from endpoints that are, by definition, not yet right. Two
properties keep it honest against any input:

* **re-chunking invariance**: however the network splits a byte stream into reads (including
  empty reads and splits inside CRLF, inside a UTF-8 sequence or inside the BOM), the decoder
  yields the same events (data, type, id, raw framing) and the same framing record;
* **agreement with a naive oracle**: the events equal those of a direct transcription of the
  WHATWG "event stream interpretation" rules over the whole stream at once;
* **only SSEError**: arbitrary bytes, under any limits, never raise anything else, and the
  limits trip for the same streams however they are chunked.

The budget is small by default (CI). ``CHATCOMPAT_FUZZ_EXAMPLES=100000`` (what ``nox -s fuzz``
sets) runs each property that many times.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.transport.sse import SSEDecoder, SSEError

EXAMPLES = int(os.environ.get("CHATCOMPAT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory left in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- stream generators ----------------------------------------------------------------------

EOLS = st.sampled_from([b"\n", b"\r", b"\r\n"])
TEXT = st.one_of(
    st.text(max_size=12).map(lambda s: s.encode()),
    st.binary(max_size=8),  # invalid UTF-8, stray CR/LF, NUL, partial sequences
    st.sampled_from([b"[DONE]", b'{"a": 1}', b" ", b"", b"\xef\xbb\xbf", b"\xc3", b"\xa9"]),
)
FIELD = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"dat", b"DATA", b"x"])


@st.composite
def sse_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "comment", "blank", "bare"]))
    if kind == "blank":
        body = b""
    elif kind == "comment":
        body = b":" + draw(TEXT)
    elif kind == "bare":
        body = draw(FIELD)  # a field name without a colon
    else:
        space = draw(st.sampled_from([b"", b" ", b"  "]))
        body = draw(FIELD) + b":" + space + draw(TEXT)
    return body + draw(EOLS)


@st.composite
def sse_stream(draw: st.DrawFn) -> bytes:
    """SSE-shaped bytes: mostly well-formed lines, with junk and an optional BOM or tail."""
    prefix = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xef\xbb"]))
    lines = draw(st.lists(sse_line(), max_size=25))
    tail = draw(st.one_of(st.just(b""), TEXT))
    return prefix + b"".join(lines) + tail


STREAMS = st.one_of(sse_stream(), st.binary(max_size=300))


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary offsets (empty reads included), sometimes byte by byte."""
    if draw(st.integers(0, 7)) == 0:
        cuts = list(range(len(data) + 1))
    else:
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=16)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


# --- decoding helpers ------------------------------------------------------------------------


def _decode(chunks: list[bytes], **limits: int) -> tuple[list[tuple], dict]:
    decoder = SSEDecoder(**limits)
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk, now=0.0)
    decoder.close()
    shaped = [(e.data, e.event, e.id, e.raw, e.invalid_utf8) for e in events]
    return shaped, asdict(decoder.framing)


def _outcome(chunks: list[bytes], **limits: int) -> object:
    """The decoded result, or the SSEError class (any other exception propagates)."""
    try:
        return _decode(chunks, **limits)
    except SSEError:
        return SSEError


_LINE = re.compile(r"\r\n|\r|\n")


def _oracle(data: bytes) -> list[tuple[str, str, str | None]]:
    """WHATWG event-stream interpretation, transcribed literally over the whole stream."""
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    pieces = _LINE.split(text)
    lines = pieces[:-1]  # the last piece has no line ending: an incomplete line, never processed
    events: list[tuple[str, str, str | None]] = []
    data_buf, event_type, last_id = "", "", None
    for line in lines:
        if line == "":
            if data_buf:
                events.append((data_buf.removesuffix("\n"), event_type or "message", last_id))
            data_buf, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data_buf += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id" and "\x00" not in value:
            last_id = value
    return events


# --- properties ------------------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_any_rechunking_yields_the_same_events(data: st.DataObject) -> None:
    stream = data.draw(STREAMS, label="stream")
    chunks = data.draw(chunkings(stream), label="chunks")
    assert _decode(chunks) == _decode([stream])


@FUZZ
@given(STREAMS)
def test_events_match_the_whatwg_oracle(stream: bytes) -> None:
    events, _ = _decode([stream])
    assert [(d, e, i) for d, e, i, _raw, _bad in events] == _oracle(stream)


@FUZZ
@given(STREAMS)
def test_raw_framing_covers_every_consumed_byte(stream: bytes) -> None:
    """Raw bytes of events + dropped tail never invent bytes: each is a slice of the input."""
    events, framing = _decode([stream])
    body = stream.removeprefix(b"\xef\xbb\xbf")
    for _data, _event, _id, raw, _bad in events:
        assert raw in body
    assert framing["unterminated_tail"] in body


@FUZZ
@given(
    st.data(),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=6),
)
def test_arbitrary_bytes_raise_only_sse_error_and_limits_ignore_chunking(
    data: st.DataObject, max_line_bytes: int, max_events: int
) -> None:
    stream = data.draw(STREAMS, label="stream")
    chunks = data.draw(chunkings(stream), label="chunks")
    limits = {"max_line_bytes": max_line_bytes, "max_events": max_events}
    whole = _outcome([stream], **limits)
    split = _outcome(chunks, **limits)
    assert (whole is SSEError) == (split is SSEError)
    if whole is not SSEError:
        assert whole == split
