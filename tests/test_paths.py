"""One home for the app's folders: the settings, the app's data and the model manager's folder follow the
same environment variables and platform folders, whoever asks."""
from __future__ import annotations

import platformdirs

from voxtral_desk import paths
from voxtral_desk.app.settings import SettingsStore
from voxtral_desk.models.store import ModelStore


def test_platform_folders_by_default(monkeypatch):
    for var in (paths.CONFIG_DIR_ENV, paths.DATA_DIR_ENV, paths.MODELS_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    assert paths.config_dir() == platformdirs.user_config_path("voxtral-desk", appauthor=False)
    assert paths.data_dir() == platformdirs.user_data_path("voxtral-desk", appauthor=False)
    assert paths.default_models_dir() == paths.data_dir() / "models"


def test_the_app_and_the_model_manager_share_the_moved_folders(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv(paths.CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path / "data"))
    assert SettingsStore().path == tmp_path / "config" / "settings.json"
    assert ModelStore().root == tmp_path / "data" / "models"


def test_a_models_folder_with_a_tilde_is_in_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(paths.MODELS_DIR_ENV, "~/voxtral-models")
    assert paths.default_models_dir() == tmp_path / "voxtral-models"
    monkeypatch.delenv(paths.MODELS_DIR_ENV)
    monkeypatch.setenv(paths.DATA_DIR_ENV, "~/voxtral-data")
    assert paths.default_models_dir() == tmp_path / "voxtral-data" / "models"
