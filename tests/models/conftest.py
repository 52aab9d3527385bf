"""Fixtures for the model manager tests (the helpers live in models_helpers.py, importable by name)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from models_helpers import server, store, tiny  # noqa: E402,F401  (fixtures)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Tests talk to 127.0.0.1 directly unless a test sets a proxy itself, and never touch the real
    models folder."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "no_proxy",
                "NO_PROXY", "HF_ENDPOINT", "VOXTRAL_DESK_CATALOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VOXTRAL_DESK_MODELS_DIR", str(tmp_path / "default-models-dir"))
