"""The alert rules, one family per file, each with its own settings under ``[alerts.rules.NAME]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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


def build_rules(settings: RulesSettings, offline: CabinetOffline,
                battery: BatteryHealthSource | None = None) -> list[Rule]:
    """Every enabled rule, cabinet_offline first."""
    candidates: list[tuple[RuleSettings, Rule]] = [
        (settings.device_fault, DeviceFault(settings.device_fault)),
        (settings.ipad_not_returned, NotReturned(settings.ipad_not_returned)),
        (settings.ipad_not_charging, NotCharging(settings.ipad_not_charging)),
        (settings.ipad_not_charged, NotCharged(settings.ipad_not_charged)),
        (settings.charging_too_long, ChargingTooLong(settings.charging_too_long)),
        (settings.slot_overpower, SlotOverpower(settings.slot_overpower)),
        (settings.door_open, DoorOpen(settings.door_open)),
        (settings.door_open_after_hours, DoorOpenAfterHours(settings.door_open_after_hours)),
        (settings.over_temperature, OverTemperature(settings.over_temperature)),
        (settings.temperature_rise, TemperatureRise(settings.temperature_rise)),
        (settings.mains_lost, MainsLost(settings.mains_lost)),
        (settings.slot_unjudgeable, SlotUnjudgeable(settings.slot_unjudgeable)),
        (settings.battery_worn, BatteryWorn(settings.battery_worn, battery)),
        (settings.data_lost, DataLost(settings.data_lost)),
    ]
    return [offline, *(rule for rule_settings, rule in candidates if rule_settings.enabled)]
