"""Stand-in for 'another application': a window with a focused text field. argv[1]: file that receives
'ready' once focused, then the field's text on every change."""
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLineEdit

out = Path(sys.argv[1])
app = QApplication(sys.argv)
field = QLineEdit()
field.setWindowTitle("voxtral-test-target")
field.resize(600, 40)
field.textChanged.connect(lambda text: out.write_text(text))
field.show()
field.activateWindow()
field.setFocus()


def report_ready():
    if field.hasFocus():
        out.write_text("ready")
    else:
        field.activateWindow()
        QTimer.singleShot(50, report_ready)


QTimer.singleShot(100, report_ready)
QTimer.singleShot(120000, app.quit)  # never outlive a test run
app.exec()
