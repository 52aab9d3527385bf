"""Icons from resources/, also from a PyInstaller bundle (sys._MEIPASS)."""
from __future__ import annotations

import shutil
import sys

from voxtral_desk.app import resources
from voxtral_desk.app.theme import STATE_COLORS


def test_every_icon_the_app_uses_exists(qapp):
    for name in ("voxtral-desk", "tray-idle", "tray-recording", "tray-busy", "mic-white", "stop-white"):
        assert resources.resource_path(f"{name}.svg").is_file(), name
        assert not resources.icon(name).isNull()


def test_frozen_bundle_path(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    (bundle / "resources").mkdir(parents=True)
    shutil.copy(resources.resource_path("tray-idle.svg"), bundle / "resources" / "tray-idle.svg")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert resources.resources_dir() == bundle / "resources"
    assert resources.resource_path("tray-idle.svg").is_file()


def test_missing_icon_falls_back_to_a_drawn_one(qapp, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)  # an empty bundle
    fallback = resources.icon("tray-recording")
    assert not fallback.isNull()
    assert fallback.pixmap(16, 16).toImage().pixelColor(8, 8).name() == STATE_COLORS["recording"]
