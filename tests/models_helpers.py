"""Helpers for the model manager tests: tiny models in every layout the store handles, and a real HTTP
server on 127.0.0.1 that serves them the way Hugging Face does, with faults injected on demand."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gguf import GGMLQuantizationType, GGUFWriter  # noqa: E402

from voxtral_desk import convert  # noqa: E402
from voxtral_desk.checkpoint import OriginalCheckpoint, tensor_table  # noqa: E402
from voxtral_desk.convert import convert_checkpoint  # noqa: E402
from voxtral_desk.models.catalog import parse_catalog  # noqa: E402
from voxtral_desk.models.download import RetryPolicy  # noqa: E402
from voxtral_desk.models.store import ModelStore  # noqa: E402
from voxtral_desk.quant import quantize_q4_0  # noqa: E402
from voxtral_desk.testmodel import make_test_model  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "test/tiny-voxtral"
MODEL = "tiny-q4"  # the catalog entry shaped like the real one: byte-split GGUF + tekken.json + params
LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in to the guest network</title></head>\n"
              b"<body><form method=post><input name=room><button>Connect</button></form></body></html>\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- tiny models --------------------------------------------------------------------------------

@dataclass
class TinyModels:
    original: Path  # consolidated.safetensors + params.json + tekken.json
    single: Path  # one GGUF with our metadata + tekken.json
    shards: Path  # llama.cpp-style shard set (4 files) with our metadata + tekken.json
    plain_gguf: bytes  # a GGUF without our metadata, as TrevorJS's file: needs params.json beside it
    tekken: bytes
    params: dict
    parts: dict[str, bytes]  # plain_gguf cut like `split -b`: shard-aa, shard-ab, ...


def _plain_gguf(path: Path, ckpt: OriginalCheckpoint) -> None:
    """Original tensor names, Q4_0 where the spec says, F32 elsewhere, no model settings inside."""
    w = GGUFWriter(path, arch="voxtral")
    for spec in tensor_table(ckpt.config):
        x = ckpt.f32(spec.name)
        if spec.quantize:
            q = quantize_q4_0(x.reshape(spec.shape[0], -1))
            w.add_tensor(spec.name, q, raw_shape=q.shape, raw_dtype=GGMLQuantizationType.Q4_0)
        else:
            w.add_tensor(spec.name, x.astype("float32"))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    base = tmp_path_factory.mktemp("tiny")
    original = base / "tiny-original"
    make_test_model(original, "tiny", seed=0)
    convert_checkpoint(original, base / "single" / "tiny.gguf", None)
    # The smallest shard limit the converter's writer accepts (its largest tensor plus the header room
    # it keeps) splits the tiny model into a real llama.cpp shard set.
    ckpt = OriginalCheckpoint(original)
    specs = tensor_table(ckpt.config)
    (base / "shards").mkdir()
    limit = max(convert.stored_nbytes(s) for s in specs)
    while True:
        try:
            files = convert.write_gguf(base / "shards" / "tiny.gguf", ckpt.config,
                                       ((s, ckpt.f32(s.name)) for s in specs), "tiny", limit)
            break
        except ValueError:  # "shard size too small": below the writer's header room
            limit += 8 << 10
    assert len(files) > 1
    shutil.copyfile(original / "tekken.json", base / "shards" / "tekken.json")
    _plain_gguf(base / "plain.gguf", ckpt)
    plain = (base / "plain.gguf").read_bytes()
    step = len(plain) // 4 + 1
    parts = {f"shard-a{chr(ord('a') + i)}": plain[i * step:(i + 1) * step] for i in range(4)}
    assert b"".join(parts.values()) == plain
    return TinyModels(original, base / "single", base / "shards", plain, (original / "tekken.json").read_bytes(),
                      ckpt.config.params, parts)


# --- the HTTP server ------------------------------------------------------------------------------

class FileServer:
    """Serves `files` like Hugging Face: GET/HEAD /{repo}/resolve/{rev}/{name} answers 302 to
    /cdn/{name}, carrying X-Linked-Etag (the SHA-256), X-Linked-Size and X-Repo-Commit; /cdn/ serves the
    bytes with Range support; /old/... answers 307 to ... (a renamed repository). Absolute request URLs
    are accepted too, so it also works as a proxy.

    fault(name, *faults) queues faults; each GET of that file's bytes takes the next one:
      ("cut", n)       send the headers of the whole answer, then n bytes, then close the connection
      "ignore_range"   answer 200 with the whole file to a Range request
      "416"            answer 416 to a Range request
      ("status", code) answer with that HTTP status
      "corrupt"        send the right length with one byte changed
      ("slow", s)      sleep s seconds before each 4 KiB block
      "hang"           send nothing until the server stops
      ("stall", n)     send the headers and n bytes, then nothing until the server stops
      ("html", typed)  answer 200 with a sign-in web page (Content-Type text/html when `typed`)
      ("gzip", typed)  send the bytes gzip-compressed (Content-Encoding: gzip when `typed`)
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = defaultdict(list)
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.publish_sha = True
        self.stopping = threading.Event()
        self.sent: dict[str, int] = defaultdict(int)  # body bytes sent per file
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.serve(head=True)

            def do_GET(self):
                self.serve(head=False)

            def serve(self, head: bool):
                path = self.path
                if path.startswith("http://"):  # a proxy request
                    path = "/" + path.split("/", 3)[3]
                server.requests.append((self.command, path, self.headers.get("Range")))
                if path.startswith("/old/"):  # a renamed repository: a redirect without file metadata
                    self.send_response(307)
                    self.send_header("Location", path[len("/old"):])
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if "/resolve/" in path:
                    name = path.rsplit("/", 1)[1]
                    if name not in server.files:
                        return self.send_error(404)
                    self.send_response(302)
                    self.send_header("Location", f"/cdn/{name}")
                    if server.publish_sha:
                        self.send_header("X-Linked-Etag", f'"{sha256(server.files[name])}"')
                    self.send_header("X-Linked-Size", str(len(server.files[name])))
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if not path.startswith("/cdn/"):
                    return self.send_error(404)
                name = path[len("/cdn/"):]
                data = server.files.get(name)
                if data is None:
                    return self.send_error(404)
                fault = server.faults[name].pop(0) if (not head and server.faults[name]) else None
                kind = fault[0] if isinstance(fault, tuple) else fault
                if kind == "hang":
                    server.stopping.wait(30)
                    return
                if kind == "status":
                    return self.send_error(fault[1])
                if kind == "html":
                    page = LOGIN_PAGE
                    self.send_response(200)
                    typed = "text/html; charset=utf-8" if fault[1] else "application/octet-stream"
                    self.send_header("Content-Type", typed)
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    return None if head else self.wfile.write(page)
                start = 0
                rng = self.headers.get("Range")
                if rng and kind != "ignore_range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if kind == "416" or start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        return self.end_headers()
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if kind == "corrupt":
                    mid = len(body) // 2
                    body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
                if kind == "gzip":
                    body = gzip.compress(body)
                    if fault[1]:
                        self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                if kind in ("cut", "stall"):
                    body = body[:fault[1]]
                delay = fault[1] if kind == "slow" else 0
                for i in range(0, len(body), 4096):
                    if delay:
                        if server.stopping.wait(delay):
                            return
                    try:
                        self.wfile.write(body[i:i + 4096])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    server.sent[name] += len(body[i:i + 4096])
                if kind == "cut":
                    self.close_connection = True
                if kind == "stall":
                    server.stopping.wait(60)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def fault(self, name: str, *faults) -> None:
        self.faults[name].extend(faults)

    def gets(self, name: str) -> list[str | None]:
        """The Range headers of the GETs of a file's bytes, in order."""
        return [r for m, p, r in self.requests if m == "GET" and p == f"/cdn/{name}"]

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- catalog + store ------------------------------------------------------------------------------

def catalog_for(server: FileServer, tiny: TinyModels, *, pin: bool = False, name: str = MODEL):
    return parse_catalog(catalog_data(server, tiny, pin=pin, name=name), "test")


def catalog_data(server: FileServer, tiny: TinyModels, *, pin: bool = False, name: str = MODEL) -> dict:
    """A catalog entry shaped like the real one: byte-split plain GGUF + tekken.json, joined here,
    params.json written from the catalog. Files are served by `server` through the /resolve/ route."""
    server.files.update(tiny.parts)
    server.files["tekken.json"] = tiny.tekken
    files = [{"name": n, "repo": REPO, "revision": "main", "path": n,
              "sha256": sha256(d) if pin else None, "size": len(d) if pin else None} for n, d in tiny.parts.items()]
    files.append({"name": "tekken.json", "repo": REPO, "revision": "main", "path": "tekken.json",
                  "sha256": sha256(tiny.tekken) if pin else None})
    return {"models": [
        {"name": name, "title": "Tiny test model", "default": True, "post": "join",
         "join": {"output": "tiny-q4.gguf", "parts": list(tiny.parts)}, "files": files, "params": tiny.params},
        {"name": "tiny-converted", "title": "Tiny, converted here", "post": "convert",
         "files": [{"name": "consolidated.safetensors", "repo": REPO, "path": "consolidated.safetensors"},
                   {"name": "tekken.json", "repo": REPO, "path": "tekken.json"}],
         "params_from": name},
    ]}


FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=5)


@pytest.fixture
def store(tmp_path, server, tiny) -> ModelStore:
    return ModelStore(tmp_path / "models", catalog_for(server, tiny), policy=FAST, endpoint=server.base)


def wait_for(predicate, timeout: float = 10.0) -> None:
    """Poll until `predicate()` holds (a synchronisation aid, not a timing assertion)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Tests talk to 127.0.0.1 directly unless a test sets a proxy itself, and never touch the real
    models folder (autouse wherever it is imported)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "no_proxy",
                "NO_PROXY", "HF_ENDPOINT", "VOXTRAL_DESK_CATALOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VOXTRAL_DESK_MODELS_DIR", str(tmp_path / "default-models-dir"))
