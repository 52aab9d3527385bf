"""`voxtral-desk` with no arguments (or with audio files to transcribe): start the desktop app, or hand the
request to the copy that is already running."""
from __future__ import annotations

import logging
import signal
import sys
import time

ANSWER_TRIES = 3  # a running instance may be busy starting up: ask a few times before giving up


def run_app(argv: list[str] | None = None, files: list[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .instance import SingleInstance, send
    from ..paths import data_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    files = list(files or [])
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    instance = SingleInstance(data_dir())
    if not instance.acquire():
        return _hand_over(instance, files, send)

    from .history import History
    from .main_window import MainWindow
    from .resources import icon
    from .settings import SettingsStore

    app.setApplicationName("Voxtral Desk")
    app.setApplicationDisplayName("Voxtral Desk")
    app.setDesktopFileName("voxtral-desk")
    app.setWindowIcon(icon("voxtral-desk"))
    # Closing the window may only hide it to the tray; quitting is explicit (menu, tray, Ctrl+Q).
    app.setQuitOnLastWindowClosed(False)

    store = SettingsStore()
    settings = store.load()
    messages = list(store.messages)
    try:
        history = History()
    except Exception as e:  # sqlite unusable (disk full, permissions): dictation still works
        logging.getLogger(__name__).exception("history unavailable")
        history = None
        messages.append(f"The history database could not be opened ({e}); dictations will not be kept.")

    window = MainWindow(store, settings, history)
    window.closed.connect(app.quit)
    app.aboutToQuit.connect(window.shutdown)  # also when Qt itself quits (session logout)
    instance.message.connect(lambda request: _on_request(window, request))
    window.show()
    window.start(messages)
    if files:
        window.open_files(files)
    # Ctrl+C in a terminal and SIGTERM (logout, kill) quit cleanly: a running dictation is flushed to
    # the history first. Python only runs signal handlers when it gets control, hence the idle timer.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.quit())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    code = app.exec()
    if history is not None:
        history.close()
    instance.release()
    return int(code)


def _on_request(window, request: dict) -> None:
    """What another launch asked for: show the window, and queue the files it was given."""
    if request.get("cmd") == "show":
        files = [str(f) for f in request.get("files") or [] if isinstance(f, str)]
        logging.getLogger(__name__).info("another launch asked to show the window (%d files)", len(files))
        window.open_files(files)


def _hand_over(instance, files: list[str], send) -> int:
    for attempt in range(ANSWER_TRIES):
        reply = send(instance.folder, {"cmd": "show", "files": files})
        if reply is not None and reply.get("ok"):
            what = (f" and {len(files)} file{'s were' if len(files) != 1 else ' was'} added to its queue"
                    if files else "")
            print(f"Voxtral Desk is already running: its window was brought to the front{what}.", file=sys.stderr)
            return 0
        time.sleep(1.0 * (attempt + 1))
    pid = instance.owner_pid()
    print(f"Voxtral Desk is already running{f' (process {pid})' if pid else ''} but does not answer. Wait a moment "
          "and try again, or end that process if it hangs.", file=sys.stderr)
    return 1
