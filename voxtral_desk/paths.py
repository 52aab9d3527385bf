"""Where Voxtral Desk keeps its files: the app's name for the platform's folders, the config, data and models
folders, and the environment variables that move them (a portable install, or a test). Qt-free."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "voxtral-desk"
CONFIG_DIR_ENV = "VOXTRAL_DESK_CONFIG_DIR"
DATA_DIR_ENV = "VOXTRAL_DESK_DATA_DIR"
MODELS_DIR_ENV = "VOXTRAL_DESK_MODELS_DIR"


def config_dir() -> Path:
    """Settings: $VOXTRAL_DESK_CONFIG_DIR, else the platform's user config folder."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """History, the file queue, recordings: $VOXTRAL_DESK_DATA_DIR, else the platform's user data folder."""
    return Path(os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_models_dir() -> Path:
    """The model manager's folder: $VOXTRAL_DESK_MODELS_DIR, else "models" in the data folder."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env).expanduser() if env else data_dir().expanduser() / "models"
