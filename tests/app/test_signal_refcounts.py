"""Signals emitted from Python must not eat references to True/False: PySide6 6.12.0 does on Python
3.11, and the app then aborts after a few minutes of dictation (pyproject excludes that release)."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class Emitter(QObject):
    flag = Signal(bool)
    number = Signal(int)


def test_emit_keeps_reference_counts(qapp):
    e = Emitter()
    e.flag.connect(lambda b: None)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(5000):
        e.flag.emit(True)
        e.number.emit(1)
        e.flag.emit(False)
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50
