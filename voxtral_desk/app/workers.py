"""The QThread workers: the only code that touches both the streaming session and Qt.

Threads:
- ModelLoadThread reads the model and starts the engine (seconds to minutes for the real model).
- DictationThread owns one microphone capture from Start to Stop: it pulls samples from the ring buffer
  the audio callback fills, feeds the session, and emits partial transcripts as tokens come out.
- FileThread transcribes one audio file in bounded memory (pipeline.transcribe_file streams 10 s blocks).

There is one model in memory, so one StreamingSession; EngineHost lets one thread use it at a time.
Dictation has priority: a dictation that wants the engine makes the running file job stop at its next
block boundary (the file is restarted later), and the microphone keeps recording into the ring buffer
meanwhile, so nothing said while waiting is lost.

All signals are emitted from worker threads and delivered to the UI thread queued, in order.
"""
from __future__ import annotations

import codecs
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal

from ..audio import AudioFileError, audio_info
from ..config import ModelFileError
from ..session import StreamingSession, Token
from ..transcript import Transcript
from .audio_capture import MODEL_RATE, CaptureError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.03  # how often the dictation worker looks at the ring buffer when it is empty
MAX_FEED_SECONDS = 0.5  # a backlog is fed in pieces so partial text keeps flowing while catching up
STATS_INTERVAL = 0.05  # level meter / clock updates, 20 per second
HISTORY_INTERVAL = 2.0  # how often a growing dictation is written to the history
STALL_SECONDS = 4.0  # no audio for this long while running means the device is gone
FIRST_AUDIO_SECONDS = 8.0  # PulseAudio takes 1-2 s to deliver the first block; allow for slow servers


class EngineHost:
    """The loaded model's session plus the lock that serialises its users."""

    def __init__(self, session: StreamingSession, model_path: str):
        self.session = session
        self.model_path = model_path
        self._lock = threading.Lock()
        self._dictation_waiting = threading.Event()

    @property
    def description(self) -> str:
        return f"{Path(self.model_path).name} · {self.session.engine.name}"

    @contextmanager
    def for_dictation(self):
        self._dictation_waiting.set()  # tells a running file job to yield at its next block
        try:
            self._lock.acquire()
        finally:
            self._dictation_waiting.clear()
        try:
            yield self.session
        finally:
            self._lock.release()

    def dictation_waiting(self) -> bool:
        return self._dictation_waiting.is_set()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def acquire_for_file(self, cancelled) -> bool:
        """Wait for the engine, letting a waiting dictation go first. False if cancelled meanwhile."""
        while not cancelled():
            if self._dictation_waiting.is_set():
                time.sleep(0.05)
            elif self._lock.acquire(timeout=0.1):
                return True
        return False

    def release_file(self) -> None:
        self._lock.release()


class ModelLoadThread(QThread):
    progress = Signal(str)
    loaded = Signal(object)  # EngineHost
    failed = Signal(str)

    def __init__(self, model_path: str, backend: str, delay_ms: int, parent=None):
        super().__init__(parent)
        self.model_path, self.backend, self.delay_ms = model_path, backend, delay_ms

    def run(self) -> None:
        from ..loader import load_model
        from ..pipeline import open_session

        try:
            self.progress.emit("Reading the model files…")
            model = load_model(self.model_path)
            self.progress.emit(f"Starting the {self.backend} engine…")
            session = open_session(model, self.backend, self.delay_ms)
        except ModelFileError as e:
            self.failed.emit(f"The model could not be opened: {e}")
        except Exception as e:  # a GPU/driver failure must not take the app down
            log.exception("engine start failed")
            self.failed.emit(f"The {self.backend} engine could not start: {e}. "
                             "Try the other backend in Settings.")
        else:
            self.loaded.emit(EngineHost(session, self.model_path))


class ModelCheckThread(QThread):
    """Hashes the files of a managed model that changed since their last good check (ModelStore.verify
    with changed_only), after a load; damaged(report) when one does not match."""

    damaged = Signal(str)

    def __init__(self, store, name: str, parent=None):
        super().__init__(parent)
        from ..models.jobs import Control

        self.store, self.name = store, name
        self.control = Control()

    def run(self) -> None:
        from ..models.errors import ModelManagerError

        try:
            results = self.store.verify(self.name, control=self.control, changed_only=True)
        except (ModelManagerError, OSError) as e:  # cancelled at quit, or the model was removed meanwhile
            log.info("model check of %s not done: %s", self.name, e)
            return
        if results and not results[0].ok:
            model = self.store.find(self.name)
            self.damaged.emit(model.damage_report if model is not None else "; ".join(results[0].problems))


@dataclass
class DictationResult:
    text: str
    tokens: list[Token]
    seconds: float  # audio captured and transcribed, at 16 kHz
    dropped_seconds: float  # audio lost to a full ring buffer (the engine could not keep up)
    device_error: str | None
    history_id: int | None
    audio_path: str = ""
    device_name: str = ""


class DictationThread(QThread):
    """One dictation, Start to Stop. request_stop() may be called from any thread."""

    capture_started = Signal(str, int)  # device name, device sample rate
    partial = Signal(int, object, str)  # sequence number (1, 2, ...), new tokens, whole text so far
    stats = Signal(float, float, float)  # seconds captured, peak level in dBFS, seconds dropped
    failed = Signal(str)  # could not start: nothing was recorded
    device_error = Signal(str)  # the device died mid-way; what was captured is still transcribed
    done = Signal(object)  # DictationResult

    def __init__(self, engine: EngineHost, capture, device_name: str, delay_ms: int, history=None,
                 record_path: Path | None = None, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.capture = capture
        self.device_name = device_name
        self.delay_ms = delay_ms
        self.history = history
        self.record_path = record_path
        self._stop = threading.Event()
        self.tokens: list[Token] = []
        self.text = ""
        # Text grows by decoding only the new tokens' bytes (a full decode per update would cost O(n)
        # each time, O(n^2) over an hour); an incomplete UTF-8 character waits for its next bytes.
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._raw_text = ""
        self._text_ids: list[int] = []
        self._entry: int | None = None  # history row
        self._captured = 0  # device-rate samples pulled from the ring

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            self.capture.open(self.device_name)
            self.capture.start()
        except CaptureError as e:
            self.capture.close()
            self.failed.emit(str(e))
            return
        except Exception as e:  # an unexpected PortAudio failure is still only a device problem
            log.exception("capture start failed")
            self.capture.close()
            self.failed.emit(f"The microphone could not be started: {e}")
            return
        self.capture_started.emit(self.capture.device_name, int(self.capture.samplerate))
        try:
            result = self._record()
        except Exception as e:  # keep whatever text there is, report the rest
            log.exception("dictation failed")
            self.capture.close()
            result = DictationResult(self.text, list(self.tokens), self._seconds(), 0.0,
                                     f"Transcription stopped because of an error: {e}", self._entry)
            self._save(result, "interrupted")
        self.done.emit(result)

    # -- the recording loop -------------------------------------------------------------------------
    def _record(self) -> DictationResult:
        cap = self.capture
        self._seq = 0
        self._fed = 0  # 16 kHz samples given to the session
        self._segment_start = 0.0  # seconds: where the current session segment began (after an EOS)
        self._last_stats = self._last_history = 0.0
        self._peak = 0.0
        self._resampler = None
        if cap.samplerate != MODEL_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(cap.samplerate, MODEL_RATE, 1, dtype="float32", quality="HQ")
        self._writer = None
        audio_path = ""
        if self.record_path is not None:
            import soundfile

            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = soundfile.SoundFile(str(self.record_path), "w", MODEL_RATE, 1, "FLOAT")
            audio_path = str(self.record_path)
        if self.history is not None:
            self._entry = self.history.start("dictation", cap.device_name, self.engine.model_path, self.delay_ms,
                                             audio_path)
        device_error = None
        try:
            with self.engine.for_dictation() as session:  # may wait for a file job to reach a block boundary
                self._session = session
                session.reset(self.delay_ms)
                limit = int(cap.samplerate * MAX_FEED_SECONDS)
                last_progress, last_progress_time = -1, time.monotonic()
                while not self._stop.is_set():
                    device_error = cap.error
                    if device_error:
                        break
                    if self._pump(limit):
                        continue
                    # Nothing new: check the device is still delivering, then wait a little.
                    progress = cap.ring.written + cap.ring.overflow_samples
                    now = time.monotonic()
                    if progress != last_progress:
                        last_progress, last_progress_time = progress, now
                    elif now - last_progress_time > (STALL_SECONDS if progress else FIRST_AUDIO_SECONDS):
                        device_error = (f"The microphone “{cap.device_name}” stopped delivering audio "
                                        "(unplugged, muted by the system, or taken by another program?).")
                        break
                    self._emit_stats()  # no new audio is silence: let the level meter fall
                    self._stop.wait(POLL_SECONDS)
                # Stop: let the device hand over what it already recorded, then transcribe every sample.
                cap.stop()
                while self._pump(limit):
                    pass
                if self._resampler is not None:
                    self._feed(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
                self._accept(session.flush())
                # The final text from one full decode: exactly what an offline run shows.
                self.text = session.tokenizer.decode(self._text_ids).strip()
                self._emit_stats(force=True)
        finally:
            cap.close()
            if self._writer is not None:
                self._writer.close()
        if device_error:
            self.device_error.emit(device_error)
        dropped = cap.ring.overflow_samples / cap.samplerate
        result = DictationResult(self.text, list(self.tokens), self._seconds(), dropped, device_error, self._entry,
                                 audio_path, cap.device_name)
        self._save(result, "interrupted" if device_error else "done")
        return result

    def _pump(self, limit: int) -> bool:
        chunk = self.capture.ring.read(limit)
        if not len(chunk):
            return False
        self._captured += len(chunk)
        self._peak = max(self._peak, float(np.max(np.abs(chunk))))
        x = chunk if self._resampler is None else self._resampler.resample_chunk(chunk)
        self._feed(x)
        self._emit_stats()
        now = time.monotonic()
        if self._entry is not None and now - self._last_history >= HISTORY_INTERVAL:
            self._last_history = now
            self.history.update(self._entry, self.text, self._seconds())
        return True

    def _feed(self, x: np.ndarray) -> None:
        if not len(x):
            return
        if self._writer is not None:
            self._writer.write(x)
        self._fed += len(x)
        session = self._session
        self._accept(session.feed(x))
        if session.finished:
            # The model ended the utterance (EOS) while the person is still talking: start a new
            # segment so later speech is transcribed too; its tokens are shifted to their real time.
            self._segment_start = self._fed / MODEL_RATE
            session.reset()

    def _accept(self, new: list[Token]) -> None:
        if not new:
            return
        if self._segment_start:
            offset = self._segment_start
            new = [Token(t.id, t.index, t.start + offset, t.end + offset) for t in new]
        self.tokens.extend(new)
        tokenizer = self._session.tokenizer
        text_ids = [t.id for t in new if tokenizer.is_text(t.id)]
        if text_ids:
            self._text_ids.extend(text_ids)
            self._raw_text += self._utf8.decode(b"".join(tokenizer.token_bytes(i) for i in text_ids))
            self.text = self._raw_text.strip()
        self._seq += 1
        self.partial.emit(self._seq, new, self.text)

    def _emit_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_stats >= STATS_INTERVAL:
            self._last_stats = now
            db = 20 * np.log10(self._peak) if self._peak > 1e-6 else -120.0
            self._peak = 0.0
            self.stats.emit(self._seconds(), float(db), self.capture.ring.overflow_samples / self.capture.samplerate)

    def _seconds(self) -> float:
        return self._captured / float(self.capture.samplerate or MODEL_RATE)

    def _save(self, result: DictationResult, status: str) -> None:
        """The final text and, for later exports, every token with its time (History never raises)."""
        if self.history is None or result.history_id is None:
            return
        record = None
        session = getattr(self, "_session", None)
        if session is not None:
            meta = {"source": result.device_name or self.device_name, "duration": round(result.seconds, 3),
                    "delay_ms": self.delay_ms, "engine": session.engine.name}
            record = Transcript(list(result.tokens), session.tokenizer, meta).to_json_record()
        self.history.update(result.history_id, result.text, result.seconds, status, record)


class FileThread(QThread):
    """Transcribe one file, or continue one a dictation interrupted. cancel() may be called from any thread."""

    waiting = Signal()  # the engine is busy (a dictation): this file waits for it
    running = Signal()  # the engine is ours: transcribing
    info = Signal(float)  # duration in seconds, once the header is read
    progress = Signal(float)  # 0..1
    transcribed = Signal(object, object)  # Transcript, its History id (None without a history)
    failed = Signal(str)
    cancelled = Signal()
    interrupted = Signal(object)  # yielded the engine to a dictation: the state to continue from (or None)

    def __init__(self, engine: EngineHost, path: str, delay_ms: int, history=None, resume=None, parent=None):
        super().__init__(parent)
        self.engine, self.path, self.delay_ms, self.history = engine, path, delay_ms, history
        self.resume = resume
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from ..models.errors import Cancelled
        from ..pipeline import FileTranscription

        if not Path(self.path).exists():
            self.failed.emit("File not found (moved or deleted?)")
            return  # anything else that is not audio (a folder, a pipe) is described by audio_info
        try:
            duration, _, _ = audio_info(self.path)
            self.info.emit(float(duration))
        except AudioFileError as e:
            self.failed.emit(_file_message(e, self.path))
            return
        if self.engine.dictation_waiting() or self.engine.busy:
            self.waiting.emit()
        if not self.engine.acquire_for_file(self._cancel.is_set):
            self.cancelled.emit()
            return
        self.running.emit()
        job = self.resume
        if job is not None and job.session is not self.engine.session:  # the model was reloaded meanwhile
            job.close()
            job = None
        try:
            if job is None:
                self.engine.session.reset(self.delay_ms)
                job = FileTranscription(self.engine.session, self.path)
            else:
                self.progress.emit(job.fraction * 0.98)
            stop = lambda: self._cancel.is_set() or self.engine.dictation_waiting()  # noqa: E731
            transcript = job.run(self.progress.emit, stop)
        except Cancelled:
            if self._cancel.is_set():
                job.close()
                self.cancelled.emit()
            else:
                self.interrupted.emit(job)  # stopped between two blocks, its stream saved: it continues later
            return
        except AudioFileError as e:
            self.failed.emit(_file_message(e, self.path))
            return
        except Exception as e:
            log.exception("file transcription failed")
            if job is not None:
                job.close()
            self.failed.emit(f"Transcription failed: {e}")
            return
        finally:
            self.engine.release_file()
        history_id = None
        if self.history is not None:  # History never raises: a failed write waits in memory for a retry
            history_id = self.history.add("file", self.path, transcript.text,
                                          float(transcript.meta.get("duration", 0.0)), model=self.engine.model_path,
                                          delay_ms=self.delay_ms, transcript=transcript.to_json_record())
        self.transcribed.emit(transcript, history_id)


def _file_message(error: Exception, path: str) -> str:
    # AudioFileError messages start with the path, which the queue already shows in its own column.
    text = str(error)
    prefix = f"{path}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return text[:1].upper() + text[1:]
