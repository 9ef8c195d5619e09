"""The application factory for uvicorn: ``uvicorn --factory api.main:create_app_from_env``.

Settings come from the environment (``GEO_EVAL_*``); the service refuses to start outside demo mode
with an empty or placeholder ``GEO_EVAL_SECRET_KEY``.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings


def create_app_from_env() -> FastAPI:
    """``create_app`` with settings read from the environment."""
    return create_app(Settings())
