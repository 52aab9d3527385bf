"""One Voxtral Desk per data folder: a second launch hands its request to the running app and exits.

The first instance holds a lock file in the data folder (QLockFile: a lock left by a crashed process is
recognised by its process id and taken over) for as long as it runs, and listens on a local socket named
after that folder. A later launch that cannot take the lock sends one JSON line to the socket —
{"cmd": "show", "files": [...]} raises the window and queues the files — and reads one line back. So the
model is never loaded twice, two hotkey grabs never fight, and one process alone writes the history.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

LOCK_NAME = "instance.lock"
MAX_MESSAGE = 1 << 20  # a message is a command and some paths: anything larger is not ours


def server_name(folder: Path) -> str:
    """The socket's name: per user and per data folder, short enough for a Unix socket path."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    digest = hashlib.sha256(f"{user}:{Path(folder).resolve()}".encode()).hexdigest()[:16]
    return f"voxtral-desk-{digest}"


class SingleInstance(QObject):
    message = Signal(dict)  # a request from another launch, on the UI thread

    def __init__(self, folder: Path, parent=None):
        super().__init__(parent)
        self.folder = Path(folder)
        self.name = server_name(self.folder)
        self.lock = QLockFile(str(self.folder / LOCK_NAME))
        self.server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True: this is the only instance (and now listens for others); False: another one runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.lock.tryLock(200):
            return False
        QLocalServer.removeServer(self.name)  # a socket left behind by a crash
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        if not self.server.listen(self.name):  # still the only instance; later launches are told it does not answer
            log.warning("cannot listen for other launches on %s: %s", self.name, self.server.errorString())
        return True

    def owner_pid(self) -> int | None:
        info = self.lock.getLockInfo()  # PySide6: (pid, host, app), or nothing useful when unreadable
        return int(info[0]) if isinstance(info, tuple) and info and info[0] else None

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.lock.unlock()

    def _accept(self) -> None:
        while self.server is not None and (sock := self.server.nextPendingConnection()) is not None:
            buffer = bytearray()

            def read(sock=sock, buffer=buffer):
                buffer.extend(bytes(sock.readAll()))
                if b"\n" not in buffer and len(buffer) < MAX_MESSAGE:
                    return
                line = bytes(buffer).split(b"\n", 1)[0]
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except (ValueError, RecursionError) as e:
                    sock.write(json.dumps({"ok": False, "error": f"not a request ({e})"}).encode() + b"\n")
                else:
                    self.message.emit(request)
                    sock.write(b'{"ok": true}\n')
                sock.flush()
                sock.disconnectFromServer()

            sock.readyRead.connect(read)
            sock.disconnected.connect(sock.deleteLater)
            if sock.bytesAvailable():
                read()


def send(folder: Path, request: dict, timeout_ms: int = 5000) -> dict | None:
    """Hand a request to the running instance; its answer, or None when it does not answer."""
    sock = QLocalSocket()
    sock.connectToServer(server_name(folder))
    if not sock.waitForConnected(timeout_ms):
        return None
    sock.write(json.dumps(request).encode() + b"\n")
    if not sock.waitForBytesWritten(timeout_ms):
        return None
    answer = bytearray()
    while b"\n" not in answer:
        ready = sock.waitForReadyRead(timeout_ms)
        answer.extend(bytes(sock.readAll()))  # also what arrived together with the disconnect
        if not ready:
            break
    sock.abort()
    try:
        reply = json.loads(bytes(answer).split(b"\n", 1)[0])
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
