"""Finding the adapter again: by-id links and globs are resolved on every open."""

from __future__ import annotations

from pathlib import Path

import pytest

from cabinet_agent.common.errors import BusUnavailable
from cabinet_agent.sources.serial_port import is_pattern, resolve_port


def test_a_by_id_link_resolves_to_whatever_node_it_points_at_now(tmp_path: Path) -> None:
    usb0, usb1 = tmp_path / "ttyUSB0", tmp_path / "ttyUSB1"
    usb0.touch()
    usb1.touch()
    link = tmp_path / "by-id" / "usb-FTDI_X-if00-port0"
    link.parent.mkdir()
    link.symlink_to(usb0)
    assert resolve_port(str(link)) == str(usb0)
    link.unlink()
    link.symlink_to(usb1)  # udev re-points the link when the adapter comes back as ttyUSB1
    assert resolve_port(str(link)) == str(usb1)
    usb1.unlink()
    with pytest.raises(BusUnavailable, match="not there"):
        resolve_port(str(link))


def test_a_glob_must_match_exactly_one_device(tmp_path: Path) -> None:
    pattern = str(tmp_path / "ttyUSB*")
    assert is_pattern(pattern) and not is_pattern("/dev/ttyUSB0")
    with pytest.raises(BusUnavailable, match="no serial device matches"):
        resolve_port(pattern)
    (tmp_path / "ttyUSB1").touch()
    assert resolve_port(pattern) == str(tmp_path / "ttyUSB1")
    (tmp_path / "ttyUSB2").touch()
    with pytest.raises(BusUnavailable, match="matches 2 devices"):
        resolve_port(pattern)


def test_two_links_to_one_device_are_one_match(tmp_path: Path) -> None:
    (tmp_path / "ttyACM0").touch()
    (tmp_path / "board-a").symlink_to(tmp_path / "ttyACM0")
    (tmp_path / "board-b").symlink_to(tmp_path / "ttyACM0")
    assert resolve_port(str(tmp_path / "board-*")) == str(tmp_path / "ttyACM0")
