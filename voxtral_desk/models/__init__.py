"""The model manager: a catalog of downloadable models, a verified resumable downloader, and the store
of installed models (download / import / verify / remove). Engine-free and Qt-free; the dialog lives
in voxtral_desk.app.model_dialog."""
from .catalog import Catalog, CatalogError, CatalogModel, load_catalog
from .download import (Cancelled, Control, DiskFull, DownloadError, HashMismatch, ModelManagerError, Progress,
                       Unreachable)
from .store import InstalledModel, ModelStore, StoreError, VerifyResult, default_models_dir

__all__ = [
    "Catalog", "CatalogError", "CatalogModel", "load_catalog",
    "Cancelled", "Control", "DiskFull", "DownloadError", "HashMismatch", "ModelManagerError", "Progress", "Unreachable",
    "InstalledModel", "ModelStore", "StoreError", "VerifyResult", "default_models_dir",
]
