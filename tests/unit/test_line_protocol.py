"""The line protocol (docs/serial-line-protocol.md): good lines, bad lines, and noise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cabinet_agent.line_protocol import (
    MAX_LINE_BYTES,
    LineDecoder,
    LineReading,
    Rejected,
    checksum,
    format_line,
    format_value,
)
from cabinet_agent.registers import load_profile
from tests.support.explore import examples

PROFILE = load_profile("ladewache-line-board-16")


def _line(body: str) -> bytes:
    """A line with a correct checksum around ``body``."""
    return f"${body}*{checksum(body.encode()):02X}\r\n".encode()


def _decode(data: bytes) -> tuple[list[LineReading], LineDecoder]:
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    return decoder.feed(data), decoder


def test_checksum_is_the_xor_between_dollar_and_star() -> None:
    # NMEA's own example sentence: $GPGLL,5300.97914,N,00259.98174,E,125926,A*28
    assert checksum(b"GPGLL,5300.97914,N,00259.98174,E,125926,A") == 0x28
    assert format_line("power", "12.5", 3) == b"$power.3,12.5*56\r\n"


@pytest.mark.parametrize(
    ("line", "reading"),
    [
        (_line("power.3,12.5"), LineReading("power", 3, 12.5)),
        (_line("power.0,0"), LineReading("power", 0, 0.0)),
        (_line("power.15,-0.5"), LineReading("power", 15, -0.5)),
        (_line("temperature,-7.5"), LineReading("temperature", None, -7.5)),
        (_line("temperature,2.15e1"), LineReading("temperature", None, 21.5)),
        (_line("temperature,.5"), LineReading("temperature", None, 0.5)),
        (_line("temperature,nan"), LineReading("temperature", None, None)),
        (_line("temperature,NaN"), LineReading("temperature", None, None)),
        (_line("humidity,"), LineReading("humidity", None, None)),  # empty: unknown
        (_line("door,1"), LineReading("door", None, True)),
        (_line("mains,0"), LineReading("mains", None, False)),
        (_line("door,nan"), LineReading("door", None, None)),
        (_line("power.3,12.5").lower(), LineReading("power", 3, 12.5)),  # lower-case hex
        (_line("power.3,12.5").replace(b"\r\n", b"\n"), LineReading("power", 3, 12.5)),
    ],
)
def test_good_lines(line: bytes, reading: LineReading) -> None:
    readings, decoder = _decode(line)
    assert readings == [reading]
    assert (decoder.accepted, decoder.rejected_total) == (1, 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"$power.3,12.5*57\r\n", Rejected.BAD_CHECKSUM),
        (b"$power.3,12.5\r\n", Rejected.NO_CHECKSUM),
        (b"$power.3,12.5*5\r\n", Rejected.NO_CHECKSUM),
        (b"$power.3,12.5*ZZ\r\n", Rejected.NO_CHECKSUM),
        (b"ower.3,12.5*56\r\n", Rejected.NO_START),  # the tail of a cut line
        (b"xx" + _line("door,1"), Rejected.NO_START),  # noise glued to the front
        (b"$power.3,1\xff2.5*56\r\n", Rejected.NOT_ASCII),
        (b"$pow\ter,1*00\r\n", Rejected.NOT_ASCII),
        (_line("power.3"), Rejected.SYNTAX),
        (_line("power.3,1,2"), Rejected.SYNTAX),
        (_line("Power.3,1"), Rejected.SYNTAX),
        (_line("power.03,1"), Rejected.SYNTAX),
        (_line("voltage,230"), Rejected.UNKNOWN_KEY),
        (_line("power,12"), Rejected.BAD_CHANNEL),  # power has channels
        (_line("power.16,12"), Rejected.BAD_CHANNEL),
        (_line("door.0,1"), Rejected.BAD_CHANNEL),  # door has none
        (_line("power.1,twelve"), Rejected.BAD_VALUE),
        (_line("power.1,inf"), Rejected.BAD_VALUE),
        (_line("power.1,1_000"), Rejected.BAD_VALUE),
        (_line("power.1, 12"), Rejected.BAD_VALUE),
        (_line("door,2"), Rejected.BAD_VALUE),
        (_line("door,true"), Rejected.BAD_VALUE),
        (b"$" + b"a" * MAX_LINE_BYTES + b"\r\n", Rejected.TOO_LONG),
    ],
)
def test_bad_lines_are_rejected_and_counted(line: bytes, reason: Rejected) -> None:
    readings, decoder = _decode(line + _line("door,1"))  # a good line after: still read
    assert readings == [LineReading("door", None, True)]
    assert decoder.rejected == {reason: 1}
    assert decoder.accepted == 1
    assert decoder.last_rejection is not None and decoder.last_rejection.startswith(reason.value)


def test_lines_in_any_pieces_and_empty_lines() -> None:
    stream = b"\r\n" + _line("power.1,5") + b"\n" + _line("temperature,20.5")
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    readings = [r for i in range(len(stream)) for r in decoder.feed(stream[i:i + 1])]
    assert readings == [LineReading("power", 1, 5.0), LineReading("temperature", None, 20.5)]
    assert decoder.rejected_total == 0


def test_an_over_long_line_is_dropped_up_to_its_end_and_counted_once() -> None:
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    for _ in range(10):
        assert decoder.feed(b"$" + b"x" * 50) == []
    assert decoder.feed(b"tail*00\r\n" + _line("door,0")) == [LineReading("door", None, False)]
    assert decoder.rejected == {Rejected.TOO_LONG: 1}


def test_a_line_cut_by_closing_the_port_is_counted() -> None:
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    decoder.feed(_line("door,1")[:5])
    decoder.reset()
    assert decoder.rejected == {Rejected.CUT: 1}
    assert decoder.feed(_line("door,1")) == [LineReading("door", None, True)]


@pytest.mark.parametrize(("value", "decimals", "scale", "text"), [
    (None, 1, 1.0, "nan"), (True, 1, 1.0, "1"), (False, 1, 1.0, "0"), (19.84, 1, 1.0, "19.8"),
    (-7.5, 0, 1.0, "-8"), (1.5, 0, 0.001, "1500"),
])
def test_format_value(value: float | bool | None, decimals: int, scale: float, text: str) -> None:
    assert format_value(value, decimals, scale) == text


def _line_events(data: bytes) -> int:
    """How many lines ``data`` holds, by the protocol's rules: each is read or counted once."""
    *complete, tail = data.split(b"\n")
    events = sum(1 for line in complete if len(line) + 1 > MAX_LINE_BYTES or line not in (b"", b"\r"))
    if len(tail) + 1 > MAX_LINE_BYTES or tail.strip():
        events += 1  # cut by the close, or too long already
    return events


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_random_bytes_never_raise_and_every_line_is_counted(data: bytes, cuts: list[int]) -> None:
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    position = 0
    for size in [*cuts, len(data)]:  # the same bytes, in arbitrary pieces
        decoder.feed(data[position:position + size])
        position += size
    decoder.reset()
    assert decoder.accepted + decoder.rejected_total == _line_events(data)


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=400).map(lambda b: b.replace(b"$", b"#")))
def test_random_bytes_without_a_start_mark_are_all_rejected(data: bytes) -> None:
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    decoder.feed(data)
    decoder.reset()
    assert decoder.accepted == 0
    assert decoder.rejected_total == _line_events(data)


def test_the_examples_in_the_protocol_document_are_valid() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "serial-line-protocol.md").read_text()
    examples = [line.removesuffix("\\r\\n").encode() + b"\r\n" for line in doc.splitlines()
                if line.startswith("$")]
    assert len(examples) >= 7
    decoder = LineDecoder(PROFILE)  # type: ignore[arg-type]
    readings = decoder.feed(b"".join(examples))
    assert decoder.rejected_total == 0 and len(readings) == len(examples)
