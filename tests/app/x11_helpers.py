"""Helpers for the tests that need a real X server (Xvfb), a window to type into, and PulseAudio."""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TARGET = Path(__file__).with_name("x11_target.py")


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies, even if it crashes before its
    fixtures could clean up (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number (it picks one and tells us through -displayfd)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_target(display: str, out: Path) -> subprocess.Popen:
    """A small Qt window with a focused text field that writes its text to `out` on every change;
    'ready' is written first, once the field has keyboard focus."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    proc = subprocess.Popen([sys.executable, str(TARGET), str(out)], env=env, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (out.exists() and out.read_text() == "ready"):
        if proc.poll() is not None:
            raise RuntimeError("the target window exited")
        time.sleep(0.05)
    return proc


def focus_window(display: str, name: str) -> None:
    env = dict(os.environ, DISPLAY=display)
    ids = subprocess.run(["xdotool", "search", "--sync", "--name", name], env=env, capture_output=True, text=True,
                         timeout=10).stdout.split()
    subprocess.run(["xdotool", "windowfocus", "--sync", ids[0]], env=env, check=True, timeout=10)


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True, timeout=10)


def wait_until(app, condition, timeout: float, what: str) -> None:
    """Run the Qt event loop until condition() holds; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def start_pulse(env: dict, modules: list[str], default_source: str) -> subprocess.Popen:
    """A PulseAudio server for env's XDG_RUNTIME_DIR with the given modules (--load arguments), answering
    and with `default_source` as its default microphone; RuntimeError when it does not start."""
    pulse = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                              "--load=module-native-protocol-unix", *(f"--load={m}" for m in modules)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 15
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or pulse.poll() is not None:
            stop(pulse)
            raise RuntimeError("PulseAudio did not start")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-source", default_source], env=env, check=True)
    return pulse


def have(*binaries: str) -> list[str]:
    return [b for b in binaries if shutil.which(b) is None]
