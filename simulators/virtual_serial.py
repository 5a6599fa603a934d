"""A virtual serial port: a pty pair behind a stable symlink, that can be unplugged and replugged.

The simulator keeps the master side; an agent opens ``link`` (a symlink to the slave node
``/dev/pts/N``), as it would open ``/dev/serial/by-id/usb-…``. ``unplug()`` closes the pty, so the
agent's reads and writes fail with EIO and the node disappears, like a USB adapter pulled out.
``plug(link)`` makes a new pty, under the same link (a by-id link udev re-points) or another one
(the adapter came back as ``ttyUSB1``).

The simulator keeps the slave side open as well, so the master never sees a hang-up while no agent
has the port open.
"""

from __future__ import annotations

import contextlib
import errno
import os
import termios
import tty
from pathlib import Path

__all__ = ["VirtualSerialPort"]

_BAUD_OF_CONSTANT = {getattr(termios, f"B{b}"): b for b in (
    1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400) if hasattr(termios, f"B{b}")}


class VirtualSerialPort:
    def __init__(self, link: Path) -> None:
        self.link = link
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.node: str | None = None  # /dev/pts/N while plugged
        self.dropped_bytes = 0  # written while nobody read (the pty buffer was full)

    @property
    def plugged(self) -> bool:
        return self.master_fd is not None

    def plug(self, link: Path | None = None) -> Path:
        """Create the pty and point ``link`` (default: the last one) at it; returns the link."""
        if self.plugged:
            raise RuntimeError(f"{self.link} is plugged in already")
        if link is not None:
            self.link = link
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd, self.node = master, slave, os.ttyname(slave)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(self.node)
        temporary.replace(self.link)  # atomic: the link is never missing or half made
        return self.link

    def unplug(self) -> None:
        """Remove the link and close the pty: the agent's open port fails with EIO."""
        if self.link.is_symlink() and os.readlink(self.link) == self.node:
            self.link.unlink()
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = self.node = None

    def line_baud(self) -> int | None:
        """The baud rate the agent set on its side (a pty master reports the slave's termios)."""
        if self.master_fd is None:
            return None
        try:
            speed = termios.tcgetattr(self.master_fd)[5]
        except termios.error:
            return None
        return _BAUD_OF_CONSTANT.get(speed)

    def read(self) -> bytes:
        if self.master_fd is None:
            return b""
        try:
            return os.read(self.master_fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # no slave side open: nothing to read
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Write what fits; the rest is dropped and counted, as a UART with nobody listening."""
        if self.master_fd is None:
            return 0
        try:
            written = os.write(self.master_fd, data)
        except (BlockingIOError, OSError):
            written = 0
        self.dropped_bytes += len(data) - written
        return written
