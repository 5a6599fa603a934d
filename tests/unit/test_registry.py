"""The one registry style (cabinet_agent/common/registry.py) and its three users: agent
transports, alert rules, notifier kinds."""

from __future__ import annotations

import pytest

from cabinet_agent.common.registry import Registry, UnknownName
from cabinet_agent.sources import TRANSPORTS, transport_factory
from server.alerts.rules import RULES, RulesSettings, build_rules
from server.alerts.rules.offline import CabinetOffline
from server.notify import NOTIFIER_KINDS


def test_a_name_is_registered_once_and_an_unknown_one_is_answered_with_the_known() -> None:
    registry: Registry[int] = Registry("colour")
    registry.register("red", 1)
    registry.register("blue", 2)
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        registry.register("red", 3)
    assert registry.get("red") == 1
    assert list(registry) == [("red", 1), ("blue", 2)]  # registration order
    with pytest.raises(UnknownName, match="unknown colour 'green'; known: red, blue"):
        registry.get("green")


def test_every_rule_table_of_the_config_has_its_rule_and_no_rule_is_without_one() -> None:
    assert sorted(RULES.names()) == sorted(RulesSettings.model_fields)


def test_a_disabled_rule_is_not_built_and_cabinet_offline_always_comes_first() -> None:
    defaults = RulesSettings()
    off = defaults.model_copy(update={"door_open": defaults.door_open.model_copy(update={"enabled": False})})
    offline = CabinetOffline(pending_s=600, silence_factor=3, min_silence_s=300)
    built = [type(rule).__name__ for rule in build_rules(off, offline)]
    assert built[0] == "CabinetOffline"
    assert "DoorOpen" not in built
    assert "DoorOpen" in [type(rule).__name__ for rule in build_rules(defaults, offline)]


def test_transports_and_notifier_kinds_are_registered_by_their_modules() -> None:
    transport_factory("rtu")  # imports every transport module
    assert sorted(TRANSPORTS.names()) == ["line", "rtu", "tcp"]
    with pytest.raises(ValueError, match="unknown transport 'can'; known: "):
        transport_factory("can")
    assert sorted(NOTIFIER_KINDS.names()) == ["apprise", "email", "webhook"]
