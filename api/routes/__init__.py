"""One router per resource. ``api.app.create_app`` includes :data:`ROUTERS` and, when their modules
exist, the :data:`OPTIONAL_ROUTERS` that other work adds (``api/routes/maps.py``: ``GET /maps/`` …)."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    auth,
    compare,
    flags,
    health,
    home,
    objectionpages,
    objections,
    parcels,
    policies,
    rankings,
    reports,
    reviews,
    runpages,
    runs,
    users,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.router,
    home.router,
    users.router,
    runs.router,
    compare.router,
    runpages.router,
    rankings.router,
    parcels.router,
    flags.router,
    reviews.router,
    objections.router,
    objectionpages.router,
    policies.router,
    reports.router,
)

OPTIONAL_ROUTERS: tuple[str, ...] = ("api.routes.maps", "api.routes.map_data")
"""Modules with a ``router`` attribute, included when present (the maps work adds ``api.routes.maps``)."""
