"""What ``cabinet-sim demo`` simulates, as data: the district, its schools and cabinets, the users
made for the demo, and the demo's shortened alert times — rendered into the server's and the
agents' TOML by ``demo.py``.

Asset tags come from one function (``DemoCabinet.asset_tag``) for the simulator's iPads
(``--asset-prefix``) and the server's inventory (filled at its first start from
``[organisation.cabinets.slots]``); the agents carry none, so nothing can disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "CABINETS",
    "DISTRICT",
    "DOOR_PENDING_S",
    "HINT_SLOTS",
    "MUNICIPALITY",
    "NOT_CHARGING_PENDING_S",
    "OFFLINE_CABINET",
    "OFFLINE_PENDING_S",
    "PRESENCE_CABINET",
    "SCHOOL",
    "SITE",
    "STATE",
    "TIMEZONE",
    "USERS",
    "DemoCabinet",
    "DemoUser",
    "alerts_toml",
    "organisation_toml",
    "return_checks",
]

TIMEZONE = "Europe/Berlin"
STATE = "SL"  # public holidays of the Saarland; the demo ships no school-holiday calendar
DISTRICT = "Landkreis Musterland"
SITE = "gs-demo"
SCHOOL = "Grundschule am Lindenplatz"
MUNICIPALITY = "Gemeinde Musterdorf"  # the school's
RETURN_CHECK_HOURS = 12  # the demo's school checks every minute for this long after the start
# Demo times (a real school's defaults are minutes: deploy/examples/server.toml); the banner's hints
# promise these.
OFFLINE_PENDING_S = 20
NOT_CHARGING_PENDING_S = 30
DOOR_PENDING_S = 30


@dataclass(frozen=True, slots=True)
class DemoCabinet:
    id: str  # on the wire
    name: str  # the room, as people call the cabinet
    model: str
    seed: int
    scenario: str  # simulator scenario: "school-day" (iPads come and go) or "none" (quiet)

    @property
    def asset_prefix(self) -> str:
        return f"GS-DEMO-{self.id[-1].upper()}-"

    def asset_tag(self, slot: int) -> str:
        """The simulator's own tag for the slot's iPad (``CabinetSim.default_asset_tag``)."""
        return f"{self.asset_prefix}{slot:03d}"

    def asset_tags(self, slots: int) -> dict[int, str]:
        return {slot: self.asset_tag(slot) for slot in range(1, slots + 1)}

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"


CABINETS = (
    DemoCabinet("schrank-a", "Raum 12", "ladewache-8", 1, "school-day"),
    # Presence switches: the agent sees every iPad leave and arrive, full or not. No scenario, so
    # the hints below are the only thing that happens to it.
    DemoCabinet("schrank-b", "Raum 14", "ladewache-16-presence", 2, "none"),
    DemoCabinet("schrank-c", "Raum 21", "ladewache-32", 3, "school-day"),
)
PRESENCE_CABINET = CABINETS[1]
OFFLINE_CABINET = CABINETS[0]  # not the presence cabinet: its alerts would be muted by "offline"
HINT_SLOTS = {"take_out": 3, "broken": 5}  # slots of PRESENCE_CABINET the hints use


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    role: str  # server.auth.Role value
    what_de: str
    what_en: str
    municipality: str | None = None  # a technician's
    school: str | None = None  # a school viewer's


USERS = (
    DemoUser("admin", "admin", "Kreis-Admin, sieht und darf alles", "district admin"),
    DemoUser("technik-musterdorf", "technician", f"Technik der Gemeinde Musterdorf: {SCHOOL}",
             "municipality technician", municipality="musterdorf"),
    DemoUser("technik-neustadt", "technician",
             "Technik der Stadt Neustadt: nur die Gemeinschaftsschule, noch ohne Schrank",
             "municipality technician, another municipality", municipality="neustadt"),
    DemoUser("sekretariat-lindenplatz", "viewer", f"{SCHOOL}, nur lesen", "school viewer",
             school=SITE),
)


def return_checks(now: datetime, hours: int = RETURN_CHECK_HOURS) -> list[str]:
    """A return check every minute from ``now`` (local time of the district) for ``hours``: an
    iPad taken out now is "not returned" at the next full minute (on a school day)."""
    local = now.astimezone(ZoneInfo(TIMEZONE)).replace(second=0, microsecond=0)
    return sorted({(local + timedelta(minutes=m)).strftime("%H:%M") for m in range(hours * 60 + 1)})


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a TOML basic string


def alerts_toml() -> str:
    """Demo times: each hint of the banner raises its alert within a minute (the defaults are in
    deploy/examples/server.toml: minutes, for a real school)."""
    return (
        "[alerts]\n"
        f"offline_pending_s = {OFFLINE_PENDING_S}\n"
        "tick_s = 1.0\n"
        "sweep_s = 5.0              # (a fleet this small is evaluated whole at every tick anyway)\n"
        "[alerts.rules.ipad_not_returned]\n"
        "pending_s = 0.0            # the school checks every minute: see return_check\n"
        "[alerts.rules.ipad_not_charging]\n"
        f"pending_s = {NOT_CHARGING_PENDING_S}\n"
        "[alerts.rules.door_open]\n"
        f"pending_s = {DOOR_PENDING_S}\n"
        "# The cabinets' physics runs faster than the server's clock (60x by default): a cabinet\n"
        "# that warms up over half an hour does so in half a minute, which would read as a fire.\n"
        "[alerts.rules.temperature_rise]\n"
        "enabled = false\n"
    )


def organisation_toml(slot_counts: dict[str, int], checks: list[str]) -> str:
    """``[organisation]``: a district, two municipalities with a team each, two schools, and the
    demo's three cabinets in the shared-pool school with their asset tags. The demo has school
    every day (no weekends, no public holidays), so that every hint works whenever it is tried."""
    lines = [
        "[organisation]", f"district = {_s(DISTRICT)}", f"timezone = {_s(TIMEZONE)}",
        f"state = {_s(STATE)}", 'district_team = "kreis-it"',
        'school_weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
        "public_holidays = false", "",
    ]
    teams = (("kreis-it", "Schul-IT des Landkreises"), ("it-musterdorf", "IT-Service Musterdorf"),
             ("it-neustadt", "IT der Stadt Neustadt"))
    for team_id, name in teams:  # no contacts: the demo sends nothing anywhere
        lines += ["[[organisation.teams]]", f"id = {_s(team_id)}", f"name = {_s(name)}", ""]
    for mun_id, name, team in (("musterdorf", MUNICIPALITY, "it-musterdorf"),
                               ("neustadt", "Stadt Neustadt", "it-neustadt")):
        lines += ["[[organisation.municipalities]]", f"id = {_s(mun_id)}", f"name = {_s(name)}",
                  f"team = {_s(team)}", ""]
    lines += [
        "[[organisation.schools]]", f"site = {_s(SITE)}", f"name = {_s(SCHOOL)}",
        'municipality = "musterdorf"', 'policy = "shared_pool"',
        f"return_check = [{', '.join(_s(c) for c in checks)}]", "",
        "[[organisation.schools]]", 'site = "gems-neustadt"', 'name = "Gemeinschaftsschule Neustadt"',
        'municipality = "neustadt"', 'policy = "one_to_one"', "",
    ]
    for cabinet in CABINETS:
        lines += ["[[organisation.cabinets]]", f"school = {_s(SITE)}", f"id = {_s(cabinet.id)}",
                  f"name = {_s(cabinet.name)}", "[organisation.cabinets.slots]"]
        lines += [f"{n} = {_s(tag)}" for n, tag in cabinet.asset_tags(slot_counts[cabinet.id]).items()]
        lines.append("")
    return "\n".join(lines)
