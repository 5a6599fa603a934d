"""Accounts, roles and sessions for the dashboard and the API (issue 8)."""

from .http import COOKIE, Auth, LoginRefused
from .limiter import LoginLimiter
from .model import Principal, Role, Scope, User
from .store import USERS_FILE, UserStore, UserStoreError

__all__ = ["COOKIE", "USERS_FILE", "Auth", "LoginLimiter", "LoginRefused", "Principal", "Role",
           "Scope", "User", "UserStore", "UserStoreError"]
