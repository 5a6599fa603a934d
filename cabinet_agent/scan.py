"""``cabinet-agent scan``: which Modbus RTU devices answer on a serial port, at which baud rate.

Every address is asked for one register at every baud rate, with a short timeout. A device that
answers, even with a Modbus exception (it does not have that register), is there. Bytes that make no
valid frame are reported too: at the wrong baud rate, or two devices with one address, that is what
the wire carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .common.errors import BusUnavailable, ExceptionResponse, NoReply
from .config import RtuBus
from .registers import ReadBlock
from .sources.modbus_rtu import ModbusRtuBus

__all__ = ["ScanHit", "parse_addresses", "parse_bauds", "scan"]


@dataclass(frozen=True, slots=True)
class ScanHit:
    baudrate: int
    address: int
    answer: str  # "registers", "exception 2", "garbled (7 bytes)"

    @property
    def present(self) -> bool:
        return not self.answer.startswith("garbled")


def parse_bauds(text: str) -> list[int]:
    try:
        bauds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--bauds takes numbers separated by commas, not {text!r}") from None
    if not bauds:
        raise ValueError("--bauds is empty")
    return bauds


def parse_addresses(text: str) -> list[int]:
    """``1-247``, ``1,2,5-9``."""
    addresses: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"--addresses takes 1-247 or 1,2,5-9, not {text!r}") from None
        if not 1 <= first <= last <= 247:
            raise ValueError(f"addresses must lie within 1..247: {part!r}")
        addresses.extend(range(first, last + 1))
    return sorted(set(addresses))


async def scan(port: str, bauds: Sequence[int], addresses: Sequence[int], *, parity: str = "N",
               stopbits: int = 1, bytesize: int = 8, timeout_s: float = 0.1, function: int = 3,
               register: int = 0,
               on_hit: Callable[[ScanHit], None] | None = None) -> list[ScanHit]:
    """Probe every address at every baud rate; raises BusUnavailable when the port is not there."""
    hits: list[ScanHit] = []
    probe = ReadBlock(function, register, 1, ())
    for baud in bauds:
        config = RtuBus.model_validate({
            "transport": "rtu", "port": port, "baudrate": baud, "parity": parity,
            "stopbits": stopbits, "bytesize": bytesize, "timeout_s": timeout_s, "retries": 0,
            "reopen_min_s": 0.1, "reopen_max_s": 0.1})
        bus = ModbusRtuBus(f"scan-{baud}", config)
        try:
            for address in addresses:
                hit = await _probe(bus, baud, address, probe, timeout_s)
                if hit is not None:
                    hits.append(hit)
                    if on_hit is not None:
                        on_hit(hit)
        finally:
            await bus.close()
    return hits


async def _probe(bus: ModbusRtuBus, baud: int, address: int, probe: ReadBlock,
                 timeout_s: float) -> ScanHit | None:
    try:
        await bus.read(address, probe, timeout_s=timeout_s)
    except ExceptionResponse as exc:
        return ScanHit(baud, address, f"exception {exc.code}")
    except BusUnavailable:
        raise
    except NoReply as exc:
        if exc.garbled_bytes:
            return ScanHit(baud, address, f"garbled ({exc.garbled_bytes} bytes)")
        return None
    return ScanHit(baud, address, "registers")

