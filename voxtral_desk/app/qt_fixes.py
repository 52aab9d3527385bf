"""Work-arounds for bugs in the installed PySide6, applied once when voxtral_desk.app is imported.

PySide6 6.12.0 returns Py_True from SignalInstance.emit() without taking a reference. On Python 3.11
(where True is not immortal) every emit() called from Python lowers True's reference count by one, and
after a few thousand emits (a few minutes of dictation: the level meter alone emits 20 a second) the
interpreter aborts with "bool_dealloc: deallocating True or False". The bug is detected by measuring
it, not by version number, and compensated by taking the missing reference; on a PySide6 without the
bug nothing is changed. The real fix is to avoid 6.12.0 (pyproject excludes it)."""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_applied = False


class _Probe(QObject):
    ping = Signal()


def emit_loses_a_reference(trials: int = 16) -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(trials):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= trials


def apply() -> bool:
    """Patch SignalInstance.emit if this PySide6 has the bug; returns whether it did."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12) or not emit_loses_a_reference():
        return False  # immortal bools (3.12+) cannot be freed; or the bug is not there
    original = SignalInstance.emit
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]

    def emit(self, *args):
        result = original(self, *args)
        if result is True or result is False:
            incref(result)  # the reference PySide should have returned
        return result

    SignalInstance.emit = emit
    _applied = True
    return True
