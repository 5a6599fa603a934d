"""Mosquitto's password and ACL files, as ``cabinet-server provision`` writes them.

Password file: ``mosquitto_passwd -b`` when it is installed, otherwise the same ``$7$`` line
mosquitto 2 writes itself (PBKDF2-SHA512, 101 iterations, 12-byte salt, base64). ACL file:
explicit ``user`` + ``topic`` lines per cabinet, never ``pattern`` lines, because mosquitto 2
refuses ``%u``/``%c`` substitutions that contain ``/``, ``+`` or ``#`` and a cabinet's prefix
has two levels.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AclEntry",
    "PasswordFile",
    "atomic_write",
    "hash_password",
    "render_acl",
]

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default in 2.0
SALT_BYTES = 12


class BrokerFileError(Exception):
    """A password or ACL file could not be written; the message says which and why."""


def hash_password(password: str, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """The ``$7$`` hash mosquitto 2 reads: ``$7$<iterations>$<b64 salt>$<b64 sha512 pbkdf2>``."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``path`` via a temp file + rename; keep an existing file's mode and owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    owner: tuple[int, int] | None = None
    if path.exists():
        st = path.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class PasswordFile:
    """One mosquitto password file; ``tool`` is the path of mosquitto_passwd or None (built-in)."""

    def __init__(self, path: Path, tool: str | None) -> None:
        self.path = path
        self.tool = tool

    @classmethod
    def choose(cls, path: Path, hasher: str) -> PasswordFile:
        """``hasher``: ``auto`` (mosquitto_passwd if installed), ``mosquitto_passwd``, ``builtin``."""
        tool = shutil.which("mosquitto_passwd") or next(
            (p for p in ("/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd")
             if os.access(p, os.X_OK)), None)
        if hasher == "mosquitto_passwd" and tool is None:
            raise BrokerFileError("mosquitto_passwd is not installed (apt-get install mosquitto); "
                                  "or use --hasher builtin")
        return cls(path, None if hasher == "builtin" else tool)

    def users(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line.split(":", 1)[0] for line in self.path.read_text(encoding="utf-8").splitlines()
                if ":" in line and not line.startswith("#")]

    def set(self, user: str, password: str) -> None:
        if ":" in user:
            raise BrokerFileError(f"user name {user!r} must not contain ':'")
        if self.tool is not None:
            if not self.path.exists():
                atomic_write(self.path, "")
            # -b puts the password on mosquitto_passwd's command line for a moment: visible to
            # other users of this host in /proc. The provisioning host is the broker's own.
            self._run("-b", str(self.path), user, password)
            return
        self._rewrite(user, f"{user}:{hash_password(password)}")

    def remove(self, user: str) -> None:
        if user not in self.users():
            return
        if self.tool is not None:
            self._run("-D", str(self.path), user)
        else:
            self._rewrite(user, None)

    def _rewrite(self, user: str, new_line: str | None) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        kept = [line for line in lines if line.split(":", 1)[0] != user]
        if new_line is not None:
            kept.append(new_line)
        atomic_write(self.path, "".join(f"{line}\n" for line in kept))

    def _run(self, *args: str) -> None:
        assert self.tool is not None
        result = subprocess.run([self.tool, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:  # its messages never contain the password
            raise BrokerFileError(f"mosquitto_passwd failed ({result.returncode}): "
                                  f"{(result.stderr or result.stdout).strip()}")


@dataclass(frozen=True)
class AclEntry:
    """One user's lines in the ACL file."""

    user: str
    comment: str
    topics: tuple[tuple[str, str], ...]  # (access, topic): access is read, write or readwrite


def render_acl(entries: Iterable[AclEntry]) -> str:
    out = ["# Generated by `cabinet-server provision`; edits are overwritten.",
           "# Anything not granted here is denied (mosquitto 2: no pattern lines are used).", ""]
    for entry in entries:
        for char in "\n\r":
            if char in entry.user:
                raise BrokerFileError(f"user name {entry.user!r} contains a line break")
        out.append(f"# {entry.comment}")
        out.append(f"user {entry.user}")
        out.extend(f"topic {access} {topic}" for access, topic in entry.topics)
        out.append("")
    return "\n".join(out)
