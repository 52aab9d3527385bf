"""Runs TextInjector in its own process on a real X display (the test process's Qt is offscreen, and only
a real X client can own the clipboard that the target application reads). argv: text mode paste_keys.
Prints the injector's message and whether it failed, once the clipboard has been restored."""
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from voxtral_desk.app.inject import TextInjector
from voxtral_desk.app.platform_support import platform_support

app = QApplication(sys.argv)
text, mode, keys = sys.argv[1:4]
injector = TextInjector(platform_support())


def done(message: str) -> None:
    print(message, flush=True)
    print("failed" if injector.failed else "ok", flush=True)
    QTimer.singleShot(TextInjector.RESTORE_DELAY_MS + 800, app.quit)  # serve the clipboard until restored


injector.finished.connect(done)
QTimer.singleShot(0, lambda: injector.inject(text, mode, keys))
QTimer.singleShot(30000, app.quit)
app.exec()
