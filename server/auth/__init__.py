"""Accounts, roles and sessions for the dashboard and the API (issue 8); kept in the store."""

from .http import COOKIE, Auth, LoginRefused
from .limiter import LoginLimiter
from .model import Principal, Role, Scope, User
from .store import UserStore, UserStoreError
from .takeover import LEGACY_USERS_FILE, TakeoverError, take_over_users

__all__ = ["COOKIE", "LEGACY_USERS_FILE", "Auth", "LoginLimiter", "LoginRefused", "Principal", "Role",
           "Scope", "TakeoverError", "User", "UserStore", "UserStoreError", "take_over_users"]
