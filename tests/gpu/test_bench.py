"""`voxtral-desk bench --profile` on the GPU engine: every phase reports GPU time per kernel class, and
live steps also per whole program; benchmarks/shader_ab.py runs each engine on its own WGSL;
benchmarks/dispatch_floor.py replays the live step's dispatches with probes that read what they are
given."""
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from voxtral_desk.bench import run_bench
from voxtral_desk.gpu import shaders_dir

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_profile_times_every_phase(models):
    model = models["tiny", 0]
    result = run_bench(str(model.source), 2.0, "gpu", live_steps=5, log=lambda *a: None, profile=True, late_seconds=0)
    profile = result["profile"]
    for phase in ("file", "encode", "prefill", "decode", "live"):
        kernels = profile[phase]["kernels"]
        assert kernels and profile[phase]["gpu_ms_total"] > 0, phase
        assert sum(k["calls"] for k in kernels.values()) > 0, phase
    assert any("q4_matvec" in name for name in profile["decode"]["kernels"] | profile["live"]["kernels"])
    assert profile["dispatches_per_decoder_step"] > 0
    live = profile["live"]
    assert live["gpu_ms_per_step"] == pytest.approx(live["gpu_ms_total"] / live["steps"], abs=1e-3)
    whole = profile["live_programs"]
    assert {name: k["calls"] for name, k in whole["kernels"].items()} == {
        "encoder: whole program": whole["steps"], "decoder step: whole program": whole["steps"]}
    assert whole["gpu_ms_per_step"] == pytest.approx(whole["gpu_ms_total"] / whole["steps"], abs=1e-3)


def _shader_ab():
    path = BENCHMARKS / "shader_ab.py"
    spec = importlib.util.spec_from_file_location("shader_ab", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shader_ab_builds_each_engine_from_its_folder(models, tmp_path):
    """benchmarks/shader_ab.py: a copy of shaders/ gives base's tokens; a copy whose Q4 nibbles decode
    one too high does not, so the variant's engine really ran the variant's WGSL. With classes, each
    variant's live-step GPU time comes also by kernel class of both programs."""
    same, broken = tmp_path / "same", tmp_path / "broken"
    shutil.copytree(shaders_dir(), same)
    shutil.copytree(shaders_dir(), broken)
    nibbles = broken / "q4_nibbles.wgsl"
    text = nibbles.read_text()
    assert "- 8388616.0" in text
    nibbles.write_text(text.replace("- 8388616.0", "- 8388615.0"))
    model = models["tiny", 0]
    results = _shader_ab().run(str(model.source), {"base": None, "same": same, "broken": broken}, 2.0, 1, [1.0], 2,
                               classes=True, log=lambda *a: None)
    assert results["same"]["tokens_differ_from_base"] == 0
    assert results["broken"]["tokens_differ_from_base"] > 0
    for res in results.values():
        assert res["file_s_median"] > 0
        live = res["live_gpu_ms_median"]["1.0"]
        assert live is None or live > 0
        if live is not None:
            classes = res["live_class_ms_per_step"]
            assert {tag.split(":")[0] for tag in classes} == {"encoder", "decoder step"}
            assert all(ms > 0 for ms in classes.values())


@pytest.fixture
def dispatch_floor(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports shader_ab and matvec_bench from its own folder
    import dispatch_floor

    return dispatch_floor


def test_dispatch_floor_replays_each_program(dispatch_floor, models):
    out = dispatch_floor.measure(str(models["tiny", 0].source), 1.0, 2)
    programs = out["programs"]
    assert set(programs) == {"encoder", "decoder"}
    for name, r in programs.items():
        assert r["dispatches"] > 0 and r["weight_MB"] > 0, name
        assert r["engine_ms"] > 0 and r["empty_chain_ms"] > 0 and r["streaming_chain_ms"] > 0, name
        classes = r["streaming_per_class"]
        assert any("q4_matvec" in tag for tag in classes), name
        assert sum(c["calls"] for c in classes.values()) < r["dispatches"], name  # attention etc. read no weights
        assert all(c["us_each"] > 0 and c["loads"] in dispatch_floor.STREAM_LOADS for c in classes.values())
    assert out["step"]["dispatches"] == sum(r["dispatches"] for r in programs.values())
    assert out["stream_GBps"] > 0 and out["step"]["bandwidth_floor_ms"] > 0


def test_probes_keep_each_dispatch_and_stream_the_range_given(dispatch_floor, gpu):
    probes = dispatch_floor.Probes(gpu)
    shapes = [("attention", (3, 2, 1), 0), ("q4_matvec w13", (7, 1, 1), 256 * 16 * 4)]
    chain = probes.chain(shapes, {"q4_matvec w13": 4})
    assert chain[0] == (probes.empty, probes.empty_group, (3, 2, 1))
    assert chain[1][0] is probes.stream and chain[1][2] == (1, 1, 1)  # 1024 vec4s, 4 per invocation
    # The read above covers vec4s 0..1023 of the pool (zeros): a lane whose reads XOR to the magic value
    # sets sink[1]. Past the range, the value is never read; inside it, it is.
    magic = np.full(4, 0x9E3779B9, dtype=np.uint32)
    for index, read in ((1024, 0), (1022, 1)):
        gpu.queue.write_buffer(probes.sink, 0, np.zeros(4, dtype=np.uint32))
        gpu.queue.write_buffer(probes.pool, index * 16, magic)
        probes.time_ms(chain[1:])
        assert np.frombuffer(gpu.queue.read_buffer(probes.sink), dtype=np.uint32)[1] == read, index
        gpu.queue.write_buffer(probes.pool, index * 16, np.zeros(4, dtype=np.uint32))
