"""The alert rules, one family per file, each with its own settings under ``[alerts.rules.NAME]``."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cabinet_agent.common.registry import Registry

from .base import Finding, Rule, RuleContext, RuleSettings, Severity
from .battery import BatteryHealthSource, BatteryWorn, BatteryWornSettings, WornBattery
from .charging import ChargingTooLong, ChargingTooLongSettings, SlotOverpower, SlotOverpowerSettings
from .data_lost import DataLost, DataLostSettings
from .device_fault import DeviceFault, DeviceFaultSettings
from .door import DoorOpen, DoorOpenAfterHours, DoorOpenAfterHoursSettings, DoorOpenSettings
from .mains import MainsLost, MainsLostSettings
from .not_charging import NotCharged, NotChargedSettings, NotCharging, NotChargingSettings
from .not_returned import NotReturned, NotReturnedSettings
from .offline import CabinetOffline
from .temperature import (
    OverTemperature,
    OverTemperatureSettings,
    TemperatureRise,
    TemperatureRiseSettings,
)
from .unjudgeable import SlotUnjudgeable, SlotUnjudgeableSettings

__all__ = [
    "RULES",
    "BatteryHealthSource",
    "BatteryWorn",
    "CabinetOffline",
    "ChargingTooLong",
    "DataLost",
    "DeviceFault",
    "DoorOpen",
    "DoorOpenAfterHours",
    "Finding",
    "MainsLost",
    "NotCharged",
    "NotCharging",
    "NotReturned",
    "OverTemperature",
    "Rule",
    "RuleContext",
    "RuleSettings",
    "RulesSettings",
    "Severity",
    "SlotOverpower",
    "SlotUnjudgeable",
    "TemperatureRise",
    "WornBattery",
    "build_rules",
]


class RulesSettings(BaseModel):
    """``[alerts.rules.<name>]``: one table per rule (cabinet_offline is set in ``[alerts]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_fault: DeviceFaultSettings = Field(default_factory=DeviceFaultSettings,
                                              description="a bus device does not answer")
    ipad_not_returned: NotReturnedSettings = Field(default_factory=NotReturnedSettings,
                                                   description="empty (certain or by evidence) at "
                                                               "the return check")
    ipad_not_charging: NotChargingSettings = Field(default_factory=NotChargingSettings,
                                                   description="present_idle (certain) or fault")
    ipad_not_charged: NotChargedSettings = Field(default_factory=NotChargedSettings,
                                                 description="still charging at the morning check")
    charging_too_long: ChargingTooLongSettings = Field(default_factory=ChargingTooLongSettings,
                                                       description="charging longer than max_hours")
    slot_overpower: SlotOverpowerSettings = Field(default_factory=SlotOverpowerSettings,
                                                  description="slot draws above its rating")
    door_open: DoorOpenSettings = Field(default_factory=DoorOpenSettings,
                                        description="door open longer than pending_s")
    door_open_after_hours: DoorOpenAfterHoursSettings = Field(
        default_factory=DoorOpenAfterHoursSettings, description="door open outside school hours")
    over_temperature: OverTemperatureSettings = Field(default_factory=OverTemperatureSettings,
                                                      description="cabinet temperature thresholds")
    temperature_rise: TemperatureRiseSettings = Field(default_factory=TemperatureRiseSettings,
                                                      description="fast temperature rise")
    mains_lost: MainsLostSettings = Field(default_factory=MainsLostSettings,
                                          description="no mains in the charging window")
    slot_unjudgeable: SlotUnjudgeableSettings = Field(
        default_factory=SlotUnjudgeableSettings,
        description="a slot with a reading that the agent cannot judge for several evidence windows")
    battery_worn: BatteryWornSettings = Field(default_factory=BatteryWornSettings,
                                              description="battery holds clearly less than new")
    data_lost: DataLostSettings = Field(
        default_factory=DataLostSettings,
        description="events acknowledged by the broker never arrived (cannot be replayed)")


class RuleFactory(Protocol):
    def __call__(self, settings: Any, battery: BatteryHealthSource | None) -> Rule: ...


# Every rule family by its ``[alerts.rules.NAME]`` table, in the order the engine evaluates them
# (cabinet_offline, set in ``[alerts]``, always comes first: build_rules).
RULES: Registry[RuleFactory] = Registry("alert rule")
RULES.register("device_fault", lambda s, _b: DeviceFault(s))
RULES.register("ipad_not_returned", lambda s, _b: NotReturned(s))
RULES.register("ipad_not_charging", lambda s, _b: NotCharging(s))
RULES.register("ipad_not_charged", lambda s, _b: NotCharged(s))
RULES.register("charging_too_long", lambda s, _b: ChargingTooLong(s))
RULES.register("slot_overpower", lambda s, _b: SlotOverpower(s))
RULES.register("door_open", lambda s, _b: DoorOpen(s))
RULES.register("door_open_after_hours", lambda s, _b: DoorOpenAfterHours(s))
RULES.register("over_temperature", lambda s, _b: OverTemperature(s))
RULES.register("temperature_rise", lambda s, _b: TemperatureRise(s))
RULES.register("mains_lost", lambda s, _b: MainsLost(s))
RULES.register("slot_unjudgeable", lambda s, _b: SlotUnjudgeable(s))
RULES.register("battery_worn", lambda s, battery: BatteryWorn(s, battery))
RULES.register("data_lost", lambda s, _b: DataLost(s))


def build_rules(settings: RulesSettings, offline: CabinetOffline,
                battery: BatteryHealthSource | None = None) -> list[Rule]:
    """Every enabled rule, cabinet_offline first."""
    enabled = ((name, rule_settings) for name, _factory in RULES
               if (rule_settings := getattr(settings, name)).enabled)
    return [offline, *(RULES.get(name)(rule_settings, battery) for name, rule_settings in enabled)]
