"""The SSE decoder: WHATWG parsing rules, framing records, re-chunking invariance, limits."""

from __future__ import annotations

from itertools import pairwise

import pytest

from conformance.transport.sse import SSEDecoder, SSEError, decode_all

STREAM = (
    b'data: {"a": 1}\n\n'
    b": keep-alive comment\n\n"
    b"event: update\r\nid: 7\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"data:no-space\r\rdata: [DONE]\n\n"
)
EXPECTED = ['{"a": 1}', "line one\nline two", "no-space", "[DONE]"]


def _datas(events):
    return [e.data for e in events]


def _feed_in_pieces(data: bytes, cuts: list[int]):
    decoder = SSEDecoder()
    events = []
    edges = [0, *cuts, len(data)]
    for start, end in pairwise(edges):
        events += decoder.feed(data[start:end], now=0.0)
    decoder.close()
    return events, decoder.framing


def test_whole_stream():
    events, framing = decode_all(STREAM)
    assert _datas(events) == EXPECTED
    assert events[1].event == "update" and events[1].id == "7"
    assert framing.comments == 1
    assert framing.data_without_space == 1
    assert framing.multiline_events == 1
    assert framing.line_endings == {"LF": 6, "CRLF": 5, "CR": 2}


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_offset(cut):
    events, framing = _feed_in_pieces(STREAM, [cut])
    assert _datas(events) == EXPECTED
    assert framing.line_endings == {"LF": 6, "CRLF": 5, "CR": 2}


def test_one_byte_at_a_time():
    events, _ = _feed_in_pieces(STREAM, list(range(1, len(STREAM))))
    assert _datas(events) == EXPECTED


def test_coalesced_reads_keep_raw_framing():
    events, _ = decode_all(b"data: a\n\ndata: b\r\n\r\n")
    assert [e.raw for e in events] == [b"data: a\n\n", b"data: b\r\n\r\n"]


def test_bom_and_field_without_colon():
    events, framing = decode_all(b"\xef\xbb\xbfdata\n\ndata: x\n\n")
    assert framing.bom
    assert _datas(events) == ["", "x"]  # "data" alone appends "" + LF: an empty event (WHATWG)


def test_unterminated_tail_is_discarded_and_recorded():
    events, framing = decode_all(b"data: a\n\ndata: [DONE]\n")
    assert _datas(events) == ["a"]
    assert framing.unterminated_tail == b"data: [DONE]\n"
    assert any("dropped" in note for note in framing.notes())


def test_invalid_utf8_is_replaced_and_flagged():
    events, framing = decode_all(b"data: \xff\xfe\n\n")
    assert events[0].data == "\ufffd\ufffd"
    assert framing.invalid_utf8_lines == 1


def test_arrival_time_is_that_of_the_completing_chunk():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a", now=1.0) == []
    (event,) = decoder.feed(b"\n\n", now=2.5)
    assert event.received_at == 2.5


def test_line_cap():
    decoder = SSEDecoder(max_line_bytes=100)
    with pytest.raises(SSEError, match="100 bytes"):
        decoder.feed(b"data: " + b"x" * 200)


def test_event_cap():
    decoder = SSEDecoder(max_events=3)
    with pytest.raises(SSEError, match="more than 3 events"):
        decoder.feed(b"data: x\n\n" * 5)


def test_large_event_in_small_reads_is_complete():
    payload = b"data: " + b"y" * 200_000 + b"\n\n"
    events, _ = _feed_in_pieces(payload, list(range(1024, len(payload), 1024)))
    assert len(events) == 1 and len(events[0].data) == 200_000
