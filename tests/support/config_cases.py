"""Lay out a config-error case on disk: the config file (text, bytes, a directory or missing), the
files beside it, and the environment. Shared by the agent's and the server's config-error tests."""

from __future__ import annotations

from pathlib import Path

import pytest

Files = dict[str, str | bytes | None]
"""Beside the config: ``None`` a directory; ``"DIR-RO"`` a read-only directory; ``"CHMOD-000"`` an
unreadable file (as a name: the config file itself is made unreadable); bytes written as they
are (a file in the wrong encoding); any other text written as UTF-8."""


def arrange(path: Path, monkeypatch: pytest.MonkeyPatch, config: str | bytes | None,
            env: dict[str, str], files: Files) -> Path:
    """Write the case for the config file ``path``; ``{tmp}`` in env values is its directory."""
    tmp = path.parent
    if config == "DIR":
        path.mkdir()
    elif isinstance(config, bytes):
        path.write_bytes(config)
    elif config is not None:
        path.write_text(config, encoding="utf-8")
    for name, content in files.items():
        target = tmp / name
        if name == "CHMOD-000":
            path.chmod(0)
        elif content is None:
            target.mkdir()
        elif content == "DIR-RO":
            target.mkdir(mode=0o555)
        elif content == "CHMOD-000":
            target.write_text("x")
            target.chmod(0)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp)))
    return path
