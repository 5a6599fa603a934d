"""The technicians' dashboard (server-rendered HTML), its JSON/CSV API and /metrics (issue 8)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .context import Dashboard
from .data import data_router
from .inventory_api import inventory_api_router
from .inventory_pages import inventory_router
from .metrics import metrics_router
from .missing_pages import missing_router
from .pages import page_router
from .report_export import report_api_router
from .report_pages import report_router

__all__ = ["Dashboard", "install_dashboard"]


def install_dashboard(app: FastAPI, dash: Dashboard) -> Dashboard:
    app.state.dashboard = dash  # every page asks it whether its view may be stale (render.page)
    app.include_router(data_router(dash))
    app.include_router(metrics_router(dash))
    app.include_router(page_router(dash))
    app.include_router(missing_router(dash))
    app.include_router(inventory_api_router(dash))
    app.include_router(inventory_router(dash))
    app.include_router(report_router(dash))
    app.include_router(report_api_router(dash))
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return dash
