"""ASGI entry point for `uvicorn serving.main:app` (settings from RECSYS_* environment variables)."""

from serving.app import create_app

app = create_app()
