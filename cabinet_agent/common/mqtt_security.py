"""The rule for plain MQTT, shared by agent and server config (the server imports it).

Plain MQTT is allowed to a loopback broker (``make demo``, tests, a broker on the same host);
to any other host it is refused unless ``allow_plaintext = true`` says so, because the
password and every message would cross the network readable.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

__all__ = ["check_transport_security", "is_loopback"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; a name is never resolved (no DNS at load)."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_transport_security(host: str, tls: bool, allow_plaintext: bool,
                             cert_file: Path | None, key_file: Path | None) -> None:
    """Raise ValueError when the settings would send credentials in clear or are inconsistent."""
    if not tls and not allow_plaintext and not is_loopback(host):
        raise ValueError(
            f"plain MQTT to {host} is refused: set tls = true (port 8883, ca_file), or "
            "allow_plaintext = true if this network is trusted")
    if not tls and (cert_file is not None or key_file is not None):
        raise ValueError("cert_file/key_file need tls = true")
    if key_file is not None and cert_file is None:
        raise ValueError("key_file needs cert_file")
