"""The simulator's RTU frames and wire timing, against the byte examples and table of hardware.md."""

from __future__ import annotations

import pytest

from cabinet_agent.registers import ReadBlock
from cabinet_agent.sources.modbus_rtu import rtu_frame_bytes
from cabinet_agent.sources.serial_port import frame_gap_s, rtu_wire_time_s
from simulators.rtu_frames import (
    Request,
    RtuTiming,
    collide,
    corrupt,
    crc_ok,
    exception_reply,
    read_reply,
    split_request,
    with_crc,
    write_reply,
)


@pytest.mark.parametrize("frame_hex", [
    "01 02 00 00 00 08 79 CC",  # Waveshare IO 8CH: read 8 inputs (hardware.md §1b)
    "01 02 01 20 A0 50",  # ... its reply, DI6 on
    "01 05 00 00 FF 00 8C 3A",  # ... switch output 1 on
])
def test_crc_matches_the_manufacturers_frames(frame_hex: str) -> None:
    frame = bytes.fromhex(frame_hex)
    assert with_crc(frame[:-2]) == frame
    assert crc_ok(frame) and not crc_ok(corrupt(frame))


def test_a_read_request_is_split_and_answered() -> None:
    used, request = split_request(bytes.fromhex("01 02 00 00 00 08 79 CC") + b"\x01")
    assert used == 8 and request == Request(1, 2, 0, 8)
    assert read_reply(1, 2, [0, 0, 0, 0, 0, 1, 0, 0]) == bytes.fromhex("01 02 01 20 A0 50")
    assert read_reply(3, 4, [0x4366, 0x3334])[:7] == bytes.fromhex("03 04 04 43 66 33 34")


def test_writes_are_decoded_and_confirmed() -> None:
    frame = bytes.fromhex("01 05 00 00 FF 00 8C 3A")
    used, request = split_request(frame)
    assert request is not None and request.values == (0xFF00,) and request.is_write
    assert write_reply(request, frame) == frame  # FC05 echoes the request
    multi = with_crc(bytes.fromhex("02 10 00 01 00 02 04 00 0A 01 02"))
    used, request = split_request(multi)
    assert used == len(multi) and request == Request(2, 16, 1, 2, (10, 258), len(multi))
    assert write_reply(request, multi) == with_crc(bytes.fromhex("02 10 00 01 00 02"))
    coils = with_crc(bytes.fromhex("02 0F 00 00 00 0A 02 CD 01"))
    assert split_request(coils)[1] == Request(2, 15, 0, 10, (1, 0, 1, 1, 0, 0, 1, 1, 1, 0),
                                              len(coils))


@pytest.mark.parametrize(("buffer", "used"), [
    (b"", 0), (b"\x01", 0), (bytes.fromhex("01 04 00 00"), 0),  # still arriving
    (bytes.fromhex("01 10 00 01 00 02"), 0),  # byte count not there yet
    (bytes.fromhex("01 63 00 00 00 01 00 00"), 1),  # unknown function: hunt
    (bytes.fromhex("01 04 00 00 00 01 00 00"), 1),  # bad CRC: hunt
])
def test_partial_and_broken_frames(buffer: bytes, used: int) -> None:
    assert split_request(buffer) == (used, None)


def test_collisions_and_exceptions_look_like_the_wire() -> None:
    a, b = read_reply(1, 4, [230]), read_reply(1, 4, [21])
    assert not crc_ok(collide([a, b]))
    assert exception_reply(1, 4, 2) == with_crc(bytes.fromhex("01 84 02"))


@pytest.mark.parametrize(("baud", "block", "ms"), [
    # hardware.md §3 "Derived wire time", 11-bit characters
    (9600, ReadBlock(4, 0, 2, ()), 27.5), (9600, ReadBlock(4, 0, 32, ()), 96.2),
    (9600, ReadBlock(2, 0, 8, ()), 24.1), (19200, ReadBlock(4, 0, 2, ()), 13.7),
    (19200, ReadBlock(4, 0, 32, ()), 48.1), (19200, ReadBlock(2, 0, 8, ()), 12.0),
    (38400, ReadBlock(4, 0, 32, ()), 25.6), (115200, ReadBlock(4, 0, 32, ()), 10.9),
])
def test_wire_time_of_a_transaction(baud: int, block: ReadBlock, ms: float) -> None:
    request, reply = rtu_frame_bytes(block)
    assert rtu_wire_time_s(request, reply, baud, 11) * 1000 == pytest.approx(ms, abs=0.1)
    timing = RtuTiming(baud, 11)
    assert timing.transaction_s(request, reply) == pytest.approx(ms / 1000, abs=1e-4)


def test_the_silent_interval_is_fixed_above_19200_baud() -> None:
    assert frame_gap_s(19200, 11) == pytest.approx(3.5 * 11 / 19200)
    assert frame_gap_s(38400, 11) == frame_gap_s(115200, 10) == 0.00175
