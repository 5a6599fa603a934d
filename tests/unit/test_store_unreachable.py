"""Every command that opens the store names a store it cannot reach — the URL without its password —
in one message, without a traceback (server/store/engine.py ``StoreError``). ``inventory`` and
``history`` printed a traceback before."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.procs import console_script
from tests.support.store import STORE_ENV

URL = "postgresql+psycopg://ladewache:geheim@127.0.0.1:1/x"  # nothing listens on port 1


@pytest.mark.parametrize("command", [["inventory", "list"], ["history", "backfill"], ["user", "list"],
                                     ["alerts"], ["retire"]])
def test_a_store_that_cannot_be_reached_is_named_without_its_password(tmp_path: Path,
                                                                      command: list[str]) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[state]\nurl = "{URL}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != STORE_ENV}
    result = subprocess.run([console_script("cabinet-server"), *command, "--config", str(config)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    assert result.stderr.startswith(
        "cabinet-server: cannot open the store (postgresql+psycopg://ladewache:***@127.0.0.1:1/x)"), \
        result.stderr
    assert "geheim" not in result.stderr and "Traceback" not in result.stderr
