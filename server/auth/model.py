"""Who is asking, and what they may see and do.

Three roles: the district admin sees and does everything; a municipality technician sees and acts
on the schools of one municipality; a school viewer sees one school and changes nothing. A
cabinet that is not in the organisation (no school for its site) is visible to admins only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ..org import Organisation

__all__ = ["Principal", "Role", "Scope", "User"]


class Role(StrEnum):
    ADMIN = "admin"  # district admin
    TECHNICIAN = "technician"  # municipality technician
    VIEWER = "viewer"  # school viewer, read-only


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    municipality: str | None = None
    school: str | None = None

    def __post_init__(self) -> None:
        if self.role is Role.TECHNICIAN and not self.municipality:
            raise ValueError("a technician needs a municipality")
        if self.role is Role.VIEWER and not self.school:
            raise ValueError("a school viewer needs a school")


@dataclass(frozen=True, slots=True)
class Scope:
    """The sites a user may see (None = all, including unknown ones) and whether they may act."""

    sites: frozenset[str] | None
    can_write: bool

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def acts_on(self, site: str) -> bool:
        return self.can_write and self.sees(site)

    def sees_labels(self, labels: Mapping[str, str]) -> bool:
        """An alert or silence by its labels/matchers; one without a site is the admin's."""
        site = labels.get("site")
        return self.sites is None or (site is not None and site in self.sites)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    via: str  # "session", "token" or "disabled" (auth switched off for a demo)
    csrf: str | None = None  # the session's CSRF token; None for API tokens

    @property
    def name(self) -> str:
        return self.user.name

    def scope(self, org: Organisation) -> Scope:
        user = self.user
        if user.role is Role.ADMIN:
            return Scope(None, True)
        if user.role is Role.TECHNICIAN:
            sites = frozenset(s.site for s in org.schools if s.municipality == user.municipality)
            return Scope(sites, True)
        return Scope(frozenset({user.school}) if user.school else frozenset(), False)
