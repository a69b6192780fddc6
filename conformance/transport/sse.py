"""Strict, incremental server-sent-events decoder over raw bytes.

Why our own decoder instead of httpx-sse or sseclient: those sit on top of a text line
iterator that has already normalised line endings and decoded UTF-8, so they cannot tell a
check *how* a server framed its stream (``data:`` with or without a space, CRLF, comments,
an unterminated last event, invalid UTF-8). Conformance checks need that framing, and load
tests need the exact arrival time of each event, so this decoder works on raw bytes, keeps
the framing of every event, and is linear in the size of the stream (each byte is scanned
once; consumed bytes are dropped in one slice per ``feed``).

The parsing rules follow the WHATWG HTML "event stream interpretation" section:
lines end in CRLF, LF or CR; a leading UTF-8 BOM is ignored; a line starting with ``:`` is a
comment; ``field:value`` strips one leading space from the value; ``data`` lines are joined
with LF; a blank line dispatches the event (nothing is dispatched when the data buffer is
empty); an incomplete event at end of stream is discarded (we record that it happened).

However the network splits the stream into reads (even inside a CRLF, a UTF-8 sequence or
the BOM, or into empty reads), the events and the framing record come out the same; a
property-based test (tests/test_sse_fuzz.py) holds the decoder to that and to a literal
transcription of the WHATWG rules. The one concession to arrival time: an event is handed
out as soon as its blank line is complete, so when that line ends in a CR that turns out to
be the first half of a CRLF split across reads, the LF is appended to the event's ``raw``
when it arrives (the Event object the caller already holds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_EVENTS = 100_000


class SSEError(Exception):
    """The stream broke a hard limit (line size or event count); the only error we raise.

    The limits trip for the same streams however they are split into reads: a line longer
    than ``max_line_bytes`` raises whether it arrives whole or in pieces.
    """


@dataclass
class Framing:
    """How the server framed the stream, summed over every line seen."""

    line_endings: dict[str, int] = field(default_factory=lambda: {"LF": 0, "CRLF": 0, "CR": 0})
    data_without_space: int = 0
    comments: int = 0
    multiline_events: int = 0
    other_fields: dict[str, int] = field(default_factory=dict)
    bom: bool = False
    invalid_utf8_lines: int = 0
    unterminated_tail: bytes = b""

    def notes(self) -> list[str]:
        """Human-readable list of framing features a strict client might choke on."""
        out = []
        for kind in ("CRLF", "CR"):
            if self.line_endings[kind]:
                out.append(f"{self.line_endings[kind]} lines end in {kind}")
        if self.data_without_space:
            out.append(f"{self.data_without_space} 'data:' lines without a space")
        if self.comments:
            out.append(f"{self.comments} comment lines")
        if self.multiline_events:
            out.append(f"{self.multiline_events} events with multi-line data")
        for name, count in sorted(self.other_fields.items()):
            out.append(f"{count} '{name}' field lines")
        if self.bom:
            out.append("stream starts with a UTF-8 BOM")
        if self.invalid_utf8_lines:
            out.append(f"{self.invalid_utf8_lines} lines with invalid UTF-8")
        if self.unterminated_tail:
            out.append(
                f"{len(self.unterminated_tail)} bytes after the last blank line were dropped"
            )
        return out


@dataclass
class Event:
    """One dispatched event: its data, type, id, the raw bytes it came from, and arrival time."""

    data: str
    event: str = "message"
    id: str | None = None
    raw: bytes = b""
    received_at: float = 0.0
    invalid_utf8: bool = False  # a data line was not valid UTF-8 (so the data is not JSON text)

    def __repr__(self) -> str:  # bounded: an event can be megabytes
        data = self.data if len(self.data) <= 100 else f"{self.data[:100]}...({len(self.data)})"
        return f"Event(data={data!r}, event={self.event!r}, id={self.id!r})"


class SSEDecoder:
    """Feed raw byte chunks as they arrive; get complete events back from each ``feed``."""

    def __init__(
        self,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_events: int = DEFAULT_MAX_EVENTS,
        clock=time.perf_counter,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_events = max_events
        self.framing = Framing()
        self.event_count = 0
        self._clock = clock
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already searched for a line ending
        self._started = False
        self._pending_cr = False  # last line ended in CR at a chunk edge: an LF may follow
        self._data: list[str] = []
        self._event_type = ""
        self._last_id: str | None = None
        self._raw = bytearray()
        self._data_invalid = False  # a data line of the current event had invalid UTF-8
        # A CR ended the last read. If it ended a blank line, the event it dispatched (or
        # None when there was nothing to dispatch) gets the LF that may start the next read.
        self._cr_blank = False
        self._cr_event: Event | None = None

    def feed(self, chunk: bytes, now: float | None = None) -> list[Event]:
        """Consume one chunk; return the events it completed, stamped with ``now``."""
        if not chunk:
            return []  # an empty read changes nothing (a pending CR stays pending)
        stamp = self._clock() if now is None else now
        if not self._started:
            self._buf += chunk
            if len(self._buf) < len(BOM) and BOM.startswith(bytes(self._buf)):
                return []
            self._started = True
            if self._buf.startswith(BOM):
                self.framing.bom = True
                del self._buf[: len(BOM)]
        else:
            self._buf += chunk
        events: list[Event] = []
        buf = self._buf
        pos = 0
        if self._pending_cr and buf[:1] == b"\n":
            self._pending_cr = False
            self.framing.line_endings["CR"] -= 1
            self.framing.line_endings["CRLF"] += 1
            if not self._cr_blank:
                self._raw += b"\n"
            elif self._cr_event is not None:
                self._cr_event.raw += b"\n"
            pos = 1
            self._scan = max(self._scan, 1)
        self._pending_cr = False
        self._cr_event = None
        while True:
            end = self._find_eol(buf, max(pos, self._scan))
            if end < 0:
                self._scan = len(buf)
                break
            if buf[end] == 0x0D:
                if end + 1 < len(buf):
                    eol = "CRLF" if buf[end + 1] == 0x0A else "CR"
                else:
                    eol = "CR"
                    self._pending_cr = True
            else:
                eol = "LF"
            nxt = end + (2 if eol == "CRLF" else 1)
            if end - pos > self.max_line_bytes:
                raise SSEError(f"an SSE line exceeded {self.max_line_bytes} bytes")
            line = bytes(buf[pos:end])
            self.framing.line_endings[eol] += 1
            self._raw += buf[pos:nxt]
            event = self._process_line(line, stamp)
            if event is not None:
                events.append(event)
            if self._pending_cr:
                self._cr_blank, self._cr_event = not line, event
            pos = nxt
            self._scan = pos
        if pos:
            del buf[:pos]
            self._scan -= pos
        if len(buf) > self.max_line_bytes:
            raise SSEError(f"an SSE line exceeded {self.max_line_bytes} bytes")
        return events

    def close(self) -> None:
        """Mark end of stream: a trailing partial event is discarded, as the spec says."""
        tail = bytes(self._raw) + bytes(self._buf)
        if self._data or self._buf:
            self.framing.unterminated_tail = tail
        self._buf.clear()
        self._data = []
        self._raw.clear()

    def iter_events(self, chunks: Iterator[bytes]) -> Iterator[Event]:
        """Decode an iterable of chunks to the end, closing at the end."""
        for chunk in chunks:
            yield from self.feed(chunk)
        self.close()

    @staticmethod
    def _find_eol(buf: bytearray, start: int) -> int:
        lf = buf.find(b"\n", start)
        cr = buf.find(b"\r", start, lf if lf >= 0 else len(buf))
        return cr if cr >= 0 else lf

    def _decode(self, raw: bytes) -> str | None:
        """UTF-8 text, or None when the bytes are not valid UTF-8 (counted in the framing)."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _process_line(self, line: bytes, stamp: float) -> Event | None:
        if not line:
            return self._dispatch(stamp)
        if line.startswith(b":"):
            self.framing.comments += 1
            return None
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        elif name == b"data":
            self.framing.data_without_space += 1
        field_name = self._decode(name)
        text = self._decode(value)
        if field_name is None or text is None:
            # The spec decodes with replacement characters; we do too, and remember it.
            self.framing.invalid_utf8_lines += 1
            field_name = name.decode("utf-8", errors="replace")
            text = value.decode("utf-8", errors="replace")
            if field_name == "data":
                self._data_invalid = True
        if field_name == "data":
            self._data.append(text)
        else:
            self.framing.other_fields[field_name] = self.framing.other_fields.get(field_name, 0) + 1
            if field_name == "event":
                self._event_type = text
            elif field_name == "id" and "\x00" not in text:
                self._last_id = text
        return None

    def _dispatch(self, stamp: float) -> Event | None:
        raw = bytes(self._raw)
        self._raw.clear()
        if not self._data:
            self._event_type = ""
            self._data_invalid = False
            return None
        if len(self._data) > 1:
            self.framing.multiline_events += 1
        event = Event(
            data="\n".join(self._data),
            event=self._event_type or "message",
            id=self._last_id,
            raw=raw,
            received_at=stamp,
            invalid_utf8=self._data_invalid,
        )
        self._data = []
        self._event_type = ""
        self._data_invalid = False
        self.event_count += 1
        if self.event_count > self.max_events:
            raise SSEError(f"the stream sent more than {self.max_events} events")
        return event


def decode_all(data: bytes) -> tuple[list[Event], Framing]:
    """Decode a complete byte string at once (tests and offline analysis)."""
    decoder = SSEDecoder()
    events = decoder.feed(data, now=0.0)
    decoder.close()
    return events, decoder.framing
