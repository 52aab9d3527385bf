"""The packaged catalog, catalog validation, and the progress / speed / ETA arithmetic."""
import json

import pytest

from voxtral_desk.checkpoint import tensor_table
from voxtral_desk.config import ModelConfig
from voxtral_desk.models.catalog import load_catalog, parse_catalog
from voxtral_desk.models.download import published_sha256
from voxtral_desk.models.errors import CatalogError
from voxtral_desk.models.jobs import Progress, ProgressTracker, RateMeter
from voxtral_desk.testmodel import TEKKEN_AUDIO


def test_packaged_catalog_lists_the_published_q4_gguf():
    cat = load_catalog()
    q4 = cat.models[0]
    assert q4.default and q4.name == "voxtral-mini-4b-realtime-q4"
    assert q4.post == "join" and q4.join_output == "voxtral-q4.gguf"
    assert q4.join_parts == ("shard-aa", "shard-ab", "shard-ac", "shard-ad", "shard-ae")
    urls = [f.resolve_url() for f in q4.files]
    assert urls[0] == "https://huggingface.co/TrevorJS/voxtral-mini-realtime-gguf/resolve/main/shard-aa"
    tekken = q4.file("tekken.json")
    assert tekken.repo == "mistralai/Voxtral-Mini-4B-Realtime-2602"
    assert tekken.sha256 == "8434af1d39eba99f0ef46cf1450bf1a63fa941a26933a1ef5dbbf4adf0d00e44"
    # The converted variant shares the same params.json.
    assert cat.get("voxtral-mini-4b-realtime-q4-converted").params == q4.params


def test_packaged_params_are_the_real_model():
    """The params.json written beside the downloaded GGUF gives the spec's shapes: 711 tensors,
    4,429,679,360 parameters (MODEL.md §1)."""
    cfg = ModelConfig.from_documents(load_catalog().models[0].params, TEKKEN_AUDIO)
    table = tensor_table(cfg)
    assert len(table) == 711
    n = 0
    for spec in table:
        count = 1
        for d in spec.shape:
            count *= d
        n += count
    assert n == 4_429_679_360
    assert (cfg.decoder.dim, cfg.decoder.n_layers, cfg.encoder.dim, cfg.encoder.n_layers) == (3072, 26, 1280, 32)
    assert cfg.encoder.sliding_window == 750 and cfg.decoder.sliding_window == 8192


def test_hf_endpoint_and_revision_override(monkeypatch):
    f = load_catalog().models[0].files[0]
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert f.resolve_url() == "https://mirror.example/TrevorJS/voxtral-mini-realtime-gguf/resolve/main/shard-aa"
    assert f.resolve_url("http://127.0.0.1:9", "a" * 40).endswith(f"/resolve/{'a' * 40}/shard-aa")


def test_catalog_file_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": [{"name": "x", "files": [{"name": "a.gguf", "url": "http://h/a.gguf"}]}]}))
    monkeypatch.setenv("VOXTRAL_DESK_CATALOG", str(path))
    assert load_catalog().names() == ["x"]


@pytest.mark.parametrize("models, message", [
    ([{"name": "x", "files": []}], "has no files"),
    ([{"name": "x y", "files": [{"name": "a", "url": "https://h/u"}]}], "bad model name"),
    ([{"name": "x", "files": [{"name": "a", "url": "https://h/u", "repo": "r/r"}]}], "either 'url' or 'repo'"),
    ([{"name": "x", "files": [{"name": "a", "url": "https://h/u", "sha256": "abc"}]}], "64 hex digits"),
    ([{"name": "x", "files": [{"name": "../a", "url": "https://h/u"}]}], "plain file name"),
    ([{"name": "x", "files": [{"name": "a", "url": "https://h/u"}], "post": "join",
       "join": {"output": "o.gguf", "parts": ["b"]}}],
     "parts that are listed files"),
    ([{"name": "x", "files": [{"name": "a", "url": "https://h/u"}]},
      {"name": "x", "files": [{"name": "a", "url": "https://h/u"}]}],
     "listed twice"),
    ([{"name": "x", "files": [{"name": "a", "url": "https://h/u"}], "post": "convert"}], "consolidated.safetensors"),
])
def test_malformed_catalogs_are_refused_clearly(models, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog({"models": models}, "test.json")


def test_unreadable_catalog(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(tmp_path / "bad.json")


def test_published_sha256_from_hugging_face_headers():
    sha = "ab" * 32
    assert published_sha256([{"X-Linked-Etag": f'"{sha}"'}, {"ETag": '"cdn-etag"'}]) == sha
    assert published_sha256([{"ETag": f'W/"{sha.upper()}"'}]) == sha
    assert published_sha256([{"ETag": '"' + "1" * 40 + '"'}]) is None  # a git blob id, not a SHA-256


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_speed_and_eta_from_a_sliding_window():
    clock = FakeClock()
    seen = []
    tracker = ProgressTracker(seen.append, interval=0, clock=clock)
    tracker.start("downloading", total=100_000_000)
    tracker.set_file("shard-aa")
    for _ in range(10):  # 2 MB every second
        clock.t += 1
        tracker.file_bytes(tracker.current + 2_000_000)
    p = seen[-1]
    assert p.done == 20_000_000
    assert p.speed == pytest.approx(2_000_000)
    assert p.eta == pytest.approx(40)
    assert p.describe() == "downloading shard-aa: 20.0 MB of 100.0 MB (20%), 2.0 MB/s, 40 s left"
    # A stall shows within the window: the speed falls to zero, the ETA is unknown.
    for _ in range(6):
        clock.t += 1
        tracker.file_bytes(tracker.current)
    assert seen[-1].speed == 0 and seen[-1].eta is None


def test_rate_meter_restart_gives_no_negative_speed():
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    meter.add(5_000_000)
    clock.t += 1
    meter.add(0)  # the server ignored Range: the file starts over
    clock.t += 1
    meter.add(1_000_000)
    assert meter.speed() == pytest.approx(1_000_000)


def test_progress_text_without_total_or_speed():
    assert Progress("checking", "shard-ab", note="file 2 of 6").describe() == "checking shard-ab (file 2 of 6)"
    assert Progress("joining", "x.gguf", 3_500_000_000, 7_000_000_000, 5e7, 3725).describe() == \
        "joining x.gguf: 3.5 GB of 7.0 GB (50%), 50.0 MB/s, 1 h 02 min left"
