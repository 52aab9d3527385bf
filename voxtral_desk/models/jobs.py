"""Job control and progress for the model manager's long jobs (download, import, convert, verify): pause and
cancel shared between the UI (or the Ctrl+C handler) and the worker thread, and byte counts turned into
throttled progress reports with speed and time left."""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled


# --- pause / cancel -------------------------------------------------------------------------------

class Control:
    """Shared between the UI (or Ctrl-C handler) and the worker thread."""

    def __init__(self):
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused worker so it can see the cancel

    def pause(self) -> None:
        if not self._cancel.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def wait_while_paused(self) -> None:
        while not self._running.wait(0.2):
            pass
        self.check()

    def sleep(self, seconds: float) -> None:
        """Back-off that a cancel interrupts at once."""
        if self._cancel.wait(seconds):
            raise Cancelled()


# --- progress -------------------------------------------------------------------------------------

def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass
class Progress:
    phase: str  # checking, downloading, paused, verifying, joining, converting, copying, done
    file: str = ""
    done: int = 0  # bytes, over the whole phase (all files of a download)
    total: int | None = None
    speed: float | None = None  # bytes per second, averaged over the last seconds
    eta: float | None = None  # seconds left, when speed and total are known
    note: str = ""

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    def describe(self) -> str:
        head = f"{self.phase} {self.file}".strip()
        if self.total:
            head += f": {human_bytes(self.done)} of {human_bytes(self.total)} ({100 * self.fraction:.0f}%)"
        elif self.done:
            head += f": {human_bytes(self.done)}"
        if self.speed:
            head += f", {human_bytes(self.speed)}/s"
        if self.eta is not None:
            head += f", {human_duration(self.eta)} left"
        if self.note:
            head += f" ({self.note})"
        return head


class RateMeter:
    """Speed over a sliding window, so a stall shows quickly and one fast burst does not linger."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self.samples: collections.deque[tuple[float, int]] = collections.deque()

    def reset(self) -> None:
        self.samples.clear()

    def add(self, done: int) -> None:
        now = self.clock()
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # a restart from zero: old samples would give a negative speed
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()

    def speed(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 - t0 >= 0.5 else None


class ProgressTracker:
    """Turns byte counts from the fetch loop into throttled `Progress` reports for one phase."""

    def __init__(self, callback: Callable[[Progress], None] | None, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.callback, self.interval, self.clock = callback, interval, clock
        self.meter = RateMeter(clock=clock)
        self.phase, self.file, self.total, self.note = "", "", None, ""
        self.base = 0  # bytes of files finished in this phase
        self.current = 0  # bytes of the file in progress
        self._last = -1e9

    def start(self, phase: str, total: int | None, file: str = "", done: int = 0) -> None:
        self.phase, self.total, self.file, self.base, self.current, self.note = phase, total, file, done, 0, ""
        self.meter.reset()
        self.emit(force=True)

    def set_file(self, file: str, note: str = "") -> None:
        self.file, self.current, self.note = file, 0, note
        self.emit(force=True)

    def file_bytes(self, n: int) -> None:
        self.current = n
        self.emit()

    def finish_file(self, size: int) -> None:
        self.base += size
        self.current = 0
        self.emit(force=True)

    def set_note(self, note: str, phase: str | None = None) -> None:
        self.note = note
        if phase:
            self.phase = phase
        if phase == "paused":
            self.meter.reset()
        self.emit(force=True)

    def emit(self, force: bool = False) -> None:
        done = self.base + self.current
        self.meter.add(done)
        now = self.clock()
        if self.callback is None or (not force and now - self._last < self.interval):
            return
        self._last = now
        speed = self.meter.speed() if self.phase != "paused" else None
        eta = (self.total - done) / speed if speed and self.total and self.total >= done else None
        self.callback(Progress(self.phase, self.file, done, self.total, speed, eta, self.note))
