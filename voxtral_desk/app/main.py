"""`voxtral-desk` with no arguments: start the desktop app."""
from __future__ import annotations

import logging
import signal
import sys


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .history import History
    from .main_window import MainWindow
    from .resources import icon
    from .settings import SettingsStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
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
    window.show()
    window.start(messages)
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
    return int(code)
