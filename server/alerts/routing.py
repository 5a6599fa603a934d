"""Who is told: the team that supports the cabinet's municipality, or the school's contacts for
the alerts a school handles itself (an iPad not returned)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from server.org import ContactSettings, Organisation, TeamConfig

__all__ = ["Receiver", "Router"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Receiver:
    id: str  # "team:kreis-it" or "school:gs-park"
    name: str
    contacts: ContactSettings

    @classmethod
    def of_team(cls, team: TeamConfig) -> Receiver:
        return cls(f"team:{team.id}", team.name, team.contacts)


class Router:
    def __init__(self, org: Organisation, school_alerts: Collection[str]) -> None:
        self._org = org
        self._school_alerts = frozenset(school_alerts)
        self._unrouted: set[str] = set()
        # The organisation does not change while the collector runs: (site, to the school?) ->
        # receivers, asked for every alert at every flush.
        self._memo: dict[tuple[str, bool], list[Receiver]] = {}

    def receivers(self, labels: Mapping[str, str]) -> list[Receiver]:
        key = (labels.get("site", ""), labels.get("alertname") in self._school_alerts)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._receivers(labels)
        return list(found)

    def _receivers(self, labels: Mapping[str, str]) -> list[Receiver]:
        site = labels.get("site", "")
        if labels.get("alertname") in self._school_alerts:
            school = self._org.school(site)
            if school is not None and not school.contacts.empty:
                return [Receiver(f"school:{school.site}", school.name, school.contacts)]
        team = self._org.team_for(site)
        if team is None:
            if site not in self._unrouted:  # say it once per site, not every tick
                self._unrouted.add(site)
                log.warning("no team for site %r (no municipality and no district_team): its "
                            "alerts are shown but not sent", site)
            return []
        return [Receiver.of_team(team)]

    def all_receivers(self) -> list[Receiver]:
        result = [Receiver.of_team(t) for t in self._org.teams]
        result += [Receiver(f"school:{s.site}", s.name, s.contacts) for s in self._org.schools]
        return result
