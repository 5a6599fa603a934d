"""Modbus TCP server for a ``CabinetSim``: each device of the cabinet model answers at its unit id.

pymodbus 3.16 deprecates its datastore classes (``ModbusDeviceContext`` and the data blocks log a
deprecation warning) and its simulator lacks delays and dead slaves (hardware.md §1 (d)), so this
module answers from the cabinet's state on every request instead. How it plugs in, from the
pymodbus 3.16.1 source:

* ``server/base.py``: a ``ModbusServerContext`` with ``old_simulator`` set and no ``simdevices`` is
  used as is, and every request PDU calls its ``async_getValues`` / ``async_setValues``.
* ``pdu/*_message.py``: an ``ExcCodes`` return value becomes an exception response.
* ``server/requesthandler.py``: ``NoSuchIdException`` with ``ignore_missing_devices=True`` sends
  nothing, so the client times out, exactly like a dead RS-485 slave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import cast

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from .cabinet import CabinetSim, DeviceFault
from .slaves import SlaveSet

__all__ = ["CabinetDatastore", "CabinetModbusServer", "ModbusServerThread"]

log = logging.getLogger(__name__)


class CabinetDatastore(ModbusServerContext):
    """Answers requests from the cabinet's current state; knows faults and reply delays.

    Behind a TCP gateway, RS-485 trouble looks like this: a dead (or moved) slave is silence; a
    slave whose reply arrives garbled, or two slaves answering at once, is the gateway's exception
    0x0B "target device failed to respond".
    """

    def __init__(self, sim: CabinetSim, *, reply_delay_s: float = 0.0) -> None:
        # Deliberately no super().__init__(): it wants deprecated device contexts and logs a
        # deprecation warning. ModbusBaseServer only looks at these two attributes.
        self.old_simulator = True
        self.simdevices = []
        if reply_delay_s < 0:
            raise ValueError("reply_delay_s must be >= 0")
        self.sim = sim
        self.reply_delay_s = reply_delay_s
        self.slaves = SlaveSet(sim)

    def device_ids(self) -> list[int]:
        return self.slaves.unit_ids()

    def _device(self, device_id: int) -> str | ExcCodes:
        names = self.slaves.answering(device_id)
        if not names:
            # Unknown and dead units alike get no reply at all (see the module docstring).
            raise NoSuchIdException(f"unit {device_id} does not answer")
        if len(names) > 1 or self.slaves.fault(names[0]) is DeviceFault.GARBAGE:
            return ExcCodes.GATEWAY_NO_RESPONSE
        return names[0]

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        name = self._device(device_id)
        if self.reply_delay_s:
            await asyncio.sleep(self.reply_delay_s)
        if isinstance(name, ExcCodes):
            return name
        raw = self.slaves.read(name, func_code, address, count)
        if isinstance(raw, int):
            return ExcCodes(raw)
        return [bool(v) for v in raw] if func_code in (1, 2) else raw

    async def async_setValues(
        self, device_id: int, func_code: int, address: int,
        values: Sequence[int] | Sequence[bool],
    ) -> ExcCodes | None:
        name = self._device(device_id)
        if isinstance(name, ExcCodes):
            return name
        code = self.slaves.write(name, func_code, address, [int(v) for v in values])
        return None if code is None else ExcCodes(code)


class CabinetModbusServer:
    """The TCP listener. Create and use it inside a running event loop (pymodbus requires it)."""

    def __init__(self, sim: CabinetSim, *, host: str = "127.0.0.1", port: int = 0,
                 reply_delay_s: float = 0.0) -> None:
        self.datastore = CabinetDatastore(sim, reply_delay_s=reply_delay_s)
        self._host = host
        self._port = port
        self._server: ModbusTcpServer | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Bind and listen; returns the real (host, port), which matters for port 0."""
        server = ModbusTcpServer(self.datastore, address=(self._host, self._port),
                                 ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server
        listener = cast(asyncio.Server, server.transport)
        host, port = listener.sockets[0].getsockname()[:2]
        self.address = (str(host), int(port))
        log.info("Modbus TCP listening on %s:%d", host, port)
        return self.address

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await server.shutdown()
        # Let the closed transports run their connection_lost callbacks before the loop ends.
        await asyncio.sleep(0)


class ModbusServerThread:
    """A ``CabinetModbusServer`` on its own event loop in a daemon thread.

    For callers without an event loop of their own: synchronous tests, and tests of the agent.
    Use as a context manager; entering returns the (host, port) the server listens on.
    """

    def __init__(self, sim: CabinetSim, *, host: str = "127.0.0.1", port: int = 0,
                 reply_delay_s: float = 0.0) -> None:
        self._args = (sim, host, port, reply_delay_s)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modbus-sim", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.address: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("Modbus server thread did not start")
        if self._error is not None:
            raise RuntimeError(f"Modbus server failed to start: {self._error}") from self._error
        assert self.address is not None
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> tuple[str, int]:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread has nobody else to tell
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        sim, host, port, delay = self._args
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = CabinetModbusServer(sim, host=host, port=port, reply_delay_s=delay)
        self.address = await server.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop()
