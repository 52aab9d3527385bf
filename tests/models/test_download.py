"""Downloads against a real HTTP server on 127.0.0.1 with injected faults. In every case the outcome
is a verified complete model, or a clear error with nothing installed under the final name (partial
files may stay in .partial/ for a resume, but are never listed or loaded)."""
import errno
import threading
import time

import pytest

from models_helpers import COMMIT, FAST, MODEL, catalog_data, catalog_for, closed_port, sha256, wait_for

from voxtral_desk.config import ModelFileError
from voxtral_desk.loader import load_model
from voxtral_desk.models import download as dl
from voxtral_desk.models import install as install_mod
from voxtral_desk.models.catalog import RECORD, parse_catalog
from voxtral_desk.models.download import RetryPolicy
from voxtral_desk.models.errors import Cancelled, DiskFull, DownloadError, HashMismatch, StoreError, Unreachable
from voxtral_desk.models.jobs import Control, ProgressTracker
from voxtral_desk.models.layout import read_json
from voxtral_desk.models.store import ModelStore


def assert_nothing_installed(store):
    assert store.installed() == []
    assert store.find(MODEL) is None
    assert store.default() is None
    assert not (store.root / MODEL).exists()


def assert_installed(store, tiny):
    m = store.find(MODEL)
    assert m is not None and m.verified
    assert store.default().name == MODEL
    model = load_model(m.path)  # the joined GGUF + params.json from the catalog + tekken.json
    assert model.config.params == tiny.params
    assert (m.path / "tiny-q4.gguf").read_bytes() == tiny.plain_gguf
    assert not list(m.path.glob("shard-*")) and not list(m.path.glob("*.part"))
    assert not (store.root / ".partial" / MODEL).exists()
    return m


def test_download_verifies_joins_and_installs(store, server, tiny):
    seen = []
    m = store.download(MODEL, progress=seen.append)
    assert_installed(store, tiny)
    record = read_json(m.path / RECORD)
    downloads = {d["name"]: d for d in record["downloads"]}
    # Unpinned files are verified against the server's X-Linked-Etag, and that is recorded.
    assert downloads["shard-ab"]["sha256"] == sha256(tiny.parts["shard-ab"])
    assert downloads["shard-ab"]["hash_source"].startswith("server")
    # "main" was resolved to one commit before the first byte; every file came from it.
    assert all(d["commit"] == COMMIT and f"/resolve/{COMMIT}/" in d["url"] for d in downloads.values())
    files = {f["name"]: f for f in record["files"]}
    assert set(files) == {"tiny-q4.gguf", "tekken.json", "params.json"}
    assert files["tiny-q4.gguf"]["sha256"] == sha256(tiny.plain_gguf)
    # Sizes and hashes were read from the /resolve/ redirect; the CDN got GETs only.
    assert not [r for r in server.requests if r[0] == "HEAD" and r[1].startswith("/cdn/")]
    phases = [p.phase for p in seen]
    assert phases.index("checking") < phases.index("downloading") < phases.index("joining")
    assert seen[-1].phase == "done"
    # A second call finds it installed and fetches nothing.
    n = len(server.requests)
    assert store.download(MODEL).path == m.path
    assert len(server.requests) == n


def test_pinned_hashes_when_the_server_publishes_none(tmp_path, server, tiny):
    server.publish_sha = False
    store = ModelStore(tmp_path, catalog_for(server, tiny, pin=True), policy=FAST, endpoint=server.base)
    m = store.download(MODEL)
    record = read_json(m.path / RECORD)
    assert {d["hash_source"] for d in record["downloads"]} == {"catalog"}


def test_no_hash_anywhere_is_refused_before_downloading(store, server):
    server.publish_sha = False
    with pytest.raises(DownloadError, match="cannot be verified"):
        store.download(MODEL)
    assert server.gets("shard-aa") == []
    assert_nothing_installed(store)
    assert not (store.root / ".partial" / MODEL).exists()


def test_pin_that_disagrees_with_the_server_is_refused(tmp_path, server, tiny):
    cat = catalog_for(server, tiny, pin=True)
    server.files["shard-ac"] = tiny.parts["shard-ac"][:-1] + b"X"  # upstream changed the file
    store = ModelStore(tmp_path, cat, policy=FAST, endpoint=server.base)
    with pytest.raises(DownloadError, match="shard-ac: the server publishes SHA-256 .* changed upstream"):
        store.download(MODEL)
    assert server.gets("shard-aa") == []  # refused while checking, before any download
    assert_nothing_installed(store)


def test_connection_cut_mid_file_resumes_with_range(store, server, tiny):
    server.fault("shard-ab", ("cut", 5000))
    store.download(MODEL)
    assert server.gets("shard-ab") == [None, "bytes=5000-"]
    assert_installed(store, tiny)


def test_server_ignoring_range_starts_over(store, server, tiny):
    server.fault("shard-ab", ("cut", 5000), "ignore_range")
    store.download(MODEL)
    assert server.gets("shard-ab") == [None, "bytes=5000-"]  # the 200 answer was taken from byte 0
    assert_installed(store, tiny)


def test_416_on_resume_starts_over(store, server, tiny):
    server.fault("shard-ab", ("cut", 5000), "416")
    store.download(MODEL)
    assert server.gets("shard-ab") == [None, "bytes=5000-", None]
    assert_installed(store, tiny)


def test_416_for_a_part_that_is_already_whole(tmp_path, server, tiny):
    """A server that publishes no size and answers 416 to a resume of a complete part: verified as is."""
    data = tiny.parts["shard-aa"]
    server.files["shard-aa"] = data
    dest = tmp_path / "shard-aa"
    (tmp_path / "shard-aa.part").write_bytes(data)
    dl.download_file(f"{server.base}/cdn/shard-aa", dest, sha256=sha256(data), size=None, control=Control(),
                     tracker=ProgressTracker(None), policy=FAST)
    assert dest.read_bytes() == data
    assert server.gets("shard-aa") == [f"bytes={len(data)}-"]


def test_404_is_a_clear_error(store, server):
    del server.files["shard-ad"]
    with pytest.raises(DownloadError, match=r"shard-ad: not found on the server \(HTTP 404\).*import"):
        store.download(MODEL)
    assert_nothing_installed(store)


def test_500_is_retried(store, server, tiny):
    server.fault("shard-aa", ("status", 500), ("status", 503))
    store.download(MODEL)
    assert len(server.gets("shard-aa")) == 3
    assert_installed(store, tiny)


def test_500_that_persists_gives_up_clearly_and_keeps_what_was_verified(store, server, tiny):
    server.fault("shard-ac", *[("status", 500)] * FAST.attempts)
    with pytest.raises(DownloadError, match=r"shard-ac: download failed: the server answered HTTP 500.*retry"):
        store.download(MODEL)
    assert_nothing_installed(store)
    staged = store.root / ".partial" / MODEL / "files"
    assert sorted(p.name for p in staged.iterdir() if p.suffix != ".part") == ["shard-aa", "shard-ab"]
    assert store.partial_bytes(MODEL) > 0
    store.download(MODEL)  # the retry fetches only what is missing
    assert len(server.gets("shard-aa")) == 1
    assert_installed(store, tiny)


def test_wrong_bytes_are_fetched_again(store, server, tiny):
    server.fault("shard-ab", "corrupt")
    store.download(MODEL)
    assert server.gets("shard-ab") == [None, None]
    assert_installed(store, tiny)


def test_wrong_bytes_twice_is_a_clear_error_and_no_file_is_kept(store, server):
    server.fault("shard-ab", "corrupt", "corrupt")
    with pytest.raises(HashMismatch, match="shard-ab: downloaded twice.*SHA-256.*Nothing was installed"):
        store.download(MODEL)
    files = store.root / ".partial" / MODEL / "files"
    assert not (files / "shard-ab").exists() and not (files / "shard-ab.part").exists()
    assert_nothing_installed(store)


def test_a_staged_file_damaged_between_runs_is_fetched_again(store, server, tiny):
    server.fault("shard-ac", *[("status", 500)] * FAST.attempts)
    with pytest.raises(DownloadError):
        store.download(MODEL)
    staged = store.root / ".partial" / MODEL / "files" / "shard-aa"
    data = bytearray(staged.read_bytes())
    data[100] ^= 0xFF
    staged.write_bytes(bytes(data))
    store.download(MODEL)
    assert len(server.gets("shard-aa")) == 2
    assert_installed(store, tiny)


def run_in_thread(fn):
    outcome = {}

    def work():
        try:
            outcome["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            outcome["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t, outcome


def test_slow_server_cancel_then_resume(store, server, tiny):
    server.fault("shard-aa", ("slow", 0.02))
    control = Control()
    t, outcome = run_in_thread(lambda: store.download(MODEL, control=control))
    wait_for(lambda: server.sent["shard-aa"] >= 8192)
    control.cancel()
    t.join(10)
    assert not t.is_alive() and isinstance(outcome.get("error"), Cancelled)
    assert_nothing_installed(store)
    part = store.root / ".partial" / MODEL / "files" / "shard-aa.part"
    kept = part.stat().st_size
    assert 0 < kept < len(tiny.parts["shard-aa"])
    store.download(MODEL)
    assert server.gets("shard-aa")[-1] == f"bytes={kept}-"
    assert_installed(store, tiny)


def test_pause_drops_the_connection_and_resume_continues(store, server, tiny):
    server.fault("shard-aa", ("slow", 0.02))
    control = Control()
    seen = []
    t, outcome = run_in_thread(lambda: store.download(MODEL, progress=seen.append, control=control))
    wait_for(lambda: server.sent["shard-aa"] >= 8192)
    control.pause()
    wait_for(lambda: any(p.phase == "paused" for p in seen))
    control.resume()
    t.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert server.gets("shard-aa")[0] is None and server.gets("shard-aa")[1].startswith("bytes=")
    assert_installed(store, tiny)


class FullDisk:
    """A part file whose writes fail with ENOSPC once `budget` bytes have been written."""

    def __init__(self, f, budget):
        self.f, self.budget = f, budget

    def write(self, data):
        if self.budget < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_disk_full_while_writing_is_clear_and_resumable(store, server, tiny, monkeypatch):
    real_open = dl._open_part
    monkeypatch.setattr(dl, "_open_part", lambda path, offset: FullDisk(real_open(path, offset), 6000))
    server.fault("shard-aa", ("slow", 0.005))  # 4 KiB at a time, so the disk fills up mid-file
    with pytest.raises(DiskFull, match="disk is full while writing shard-aa.part.*Free some space.*resumes"):
        store.download(MODEL)
    assert_nothing_installed(store)
    part = store.root / ".partial" / MODEL / "files" / "shard-aa.part"
    kept = part.read_bytes()
    assert len(kept) <= 6000 and tiny.parts["shard-aa"].startswith(kept)  # only whole, good blocks are kept
    monkeypatch.setattr(dl, "_open_part", real_open)
    store.download(MODEL)
    assert server.gets("shard-aa") == [None, f"bytes={len(kept)}-" if kept else None]
    assert_installed(store, tiny)


def test_not_enough_free_space_refuses_before_downloading(store, server, monkeypatch):
    monkeypatch.setattr(install_mod, "free_bytes", lambda path: 10_000)
    with pytest.raises(DiskFull, match=r"not enough free space .* it needs .* is free.*another models folder"):
        store.download(MODEL)
    assert all(server.gets(n) == [] for n in ("shard-aa", "tekken.json"))
    assert_nothing_installed(store)


def test_unreachable_host_fails_fast_with_advice(tmp_path, server, tiny):
    port = closed_port()
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=RetryPolicy(attempts=6, base_delay=30, timeout=5),
                       endpoint=f"http://127.0.0.1:{port}")
    # A retry would sleep 30 s: the refused connection must end at once, without retries.
    with pytest.raises(Unreachable, match=rf"cannot reach 127.0.0.1:{port}.*offline.*retry.*import"):
        store.download(MODEL)
    assert_nothing_installed(store)
    assert not (tmp_path / ".partial").exists() or not any((tmp_path / ".partial").iterdir())


def test_a_server_that_never_answers_times_out(tmp_path, server, tiny):
    policy = RetryPolicy(attempts=2, base_delay=0.01, timeout=0.3)
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=policy, endpoint=server.base)
    server.fault("shard-aa", "hang", "hang")
    with pytest.raises(DownloadError, match=r"shard-aa: download failed: .*0.3 s"):
        store.download(MODEL)
    assert_nothing_installed(store)


def test_proxy_from_the_environment_is_used(tmp_path, server, tiny, monkeypatch):
    """Files named by a host that does not exist arrive through the proxy set in http_proxy."""
    server.files.update(tiny.parts)
    server.files["tekken.json"] = tiny.tekken
    files = [{"name": n, "url": f"http://models.invalid/cdn/{n}", "sha256": sha256(d)}
             for n, d in [*tiny.parts.items(), ("tekken.json", tiny.tekken)]]
    cat = parse_catalog({"models": [{"name": MODEL, "post": "join", "files": files, "params": tiny.params,
                                     "join": {"output": "tiny-q4.gguf", "parts": list(tiny.parts)}}]})
    monkeypatch.setenv("http_proxy", server.base)
    store = ModelStore(tmp_path, cat, policy=FAST)
    store.download(MODEL)
    assert len(server.gets("shard-aa")) == 1
    assert_installed(store, tiny)


def test_download_converts_an_original_checkpoint(store, server, tiny):
    server.files["consolidated.safetensors"] = (tiny.original / "consolidated.safetensors").read_bytes()
    seen = []
    m = store.download("tiny-converted", progress=seen.append)
    assert m.verified and m.kind == "gguf"
    assert "converting" in [p.phase for p in seen]
    assert not (m.path / "consolidated.safetensors").exists()  # only the converted GGUF is kept
    model = load_model(m.path)
    assert model.config.params == tiny.params
    assert not (store.root / ".partial" / "tiny-converted").exists()


def test_unknown_model_name(store):
    with pytest.raises(StoreError, match="no model named 'nope' in the catalog .*tiny-q4"):
        store.download("nope")


def test_probe_follows_a_redirect_without_file_metadata(server, tiny):
    server.files["shard-aa"] = tiny.parts["shard-aa"]
    info = dl.probe(f"{server.base}/old/test/tiny-voxtral/resolve/main/shard-aa", "shard-aa", FAST)
    data = tiny.parts["shard-aa"]
    assert (info.size, info.sha256, info.commit) == (len(data), sha256(data), COMMIT)
    assert [p for m, p, r in server.requests] == ["/old/test/tiny-voxtral/resolve/main/shard-aa",
                                                   "/test/tiny-voxtral/resolve/main/shard-aa"]


def test_probe_of_a_plain_server(server, tiny):
    """No Hugging Face headers: the size comes from Content-Length, no hash is published."""
    server.files["shard-aa"] = tiny.parts["shard-aa"]
    info = dl.probe(f"{server.base}/cdn/shard-aa", "shard-aa", FAST)
    assert (info.size, info.sha256, info.commit) == (len(tiny.parts["shard-aa"]), None, None)


def test_verified_files_that_do_not_open_as_a_model_are_not_installed(tmp_path, server, tiny):
    data = catalog_data(server, tiny)
    data["models"][0]["params"] = {**tiny.params, "dim": tiny.params["dim"] * 2}  # settings that fit no tensor
    store = ModelStore(tmp_path, parse_catalog(data), policy=FAST, endpoint=server.base)
    with pytest.raises(ModelFileError, match="every file matches its SHA-256, but it does not open as a model.*remove"):
        store.download(MODEL)
    assert_nothing_installed(store)


# --- what the server sent instead of the file ---------------------------------------------------

@pytest.mark.parametrize("fault, message", [
    (("html", True), r"shard-ab: the server sent a web page instead of the file.*login page.*captive portal"),
    (("html", False), r"shard-ab: the server sent a web page instead of the file.*login page.*captive portal"),
    (("gzip", True), r"shard-ab: the server sent compressed data \(gzip\) although the plain file was asked.*proxy"),
    (("gzip", False), r"shard-ab: the server sent compressed data \(gzip\) although the plain file was asked.*proxy"),
])
def test_a_web_page_or_compressed_body_is_named_when_the_size_is_wrong(store, server, fault, message):
    server.fault("shard-ab", fault, fault)
    with pytest.raises(DownloadError, match=message) as caught:
        store.download(MODEL)
    assert "changed upstream" not in str(caught.value) and "Update Voxtral Desk" not in str(caught.value)
    assert_nothing_installed(store)


@pytest.mark.parametrize("fault, message", [
    (("html", True), r"shard-aa: the server sent a web page instead of the file"),
    (("html", False), r"shard-aa: the server sent a web page instead of the file"),
    (("gzip", True), r"shard-aa: the server sent compressed data \(gzip\)"),
    (("gzip", False), r"shard-aa: the server sent compressed data \(gzip\)"),
])
def test_a_web_page_or_compressed_body_is_named_when_the_hash_is_wrong(tmp_path, server, tiny, fault, message):
    """No size known beforehand: the SHA-256 check fails, and the first bytes tell what arrived."""
    data = tiny.parts["shard-aa"]
    server.files["shard-aa"] = data
    server.fault("shard-aa", fault, fault)
    with pytest.raises(DownloadError, match=message) as caught:
        dl.download_file(f"{server.base}/cdn/shard-aa", tmp_path / "shard-aa", sha256=sha256(data), size=None,
                         control=Control(), tracker=ProgressTracker(None), policy=FAST)
    assert "damaged data" not in str(caught.value)
    assert not (tmp_path / "shard-aa").exists() and not (tmp_path / "shard-aa.part").exists()


# --- a stalled or crawling connection -------------------------------------------------------------

def test_cancel_takes_effect_while_the_server_sends_nothing(tmp_path, server, tiny):
    """The server sends a little, then nothing for longer than the test lasts: a cancel still ends the
    download within about a second, not after the 30 s read timeout."""
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=RetryPolicy(attempts=3, base_delay=0.01, timeout=30),
                       endpoint=server.base)
    server.fault("shard-aa", ("stall", 8192))
    part = tmp_path / ".partial" / MODEL / "files" / "shard-aa.part"
    control = Control()
    t, outcome = run_in_thread(lambda: store.download(MODEL, control=control))
    wait_for(lambda: part.exists() and part.stat().st_size >= 8192)
    started = time.monotonic()
    control.cancel()
    t.join(10)
    assert not t.is_alive() and isinstance(outcome.get("error"), Cancelled)
    assert time.monotonic() - started < 2.5
    assert part.stat().st_size == 8192  # what arrived is kept for the resume
    assert_nothing_installed(store)


def test_a_connection_below_the_minimum_speed_is_given_up_clearly(tmp_path, server, tiny):
    policy = RetryPolicy(attempts=2, base_delay=0.01, timeout=5, min_speed=100_000, speed_window=0.4)
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=policy, endpoint=server.base)
    server.fault("shard-aa", ("slow", 0.1), ("slow", 0.1))  # about 40 KB/s
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"shard-aa: the connection is too slow: \d+(\.\d)? KB/s over the last "
                                            r"0.4 s.*100.0 KB/s.*2 tries.*resumes"):
        store.download(MODEL)
    assert time.monotonic() - started < 5  # not the 1.4 s per try the whole file would take at that speed, twice
    assert len(server.gets("shard-aa")) == 2  # it reconnected once before giving up
    assert_nothing_installed(store)
    assert store.partial_bytes(MODEL) > 0  # what arrived is kept


def test_a_slow_start_is_not_a_stall_once_the_speed_recovers(tmp_path, server, tiny):
    policy = RetryPolicy(attempts=2, base_delay=0.01, timeout=5, min_speed=100_000, speed_window=0.4)
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=policy, endpoint=server.base)
    server.fault("shard-aa", ("slow", 0.1))  # one crawling connection, then a normal one
    store.download(MODEL)
    assert len(server.gets("shard-aa")) == 2
    assert_installed(store, tiny)


# --- one download or import of a model at a time ----------------------------------------------------

def test_a_second_download_or_import_of_the_same_model_says_it_is_in_progress(store, server, tiny):
    server.fault("shard-aa", ("stall", 4096))
    control = Control()
    t, outcome = run_in_thread(lambda: store.download(MODEL, control=control))
    wait_for(lambda: server.sent["shard-aa"] >= 4096)
    with pytest.raises(StoreError, match=f"a download of {MODEL} is already in progress"):
        store.download(MODEL)
    with pytest.raises(StoreError, match=f"a download of {MODEL} is already in progress"):
        store.import_path(tiny.single / "tiny.gguf", name=MODEL)
    with pytest.raises(StoreError, match=f"a download of {MODEL} is already in progress"):
        store.remove(MODEL)
    control.cancel()
    t.join(10)
    assert isinstance(outcome.get("error"), Cancelled)
    assert store.import_path(tiny.single / "tiny.gguf", name=MODEL).verified  # free again once it stopped
