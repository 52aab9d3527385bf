"""Fixtures for the model manager tests (the helpers live in tests/models_helpers.py, importable by name)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from models_helpers import isolated_environment, server, store, tiny  # noqa: E402,F401  (fixtures)
