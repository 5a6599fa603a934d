"""A broker's address as a config writes it: ``host``, ``host:port`` or ``[v6-address]:port``.

Shared layer: the agent's ``[mqtt] failover`` list is parsed here, and a collector that reads a
list of brokers may parse it the same way. No I/O, no DNS: a name is checked for its form only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .mqtt_security import check_transport_security

__all__ = ["BrokerAddress", "check_broker_list", "parse_broker"]

_NOT_IN_A_HOST = frozenset(" \t\r\n/@?#[]")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("empty host")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not in 1-65535")

    def __str__(self) -> str:
        # An IPv6 address needs brackets, or its last group would read as the port.
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def same_as(self, other: BrokerAddress) -> bool:
        """The same broker, whatever the case of a name or the spelling of an IPv6 address (no
        DNS: two names stay two brokers, even when they resolve to one)."""
        return self.port == other.port and _host_key(self.host) == _host_key(other.host)


def _host_key(host: str) -> str:
    name = host.strip("[]").lower()
    return _ipv6(name) or name


def _ipv6(text: str) -> str | None:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not in 1-65535")
    return port


def parse_broker(entry: str, default_port: int) -> BrokerAddress:
    """``"b2.example"``, ``"b2.example:8883"``, ``"10.0.0.2"``, ``"[fd00::2]:8883"`` or a bare IPv6
    address (``"fd00::2"``, then without a port). ValueError says what is wrong with ``entry``."""
    text = entry.strip()
    if not text:
        raise ValueError("empty entry")
    if "://" in text:
        raise ValueError("give host or host:port, not a URL (TLS is the section's tls)")
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        address = _ipv6(inside) if bracket else None
        if address is None:
            raise ValueError("[…] must hold an IPv6 address, as in [fd00::2]:8883")
        if rest and not rest.startswith(":"):
            raise ValueError("after [address] only :port may follow")
        return BrokerAddress(address, _port(rest[1:]) if rest else default_port)
    if text.count(":") > 1:
        address = _ipv6(text)
        if address is None:
            raise ValueError("an IPv6 address with a port is written [address]:port")
        return BrokerAddress(address, default_port)
    host, colon, port = text.partition(":")
    if not host:
        raise ValueError("empty host")
    if bad := sorted(set(host) & _NOT_IN_A_HOST):
        raise ValueError(f"{''.join(bad)!r} cannot be part of a host name")
    return BrokerAddress(host, _port(port) if colon else default_port)


def check_broker_list(entries: list[str], given: Mapping[str, Any]) -> list[BrokerAddress]:
    """The brokers of an ``[mqtt] failover`` list (agent and collector alike), checked against the
    section's keys validated before it (``given``: ``host``, ``port``, ``tls``,
    ``allow_plaintext``, those that were valid): each well formed, none the primary, none twice,
    the plain-MQTT rule for each. ValueError names the entry."""
    primary = (BrokerAddress(given["host"], given["port"])
               if given.get("host") and "port" in given else None)
    seen: list[BrokerAddress] = []
    for number, entry in enumerate(entries, 1):
        where = f"entry {number} {entry!r}"
        try:
            broker = parse_broker(entry, given.get("port", 1883))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if primary is not None and broker.same_as(primary):
            raise ValueError(f"{where}: is host:port itself ({primary}); list only the others")
        if any(broker.same_as(other) for other in seen):
            raise ValueError(f"{where}: {broker} is listed twice")
        if "tls" in given and "allow_plaintext" in given:
            try:
                check_transport_security(broker.host, given["tls"], given["allow_plaintext"],
                                         None, None)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from exc
        seen.append(broker)
    return seen
