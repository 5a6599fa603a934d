"""A silence as a person reads it: which school, cabinet and rule, by whom, until when.

Matchers are labels (``site=gs-park``, ``alertname=door_open``); the page names them from the
organisation config and the translated rule names instead, and says "all …" for a label a
silence leaves open (a district-wide silence has no ``site``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from .overview import OrgIndex

__all__ = ["SilenceScope", "describe_silence"]

# Labels the description names itself; any other label is shown as "name value".
_NAMED: Final = frozenset({"alertname", "site", "cabinet", "slot", "asset_tag", "device"})


@dataclass(frozen=True, slots=True)
class SilenceScope:
    school: str  # the school's name, or "all schools"
    cabinet: str  # the cabinet's name, or "all cabinets"
    rule: str  # the rule's translated name, or "all alerts"
    details: tuple[str, ...]  # slot, iPad, device, other labels: "Fach 3", "iPad GS-PARK-0001"


def describe_silence(matchers: Mapping[str, str], index: OrgIndex,
                     t: Callable[..., str]) -> SilenceScope:
    """``t``: the page's translator (``server.web.texts.translator``)."""
    site = matchers.get("site")
    cabinet = matchers.get("cabinet")
    name = matchers.get("alertname")
    school = index.school_names.get(site, site) if site else t("silence.all_schools")
    if cabinet:
        cabinet_text = index.cabinet_names.get((site, cabinet), cabinet) if site else cabinet
    else:
        cabinet_text = t("silence.all_cabinets")
    if name:
        rule = t(f"rule.{name}")
        if rule == f"rule.{name}":  # a rule the texts do not know (yet): its name, readable
            rule = name.replace("_", " ")
    else:
        rule = t("silence.all_rules")
    details: list[str] = []
    if "slot" in matchers:
        details.append(f"{t('slot')} {matchers['slot']}")
    if "asset_tag" in matchers:
        details.append(f"iPad {matchers['asset_tag']}")
    if "device" in matchers:
        details.append(f"{t('device')} {matchers['device']}")
    details += [f"{key} {value}" for key, value in sorted(matchers.items()) if key not in _NAMED]
    return SilenceScope(school, cabinet_text, rule, tuple(details))
