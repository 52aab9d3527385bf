"""`voxtral-desk bench --profile` on the GPU engine: every phase reports GPU time per kernel class, and
live steps also per whole program."""
import pytest

from voxtral_desk.bench import run_bench


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
