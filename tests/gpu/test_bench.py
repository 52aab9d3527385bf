"""`voxtral-desk bench --profile` on the GPU engine: every phase reports GPU time per kernel class, and
live steps also per whole program; benchmarks/shader_ab.py runs each engine on its own WGSL."""
import importlib.util
import shutil
from pathlib import Path

import pytest

from voxtral_desk.bench import run_bench
from voxtral_desk.gpu import shaders_dir


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
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "shader_ab.py"
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
