"""Fetching one file over HTTP(S) so that the result is either the exact file or a clear error.

- Resumable: bytes go to `NAME.part`; a retry or a later run asks for the rest with a Range request. A
  server that answers a resume with 200 (Range ignored) is handled by starting over, 416 by checking
  whether the part is already whole, otherwise starting over.
- Verified: the SHA-256 is computed while writing; the part is renamed to its final name only when the
  hash matches. A mismatch fetches the file once more from scratch, then gives up with a clear error.
- Never hangs: every socket operation has a timeout, and a connection slower than RetryPolicy.min_speed
  counts as stalled; retries back off (1, 2, 4 ... s) and stop.
- Pause / cancel: `Control`. Socket calls run in a helper thread (_IOThread) while the downloading thread
  waits in short steps, so a cancel takes effect at once even while the server sends nothing.
- Says what arrived when a size or hash check fails and the server sent a web page or compressed data.
- Proxies: urllib's default ProxyHandler reads http_proxy / https_proxy / no_proxy from the environment.
"""
from __future__ import annotations

import collections
import errno
import functools
import hashlib
import http.client
import os
import queue
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..fileio import sha256_file
from .catalog import SHA256_RE
from .errors import DownloadError, HashMismatch, Unreachable
from .jobs import Control, ProgressTracker, human_bytes
from .layout import disk_error

USER_AGENT = f"voxtral-desk/{__version__} (+python-urllib)"
CHUNK = 1 << 18  # 256 KiB between cancel checks and progress updates
POLL = 0.2  # seconds between looks at cancel / pause while a socket call waits
SNIFF = 512  # bytes of an answer looked at to tell what a server sent instead of the file


# --- failures that are retried -------------------------------------------------------------------

class _Transient(Exception):
    """A failure worth retrying (cut connection, timeout, 5xx)."""


class _TooSlow(_Transient):
    """Bytes arrive, but slower than RetryPolicy.min_speed: retried, but unlike other failures the bytes that
    arrived do not count as progress that resets the tries."""

    def __init__(self, speed: float, policy: "RetryPolicy"):
        super().__init__(f"the connection is too slow: {human_bytes(speed)}/s over the last {policy.speed_window:g} s, "
                         f"below the {human_bytes(policy.min_speed)}/s a download needs")


class _Paused(Exception):
    """Raised into the downloading thread when a pause comes while a socket call waits."""


# --- HTTP -----------------------------------------------------------------------------------------

@dataclass
class RetryPolicy:
    attempts: int = 6  # failures in a row without progress before giving up
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 30.0  # seconds for connect and for each read
    min_speed: float = 1000.0  # bytes per second: slower than this over speed_window counts as a stall
    speed_window: float = 60.0  # seconds of one connection the speed is averaged over

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (failures - 1))


@dataclass
class RemoteInfo:
    """What the server says about a file before we fetch it."""
    url: str
    size: int | None = None
    sha256: str | None = None  # from X-Linked-Etag (Hugging Face LFS) or a SHA-256-shaped ETag
    commit: str | None = None  # X-Repo-Commit: the commit a branch name resolved to


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """For probes: hand 3xx answers back as HTTPError so their headers can be read."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def published_sha256(headers_list) -> str | None:
    for headers in headers_list:
        for key in ("X-Linked-Etag", "ETag"):
            value = headers.get(key)
            if value:
                value = value.strip()
                value = value[2:] if value.startswith("W/") else value
                value = value.strip('"').lower()
                if SHA256_RE.match(value):
                    return value
    return None


def _header(headers_list, key: str) -> str | None:
    for headers in headers_list:
        if headers.get(key):
            return headers.get(key)
    return None


def _request(url: str, method: str, offset: int = 0) -> urllib.request.Request:
    req = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return req


def _open(url: str, *, offset: int = 0, timeout: float):
    # build_opener adds the default ProxyHandler, which reads the proxy environment variables, and
    # follows redirects (Hugging Face sends /resolve/ to its CDN); the Range header goes along.
    return urllib.request.build_opener().open(_request(url, "GET", offset), timeout=timeout)


def _host(url: str) -> str:
    return urllib.request.urlparse(url).netloc or url


def _connect_failure(url: str, reason: object) -> Unreachable:
    names = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")
    proxy = next((os.environ[v] for v in names if os.environ.get(v)), "")
    via = f" through the proxy {proxy}" if proxy else ""
    return Unreachable(
        f"cannot reach {_host(url)}{via}: {reason}. You seem to be offline, or a firewall or proxy blocks the "
        "connection. Check the network (and the https_proxy / no_proxy settings), then retry; a partial "
        "download resumes where it stopped. Or import a model file you already have.", remedy="import")


def _tls_failure(url: str, reason: object) -> DownloadError:
    return DownloadError(f"secure connection to {_host(url)} failed: {reason}. A proxy may be intercepting HTTPS.")


def _is_connect_failure(reason: object) -> bool:
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror)) or (
        isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED))


def _http_error(e: urllib.error.HTTPError, url: str, file: str) -> Exception:
    code = e.code
    if code in (404, 410):
        return DownloadError(f"{file}: not found on the server (HTTP {code}) at {url}. The catalog entry may be out of "
                             "date: update Voxtral Desk, or download the model yourself and import it.",
                             remedy="import")
    if code in (401, 403):
        return DownloadError(f"{file}: the server refused access (HTTP {code}) at {url}. The model may need you to "
                             "log in or accept its licence on the website: download it in a browser and import it.",
                             remedy="import")
    if code in (408, 425, 429) or code >= 500:
        return _Transient(f"the server answered HTTP {code} {e.reason}")
    return DownloadError(f"{file}: the server answered HTTP {code} {e.reason} at {url}.")


def _head(url: str, timeout: float) -> tuple[int, http.client.HTTPMessage]:
    """One HEAD request, redirects not followed: (status, headers)."""
    try:
        with urllib.request.build_opener(_NoRedirect()).open(_request(url, "HEAD"), timeout=timeout) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as e:
        e.close()
        if 300 <= e.code < 400:
            return e.code, e.headers
        raise


NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException)


class _IOThread:
    """Makes the blocking socket calls of one connection (connect, headers, each read), in order, in a daemon
    thread of its own while the downloading thread waits in POLL steps: a cancel then takes effect within POLL
    seconds even while a server sends nothing, and the socket's own timeout (RetryPolicy.timeout) still ends a
    stall. What a call returned that can be closed (the response) is closed there when the thread ends."""

    def __init__(self):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="voxtral-download-io", daemon=True).start()

    def _serve(self) -> None:
        opened = []
        while (job := self._jobs.get()) is not None:
            fn, done, out = job
            try:
                value = fn()
                if hasattr(value, "close"):
                    opened.append(value)
                out.append((True, value))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                out.append((False, e))
            done.set()
        for value in opened:
            try:
                value.close()
            except Exception:  # noqa: BLE001 - a connection already broken has nothing left to close
                pass

    def call(self, fn, control: Control, on_wait: Callable[[], None] | None = None):
        """fn()'s result, or its exception. While it runs: Cancelled on a cancel, and whatever on_wait() raises
        (it is called every POLL seconds)."""
        done, out = threading.Event(), []
        self._jobs.put((fn, done, out))
        while not done.wait(POLL):
            control.check()
            if on_wait:
                on_wait()
        ok, value = out[0]
        if ok:
            return value
        raise value

    def close(self) -> None:
        """End the thread once its current call has returned (a blocked read ends by its timeout)."""
        self._jobs.put(None)


class _SpeedCheck:
    """Raises _TooSlow when one connection brings fewer than policy.min_speed bytes per second, averaged over
    its last policy.speed_window seconds (judged only once it has lasted that long)."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy, self.clock = policy, clock
        self.samples: collections.deque[tuple[float, int]] = collections.deque([(clock(), 0)])
        self.received = 0

    def add(self, n: int) -> None:
        self.received += n
        self.samples.append((self.clock(), self.received))
        self.check()

    def check(self) -> None:
        now, window = self.clock(), self.policy.speed_window
        if now - self.samples[0][0] < window:
            return
        while len(self.samples) > 1 and self.samples[1][0] <= now - window:
            self.samples.popleft()  # keep the last sample at or before the window's start
        t0, b0 = self.samples[0]
        speed = (self.received - b0) / (now - t0)
        if speed < self.policy.min_speed:
            raise _TooSlow(speed, self.policy)


def _network_error(e: Exception, url: str, policy: RetryPolicy, connect_is_fatal: bool = True) -> "_Transient":
    """A failure to talk to the server: raised at once where retrying cannot help (refused connection or
    unknown host while nothing has arrived yet, TLS), returned as _Transient to be retried otherwise.
    HTTP status errors are handled by the callers before this."""
    if isinstance(e, urllib.error.URLError):
        if connect_is_fatal and _is_connect_failure(e.reason):
            raise _connect_failure(url, e.reason) from None
        if isinstance(e.reason, ssl.SSLError):
            raise _tls_failure(url, e.reason) from None
        return _Transient(str(e.reason))
    if isinstance(e, (TimeoutError, socket.timeout)):
        return _Transient(f"no answer within {policy.timeout:g} s")
    return _Transient(f"connection lost ({e.__class__.__name__})")


def probe(url: str, file: str, policy: RetryPolicy, control: Control | None = None) -> RemoteInfo:
    """HEAD the URL for size, published SHA-256 and commit. Hugging Face puts them on the redirect from
    /resolve/ to its CDN, so that redirect is read, not followed (CDN links are often signed for GET
    only); a redirect without them (a renamed repository) is followed. Retries like a download."""
    control = control or Control()
    failures = 0
    while True:
        control.check()
        seen: list = []
        current = url
        io = _IOThread()
        try:
            for _hop in range(6):
                status, headers = io.call(functools.partial(_head, current, policy.timeout), control)
                seen.append(headers)
                location = headers.get("Location")
                has_metadata = headers.get("X-Linked-Etag") or headers.get("X-Linked-Size")
                if not (300 <= status < 400) or has_metadata or not location:
                    break
                current = urllib.parse.urljoin(current, location)
            size = _header(seen, "X-Linked-Size") or (seen[-1].get("Content-Length") if status < 300 else None)
            return RemoteInfo(url, int(size) if size and size.isdigit() else None, published_sha256(seen),
                              _header(seen, "X-Repo-Commit"))
        except urllib.error.HTTPError as e:
            if e.code == 405 or (seen and e.code in (401, 403)):  # HEAD refused further on: the GET will tell
                return RemoteInfo(url, None, published_sha256(seen), _header(seen, "X-Repo-Commit"))
            err = _http_error(e, url, file)
        except NETWORK_ERRORS as e:
            err = _network_error(e, url, policy)
        finally:
            io.close()
        if not isinstance(err, _Transient):
            raise err
        failures += 1
        if failures >= policy.attempts:
            raise DownloadError(f"{file}: {err} at {url}, {failures} times. Check the connection and retry.")
        control.sleep(policy.delay(failures))


# --- the file on disk -----------------------------------------------------------------------------

def _open_part(path: Path, offset: int):
    """The part file, positioned at `offset` and cut there (bytes past it are not trusted)."""
    f = open(path, "r+b" if path.exists() else "w+b")
    f.truncate(offset)
    f.seek(offset)
    return f


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


class _Digest:
    """SHA-256 of part[0:upto], kept in step with the bytes written, so a whole file needs no second read."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.h, self.upto = hashlib.sha256(), 0

    def catch_up(self, part: Path, offset: int, control: Control) -> None:
        """Make the hash cover part[0:offset] (a resume from an earlier run, or after a restart)."""
        if self.upto != offset:
            self.reset()
            if offset:
                sha256_file(part, offset, control, digest=self.h)
                self.upto = offset

    def update(self, block: bytes) -> None:
        self.h.update(block)
        self.upto += len(block)


def _substitute(headers, head: bytes) -> str | None:
    """What a server sent instead of the file, when its headers or first bytes tell: "html" (a web page) or
    the name of a compression. Only asked once a size or hash check has failed."""
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    if encoding not in ("", "identity") or head.startswith(b"\x1f\x8b"):
        return encoding if encoding not in ("", "identity") else "gzip"
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    start = head.lstrip().lower()
    if content_type in ("text/html", "application/xhtml+xml") or start.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def _substitute_error(kind: str, file: str, url: str) -> DownloadError:
    if kind == "html":
        return DownloadError(
            f"{file}: the server sent a web page instead of the file: perhaps a login page, a captive portal (the "
            f"sign-in page of a hotel, airport or office network) or a proxy's error page. Open {url} in a web browser "
            "to see it and sign in if asked, then retry; or download the model another way and import it.",
            remedy="import")
    return DownloadError(
        f"{file}: the server sent compressed data ({kind}) although the plain file was asked for: a proxy may be "
        f"altering the download from {_host(url)}. Retry on another network or without the proxy, or download the "
        "model another way and import it.", remedy="import")


@dataclass
class _Answer:
    """The headers and first bytes of one answer, kept to say what arrived when the file's check fails."""
    headers: object
    head: bytes = b""


def _fetch_to_part(url: str, part: Path, file: str, size: int | None, control: Control,
                   tracker: ProgressTracker, policy: RetryPolicy, answers: list[_Answer]) -> tuple[str, int]:
    """Bring `part` to the whole file; returns (sha256 hex, size). Resumes from what `part` holds. The
    answers that brought bytes are added to `answers`."""
    digest = _Digest()
    failures, total_failures, any_bytes = 0, 0, False
    while True:
        control.wait_while_paused()
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            offset = 0  # longer than the file can be: not ours to trust
        digest.catch_up(part, offset, control)
        if size is not None and offset == size and offset > 0:
            return digest.h.hexdigest(), offset
        tracker.file_bytes(offset)
        err: Exception
        io = _IOThread()
        try:
            resp = io.call(functools.partial(_open, url, offset=offset, timeout=policy.timeout), control)
        except urllib.error.HTTPError as e:
            io.close()
            e.close()
            if e.code == 416 and offset:
                _, total = _content_range(e.headers.get("Content-Range"))
                if total == offset and (size is None or size == offset):
                    return digest.h.hexdigest(), offset  # the part already holds the whole file
                _open_part(part, 0).close()  # our part does not fit the file: start over
                total_failures += 1
                if total_failures > 3 * policy.attempts:
                    raise DownloadError(f"{file}: the server keeps refusing the requested range (HTTP 416) "
                                        f"at {url}.") from None
                continue
            err = _http_error(e, url, file)
            if not isinstance(err, _Transient):
                raise err from None
        except NETWORK_ERRORS as e:
            io.close()
            # Once bytes have arrived the server exists: a refused connection is then worth retrying.
            err = _network_error(e, url, policy, connect_is_fatal=not any_bytes)
        except BaseException:
            io.close()
            raise
        else:
            try:
                got = _receive(io, resp, part, file, url, offset, size, digest, control, tracker, policy, answers)
                if got is None:  # paused: reconnect with a Range request once resumed
                    continue
                return got
            except _Transient as e:
                err = e
            except (TimeoutError, socket.timeout):
                err = _Transient(f"the server stopped sending for {policy.timeout:g} s")
            except (ConnectionError, http.client.HTTPException, ssl.SSLError) as e:
                err = _Transient(f"connection lost ({e.__class__.__name__})")
            finally:
                io.close()
        # A retry. Failures reset when bytes arrived, so a flaky but working line still finishes; a line too
        # slow to be of use does not count as working.
        if (part.stat().st_size if part.exists() else 0) > offset and not isinstance(err, _TooSlow):
            any_bytes, failures = True, 0
        failures += 1
        total_failures += 1
        if failures >= policy.attempts or total_failures > 20 * policy.attempts:
            if isinstance(err, _TooSlow):
                raise DownloadError(f"{file}: {err} ({failures} tries) from {_host(url)}. Check the connection or use "
                                    "another network, then retry; the download resumes where it stopped.")
            raise DownloadError(f"{file}: download failed: {err} ({failures} tries in a row) from {_host(url)}. "
                                "Check the connection and retry; the download resumes where it stopped.")
        tracker.set_note(f"{err}; retrying in {policy.delay(failures):g} s")
        control.sleep(policy.delay(failures))
        tracker.set_note("")


def _wrong_size(io: _IOThread, resp, control: Control, file: str, url: str, what: str) -> DownloadError:
    """A size check failed before any byte was written: a web page or compressed data, when its first bytes
    say so, else a file that changed upstream."""
    try:
        head = io.call(functools.partial(resp.read, SNIFF), control)
    except NETWORK_ERRORS + (ssl.SSLError,):
        head = b""
    kind = _substitute(resp.headers, head)
    if kind:
        return _substitute_error(kind, file, url)
    return DownloadError(f"{file}: {what}. The file changed upstream; update Voxtral Desk or import the model "
                         "yourself.", remedy="import")


def _receive(io: _IOThread, resp, part: Path, file: str, url: str, offset: int, size: int | None, digest: _Digest,
             control: Control, tracker: ProgressTracker, policy: RetryPolicy,
             answers: list[_Answer]) -> tuple[str, int] | None:
    """Write the body to the part file. Returns (sha256, size) when whole, None when paused."""
    length = resp.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if resp.status == 206:
        start, total = _content_range(resp.headers.get("Content-Range"))
        if start != offset:
            raise _Transient(f"the server sent a different range than asked (from {start}, not {offset})")
        if size is not None and total is not None and total != size:
            raise _wrong_size(io, resp, control, file, url, f"the server now has {total} bytes, expected {size}")
        end = offset + length if length is not None else total
    elif resp.status == 200:
        if offset:  # the server ignored our Range: take the whole file again from the start
            offset = 0
            digest.reset()
        end = length
    else:
        raise _Transient(f"unexpected HTTP {resp.status}")
    if size is not None and end is not None and end != size:
        raise _wrong_size(io, resp, control, file, url, f"the server sends {end} bytes, expected {size}")
    try:
        f = _open_part(part, offset)
    except OSError as e:
        raise disk_error(e, part) from None
    pos = offset
    speed = _SpeedCheck(policy)
    answer = _Answer(resp.headers)
    answers.append(answer)

    def on_wait() -> None:
        control.check()
        if control.paused:
            raise _Paused()
        speed.check()

    with f:
        try:
            while True:
                on_wait()  # between blocks as well as while one is awaited
                block = io.call(functools.partial(resp.read1, CHUNK), control, on_wait)  # what has arrived
                if not block:
                    break
                if len(answer.head) < SNIFF:
                    answer.head += block[:SNIFF - len(answer.head)]
                if size is not None and pos + len(block) > size:
                    f.truncate(0)
                    digest.reset()
                    raise _Transient(f"the server sent more than the expected {size} bytes")
                try:
                    f.write(block)
                    f.flush()  # so an error shows up here, for this block, not later for several
                except OSError as e:
                    f.truncate(pos)  # keep only whole, known-good bytes for the resume
                    raise disk_error(e, part) from None
                digest.update(block)
                pos += len(block)
                tracker.file_bytes(pos)
                speed.add(len(block))
        except _Paused:  # drop the connection while paused; the resume asks for the rest
            tracker.set_note("paused", phase="paused")
            control.wait_while_paused()
            tracker.set_note("", phase="downloading")
            return None
        try:
            os.fsync(f.fileno())
        except OSError as e:
            raise disk_error(e, part) from None
    if end is not None and pos < end:
        raise _Transient(f"the connection was cut after {pos} of {end} bytes")
    return digest.h.hexdigest(), pos


def download_file(url: str, dest: Path, *, sha256: str, size: int | None, control: Control,
                  tracker: ProgressTracker, policy: RetryPolicy) -> int:
    """Fetch `url` to `dest` through `dest.part`; `dest` appears only with the right SHA-256.
    A wrong hash discards the part and fetches once more; a second wrong hash is an error, and so is a first
    one when what arrived was a web page or compressed data. Returns the size."""
    part = dest.with_name(dest.name + ".part")
    for round_ in (1, 2):
        answers: list[_Answer] = []
        digest, got_size = _fetch_to_part(url, part, dest.name, size, control, tracker, policy, answers)
        if digest == sha256:
            part.replace(dest)
            return got_size
        part.unlink(missing_ok=True)
        kind = next((k for a in answers if (k := _substitute(a.headers, a.head))), None)
        if kind:
            raise _substitute_error(kind, dest.name, url)
        if round_ == 1:
            tracker.set_note("checksum mismatch, fetching again")
    raise HashMismatch(f"{dest.name}: downloaded twice, and both times its SHA-256 ({digest}) differs from the "
                       f"expected {sha256}. The server or something between (a proxy) sends damaged data. Nothing "
                       "was installed; retry later, or download the model another way and import it.",
                       remedy="import")
