"""The organisation: district → municipalities → schools → cabinets → slots, and who is told what.

Written as flat lists that refer to each other by id (TOML stays readable that way); the validator
checks every reference and every id's uniqueness and names the offending entry. A school's ``site``
and a cabinet's ``id`` are the ids on the wire (``ladewache/v1/{site}/{cabinet}/…``).
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from .redact import redact_url

__all__ = [
    "CabinetConfig",
    "ContactSettings",
    "MunicipalityConfig",
    "Organisation",
    "Policy",
    "SchoolConfig",
    "TeamConfig",
    "TimeWindow",
    "WebhookTarget",
]

_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
WireId = Annotated[str, Field(pattern=_ID, description="lower-case id as on the wire: a-z 0-9 _ -")]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHOOL_WEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class Policy(StrEnum):
    SHARED_POOL = "shared_pool"  # the iPads live in the cabinet; one missing after school is news
    ONE_TO_ONE = "one_to_one"  # each pupil takes theirs home; an empty slot is normal


class TimeWindow(_Model):
    """A daily window in local time, ``"07:30-16:00"``; it may pass midnight (``"16:00-07:00"``)."""

    start: time
    end: time

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.split("-")
            if len(parts) != 2:
                raise ValueError("a window is written 'HH:MM-HH:MM'")
            return {"start": parts[0].strip(), "end": parts[1].strip()}
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("a window needs different start and end")
        return self

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # passes midnight


class WebhookTarget(_Model):
    url: str = Field(description="http(s) URL that receives the JSON POST")
    secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC-SHA256 key; the signature is sent as X-Ladewache-Signature: sha256=<hex>",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_serializer("url")
    def _shown(self, value: str) -> str:
        """Printed and logged configs (check-config, the start line) show scheme://host/… only:
        the rest of a webhook URL is usually its token. The notifier reads ``url`` itself."""
        return redact_url(value)


class ContactSettings(_Model):
    """Where a team's or a school's notifications go. Any of the three may be empty."""

    email: list[str] = Field(default_factory=list, description="e-mail addresses")
    webhooks: list[WebhookTarget] = Field(default_factory=list, description="signed JSON webhooks")
    apprise: list[SecretStr] = Field(
        default_factory=list,
        description="Apprise URLs for chat services (e.g. 'mmosts://…', 'tgram://…'); never logged",
    )
    lang: Literal["de", "en"] = Field(default="de", description="language of the notifications")

    @field_validator("email")
    @classmethod
    def _emails(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _EMAIL.match(value):
                raise ValueError(f"not an e-mail address: {value!r}")
        return values

    @property
    def empty(self) -> bool:
        return not (self.email or self.webhooks or self.apprise)


class TeamConfig(_Model):
    id: WireId
    name: str = Field(min_length=1, description="shown in notifications")
    contacts: ContactSettings = Field(default_factory=ContactSettings, description="receivers")


class MunicipalityConfig(_Model):
    id: WireId
    name: str = Field(min_length=1)
    team: str | None = Field(
        default=None, description="id of the supporting team; none = the district's team"
    )


class SchoolConfig(_Model):
    site: WireId = Field(description="the school's site id on the wire")
    name: str = Field(min_length=1)
    municipality: str = Field(description="id of its municipality")
    policy: Policy = Field(default=Policy.SHARED_POOL, description="shared_pool or one_to_one")
    hours: TimeWindow = Field(
        default=TimeWindow(start=time(7, 30), end=time(16, 0)),
        description="school hours on a school day, local time ('07:30-16:00')",
    )
    return_check: tuple[time, ...] = Field(
        default=(time(16, 30),),
        description="every iPad is back by then on a school day; one time ('16:30') or several "
                    "(['11:45', '13:30', '16:30']: after each return window). Shared pool: after "
                    "lessons (default 16:30); one_to_one: back from home in the morning (08:30)",
    )
    morning_check: time = Field(
        default=time(7, 0), description="every iPad in the cabinet is charged by then on a school day"
    )
    charging_window: TimeWindow | None = Field(
        default=None, description="when mains must be on; none = [alerts.rules.mains_lost] window"
    )
    calendars: list[Path] = Field(
        default_factory=list,
        description="extra ICS files for this school only (movable days off); relative to the config",
    )
    contacts: ContactSettings = Field(
        default_factory=ContactSettings, description="told about iPads not returned; daily digest"
    )


    @model_validator(mode="before")
    @classmethod
    def _one_to_one_checks_in_the_morning(cls, data: object) -> object:
        """Pupils of a one-to-one school take their iPads home: out at night is normal, and the
        check is whether they are back in the morning."""
        if isinstance(data, dict) and data.get("policy") in (Policy.ONE_TO_ONE, "one_to_one") \
                and "return_check" not in data:
            return {**data, "return_check": (time(8, 30),)}
        return data

    @field_validator("return_check", mode="before")
    @classmethod
    def _one_or_more_checks(cls, value: object) -> object:
        if isinstance(value, str | time):
            return (value,)
        return value

    @field_validator("return_check")
    @classmethod
    def _sorted_checks(cls, value: tuple[time, ...]) -> tuple[time, ...]:
        if not value:
            raise ValueError("needs at least one time")
        return tuple(sorted(set(value)))


class CabinetConfig(_Model):
    school: str = Field(description="site id of the school it stands in")
    id: WireId = Field(description="cabinet id on the wire")
    name: str | None = Field(default=None, description="shown in notifications, e.g. 'Raum 12'")
    slots: dict[int, str] = Field(
        default_factory=dict,
        description="asset tag per slot number: { 1 = 'GS-PARK-0001', 2 = … }",
    )
    slot_rating_w: float | None = Field(
        default=None, gt=0, description="highest plausible draw per slot; none = the rule's default"
    )

    @field_validator("slots")
    @classmethod
    def _slot_numbers(cls, value: dict[int, str]) -> dict[int, str]:
        bad = [n for n in value if n < 1]
        if bad:
            raise ValueError(f"slot numbers start at 1: {bad}")
        tags = list(value.values())
        duplicates = sorted({t for t in tags if tags.count(t) > 1})
        if duplicates:
            raise ValueError(f"asset tags used twice: {duplicates}")
        return value


class Organisation(_Model):
    district: str = Field(default="", description="name of the district (Landkreis)")
    timezone: str = Field(default="Europe/Berlin", description="IANA time zone of all schools")
    state: str = Field(
        default="SL", description="German state code for public holidays (python-holidays, 'SL')"
    )
    school_holidays: list[Path] = Field(
        default_factory=list, description="ICS files with school holidays; relative to the config"
    )
    school_weekdays: list[Weekday] = Field(
        min_length=1,
        default_factory=lambda: list(_SCHOOL_WEEK),
        description="days of the week with school ('mon' … 'sun')")
    public_holidays: bool = Field(
        default=True, description="public holidays of the state are days off (false only for a demo)")
    district_team: str | None = Field(
        default=None, description="id of the district's school-IT team (the default supporter)"
    )
    teams: list[TeamConfig] = Field(default_factory=list, description="[[organisation.teams]]")
    municipalities: list[MunicipalityConfig] = Field(
        default_factory=list, description="[[organisation.municipalities]]"
    )
    schools: list[SchoolConfig] = Field(default_factory=list, description="[[organisation.schools]]")
    cabinets: list[CabinetConfig] = Field(
        default_factory=list, description="[[organisation.cabinets]]"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        _unique("teams", [t.id for t in self.teams])
        _unique("municipalities", [m.id for m in self.municipalities])
        _unique("schools", [s.site for s in self.schools])
        _unique("cabinets", [f"{c.school}/{c.id}" for c in self.cabinets])
        teams = {t.id for t in self.teams}
        if self.district_team is not None and self.district_team not in teams:
            raise ValueError(f"district_team: no team {self.district_team!r}")
        for m in self.municipalities:
            if m.team is not None and m.team not in teams:
                raise ValueError(f"municipality {m.id!r}: no team {m.team!r}")
            if m.team is None and self.district_team is None:
                raise ValueError(f"municipality {m.id!r}: no team and no district_team")
        municipalities = {m.id for m in self.municipalities}
        for s in self.schools:
            if s.municipality not in municipalities:
                raise ValueError(f"school {s.site!r}: no municipality {s.municipality!r}")
        schools = {s.site for s in self.schools}
        for c in self.cabinets:
            if c.school not in schools:
                raise ValueError(f"cabinet {c.id!r}: no school {c.school!r}")
        return self

    # Look-ups. Lists are short (a district has ~100 schools), so a scan is fine and keeps the
    # model a plain frozen value.

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekday_numbers(self) -> frozenset[int]:
        """``school_weekdays`` as ``date.weekday()`` numbers (Monday 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.school_weekdays)

    def school(self, site: str) -> SchoolConfig | None:
        return next((s for s in self.schools if s.site == site), None)

    def cabinet(self, site: str, cabinet: str) -> CabinetConfig | None:
        return next((c for c in self.cabinets if c.school == site and c.id == cabinet), None)

    def municipality(self, site: str) -> MunicipalityConfig | None:
        school = self.school(site)
        if school is None:
            return None
        return next((m for m in self.municipalities if m.id == school.municipality), None)

    def team_for(self, site: str) -> TeamConfig | None:
        """The team that supports the school's municipality; the district's team for an unknown
        site, so that a cabinet nobody registered still reaches someone."""
        municipality = self.municipality(site)
        team_id = (municipality.team if municipality is not None else None) or self.district_team
        return next((t for t in self.teams if t.id == team_id), None)


def _unique(what: str, ids: list[str]) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{what}: ids used twice: {duplicates}")
