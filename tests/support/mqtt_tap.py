"""What a client published, read off the wire: the truth a fault test counts stored data against.

``PublishTap.stream`` is given to ``NetProxy(tap=...)``; it parses the client's side of each
connection (MQTT 3.1.1 fixed header, remaining length, PUBLISH's topic, packet id and payload) and
keeps every PUBLISH that went on to the broker, resent ones included.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["PublishTap"]

_PUBLISH = 3


def _packet(buffer: bytearray) -> tuple[int, int, bytes] | None:
    """(length of the whole packet, first byte, body) of the first complete packet, or None."""
    if len(buffer) < 2:
        return None
    remaining, shift, index = 0, 0, 1
    while True:
        if index >= len(buffer) or index > 4:
            return None
        byte = buffer[index]
        remaining += (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
    end = index + remaining
    if len(buffer) < end:
        return None
    return end, buffer[0], bytes(buffer[index:end])


class PublishTap:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published: list[tuple[str, bytes]] = []

    def stream(self) -> Callable[[bytes], None]:
        """A parser for one connection."""
        buffer = bytearray()

        def feed(data: bytes) -> None:
            buffer.extend(data)
            while (packet := _packet(buffer)) is not None:
                length, first, body = packet
                del buffer[:length]
                if first >> 4 != _PUBLISH:
                    continue
                qos = (first >> 1) & 3
                topic_length = int.from_bytes(body[:2], "big")
                start = 2 + topic_length + (2 if qos else 0)
                with self._lock:
                    self._published.append((body[2:2 + topic_length].decode(), body[start:]))

        return feed

    def published(self, suffix: str = "") -> list[tuple[str, bytes]]:
        """Every PUBLISH so far (topic, payload) whose topic ends with ``suffix``."""
        with self._lock:
            return [(t, p) for t, p in self._published if t.endswith(suffix)]
