"""Modbus RTU frames for the simulated slaves: CRC16, request parsing, replies, wire time. Pure.

Written here instead of borrowing pymodbus' server framer so the simulator controls what goes on
the wire: when a reply leaves, whether its CRC is right, what two slaves answering at once look
like. Function codes 01–06, 15 and 16.
"""

from __future__ import annotations

from dataclasses import dataclass

from cabinet_agent.sources.serial_port import char_time_s, frame_gap_s

__all__ = [
    "BIT_READS",
    "REGISTER_READS",
    "Request",
    "RtuTiming",
    "collide",
    "corrupt",
    "crc16",
    "crc_ok",
    "exception_reply",
    "read_reply",
    "split_request",
    "with_crc",
    "write_reply",
]

BIT_READS = frozenset({1, 2})
REGISTER_READS = frozenset({3, 4})
_FIXED_LENGTH = frozenset({1, 2, 3, 4, 5, 6})  # 8-byte requests
_WITH_BYTE_COUNT = frozenset({15, 16})  # 9 bytes + the data


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, start 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


@dataclass(frozen=True, slots=True)
class Request:
    unit: int
    function: int
    address: int
    count: int  # registers or bits; 1 for FC05/FC06
    values: tuple[int, ...] = ()  # what a write carries (bits as 0/1)
    size: int = 8  # bytes on the wire

    @property
    def is_write(self) -> bool:
        return self.function in (5, 6, 15, 16)


def split_request(buffer: bytes) -> tuple[int, Request | None]:
    """``(bytes consumed, request)`` from the front of ``buffer``.

    ``(0, None)``: a frame may still be arriving. ``(1, None)``: the first byte starts no valid frame
    (garbage, or a function this slave does not know): drop it and hunt for the next frame.
    """
    if len(buffer) < 2:
        return 0, None
    function = buffer[1]
    if function in _FIXED_LENGTH:
        size = 8
    elif function in _WITH_BYTE_COUNT:
        if len(buffer) < 7:
            return 0, None
        size = 9 + buffer[6]
    else:
        return 1, None
    if len(buffer) < size:
        return 0, None
    frame = buffer[:size]
    if not crc_ok(frame):
        return 1, None
    return size, _decode(frame)


def _decode(frame: bytes) -> Request:
    unit, function = frame[0], frame[1]
    address = int.from_bytes(frame[2:4], "big")
    word = int.from_bytes(frame[4:6], "big")
    if function in (5, 6):
        return Request(unit, function, address, 1, (word,), len(frame))
    if function in _WITH_BYTE_COUNT:
        data = frame[7:-2]
        if function == 15:
            bits = tuple((data[i // 8] >> (i % 8)) & 1 for i in range(min(word, len(data) * 8)))
            return Request(unit, function, address, word, bits, len(frame))
        registers = tuple(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))
        return Request(unit, function, address, word, registers, len(frame))
    return Request(unit, function, address, word, (), len(frame))


def read_reply(unit: int, function: int, raw: list[int]) -> bytes:
    """The normal reply to FC01–FC04 carrying ``raw`` (bits as 0/1, or registers)."""
    if function in BIT_READS:
        data = bytearray((len(raw) + 7) // 8)
        for i, bit in enumerate(raw):
            if bit:
                data[i // 8] |= 1 << (i % 8)
        payload = bytes(data)
    else:
        payload = b"".join((word & 0xFFFF).to_bytes(2, "big") for word in raw)
    return with_crc(bytes([unit, function, len(payload)]) + payload)


def write_reply(request: Request, frame_head: bytes) -> bytes:
    """FC05/06 echo the request; FC15/16 confirm address and count."""
    if request.function in (5, 6):
        return with_crc(frame_head[:6])
    return with_crc(bytes([request.unit, request.function]) + request.address.to_bytes(2, "big")
                    + request.count.to_bytes(2, "big"))


def exception_reply(unit: int, function: int, code: int) -> bytes:
    return with_crc(bytes([unit, function | 0x80, code]))


def corrupt(frame: bytes) -> bytes:
    """The same frame with one bit flipped, as line noise does: the CRC no longer fits."""
    damaged = bytearray(frame)
    damaged[len(damaged) // 2] ^= 0x10
    return bytes(damaged)


def collide(frames: list[bytes]) -> bytes:
    """Two slaves talking at once: the wire carries neither frame (a wired-AND of both)."""
    longest = max(frames, key=len)
    mixed = bytearray(longest)
    for frame in frames:
        if frame is longest:
            continue
        for i, byte in enumerate(frame):
            mixed[i] &= byte
    result = bytes(mixed)
    return corrupt(result) if crc_ok(result) else result


@dataclass(frozen=True, slots=True)
class RtuTiming:
    """How long frames take on the simulated wire.

    ``bits_per_char`` is 11 (8E1 or 8N2, Modbus' standard framing) even though a pty carries 8N1:
    ptys cannot do parity and enforce no baud rate, so the simulator paces the wire itself.
    """

    baudrate: int
    bits_per_char: int = 11
    turnaround_s: float = 0.0  # the slave's think time between request and reply

    def __post_init__(self) -> None:
        if self.baudrate <= 0 or self.bits_per_char not in (10, 11) or self.turnaround_s < 0:
            raise ValueError("need baudrate > 0, bits_per_char 10 or 11, turnaround_s >= 0")

    @property
    def char_s(self) -> float:
        return char_time_s(self.baudrate, self.bits_per_char)

    @property
    def gap_s(self) -> float:
        return frame_gap_s(self.baudrate, self.bits_per_char)

    def frame_s(self, size: int) -> float:
        return size * self.char_s

    def transaction_s(self, request_size: int, reply_size: int) -> float:
        """Request, t3.5, turnaround, reply, t3.5: the wire time of one exchange."""
        return (self.frame_s(request_size) + self.gap_s + self.turnaround_s
                + self.frame_s(reply_size) + self.gap_s)
