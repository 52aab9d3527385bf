"""What the model manager reports to the user, shared by the catalog, the downloader, the store, the command
line and the dialog; and the one "the user cancelled" (Cancelled), which file transcription raises too."""
from __future__ import annotations

from ..config import ModelFileError


class ModelManagerError(Exception):
    """Anything the model manager reports to the user: the message says what failed and what to do, in words
    that suit both the app and the command line. `remedy` names the action that helps, so the CLI and the
    dialog can each add how to do it there: "import" (a model file the user has), "folder" (another models
    folder), "remove" (the model, or what was downloaded of it), "rename" (import under another name, or
    remove the installed model first) or "repair" (fetch a damaged model again); `model` is the model."""

    def __init__(self, message: str = "", *, remedy: str = "", model: str = ""):
        super().__init__(message)
        self.remedy, self.model = remedy, model


class DownloadError(ModelManagerError):
    pass


class Cancelled(DownloadError):
    """The user cancelled (Control.cancel, Ctrl+C), or a file transcription stopped between two blocks to let a
    dictation run (pipeline.FileTranscription, which continues later)."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class Unreachable(DownloadError):
    """No connection to the server at all (offline, DNS, refused, proxy down)."""


class DiskFull(DownloadError):
    pass


class HashMismatch(DownloadError):
    pass


class StoreError(ModelManagerError):
    pass


class UnusableModel(StoreError, ModelFileError):
    """Files that were all verified, but do not open as a model."""


class CatalogError(ModelManagerError):
    """The catalog file is missing or malformed."""
