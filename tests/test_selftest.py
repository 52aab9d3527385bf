"""The self-test (`voxtral-desk --self-test`), run in-process; CI also builds the bundle and runs it
from there (.ci/run)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from voxtral_desk import selftest


@pytest.mark.gpu
def test_self_test_passes(capsys):
    rc = selftest.run_self_test()
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "adapter: " in out and "software adapter: " in out
    kernel_lines = [line for line in out.splitlines() if line.startswith("  ok ")]
    assert len(kernel_lines) >= 10, out
    assert "transcription: ok" in out
    assert out.rstrip().splitlines()[-1].startswith("self-test PASSED")


@pytest.mark.gpu
def test_self_test_fails_when_a_wgsl_kernel_is_wrong(tmp_path, monkeypatch, capsys):
    """A GELU that is off by a little (0.7 instead of 1/sqrt(2) inside erf) must fail the self-test."""
    from voxtral_desk.gpu import pipelines, shaders_dir

    bad = tmp_path / "shaders"
    shutil.copytree(shaders_dir(), bad)
    source = (bad / "activations.wgsl").read_text()
    assert "erf_as(x * 0.70710678118654752)" in source
    (bad / "activations.wgsl").write_text(source.replace("erf_as(x * 0.70710678118654752)", "erf_as(x * 0.7)"))
    monkeypatch.setattr(pipelines, "shaders_dir", lambda: bad)

    rc = selftest.run_self_test()
    out = capsys.readouterr().out
    assert rc == 1, out
    assert any(line.startswith("  FAIL") and "gelu" in line for line in out.splitlines()), out
    assert "kernels: FAIL" in out
    assert out.rstrip().splitlines()[-1].startswith("self-test FAILED")


@pytest.mark.gpu
def test_self_test_fails_when_the_gpu_transcript_differs(monkeypatch, capsys):
    """Kernels that pass alone but an engine that emits one wrong token id: the comparison catches it."""
    from voxtral_desk import pipeline

    real_create_engine = pipeline.create_engine

    def create_engine(model, backend="gpu", **options):
        engine = real_create_engine(model, backend, **options)
        if backend == "gpu":
            decode = engine.decode

            def wrong_decode(n):
                ids = np.array(decode(n), copy=True)
                ids[-1] = (ids[-1] + 1) % model.config.decoder.vocab_size
                return ids

            engine.decode = wrong_decode
        return engine

    monkeypatch.setattr(pipeline, "create_engine", create_engine)
    rc = selftest.run_self_test()
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "kernels: ok" in out
    assert "transcription: FAIL token ids differ" in out


def test_clip_is_deterministic_and_speech_like():
    clip = selftest.synth_clip()
    assert clip.dtype == np.float32 and len(clip) == int(selftest.CLIP_SECONDS * selftest.SAMPLE_RATE)
    assert np.array_equal(clip, selftest.synth_clip())
    assert 0.4 < np.abs(clip).max() <= 0.52
    frames = clip[: len(clip) // 1280 * 1280].reshape(-1, 1280)  # 80 ms frames
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms < 0.01).any() and (rms > 0.1).sum() > len(rms) // 2  # pauses between loud syllables


def test_clip_leaves_the_reference_clear_margins(tmp_path):
    """selftest.py promises that honest float differences cannot flip an argmax on its clip: the
    reference's best logit leads the second best by >= 0.1 at every transcript position."""
    from voxtral_desk.convert import convert_checkpoint
    from voxtral_desk.pipeline import open_session
    from voxtral_desk.testmodel import make_test_model

    make_test_model(tmp_path / "checkpoint", "tiny", selftest.MODEL_SEED)
    gguf = convert_checkpoint(tmp_path / "checkpoint", tmp_path / "q4", None)[0]
    session = open_session(gguf, "reference", trace=True)
    ids, _seconds = selftest._stream(session, selftest.synth_clip())
    logits = np.concatenate(session.engine.trace["logits"])[len(session.prompt) - 1:][: len(ids)]
    top2 = np.sort(logits, axis=1)[:, -2:]
    assert len(ids) >= 40 and len(set(ids)) >= 3
    assert (top2[:, 1] - top2[:, 0]).min() >= 0.1
