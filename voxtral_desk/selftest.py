"""`voxtral-desk --self-test`: prove that this installation can run the model correctly on this machine.

1. open the GPU device the engine uses and say which adapter it is (and whether a software one, e.g.
   lavapipe);
2. run every WGSL kernel against its numpy version (voxtral_desk.gpu.checks);
3. make the tiny random test model, synthesise a short speech-like clip, stream it through the GPU engine
   and through the numpy reference, and require identical token ids.

Exit status 0 only if all of that agrees. Nothing is downloaded and nothing outside a temporary folder is
written, so it runs the same from a source checkout and from the packaged bundle.
"""
from __future__ import annotations

import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
CLIP_SECONDS = 3.2  # long enough for both attention windows of the tiny model to slide
CHUNK_SECONDS = 0.4  # fed in chunks like the microphone does, so the streaming path is what is tested
MODEL_SEED = 0
# The noise seed was picked so that along this clip the reference's best logit leads the second best by
# at least 0.12 (logits are of order 4): honest float32 differences between the GPU and numpy cannot
# flip an argmax. Small errors inside one kernel are the kernel checks' job (a GELU off by 1e-4 fails
# them but changes no token of the tiny model); this comparison catches an engine that puts correct
# kernels together wrongly (positions, caches, windows, streaming).
CLIP_SEED = 1

# Formants (Hz) of the vowels the clip glides through: /a/, /i/, /u/, /e/.
VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]


def synth_clip(seconds: float = CLIP_SECONDS, rate: int = SAMPLE_RATE, seed: int = CLIP_SEED) -> np.ndarray:
    """A deterministic vowel-like signal: a gliding glottal pitch, harmonics shaped by the formants of one
    vowel per syllable, a syllable envelope with short pauses, and a little noise from a fixed seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 135.0 + 20.0 * np.sin(2 * np.pi * 0.6 * t) + 8.0 * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    syllable = 0.4  # seconds per syllable, of which the last 0.08 s is silence
    index = (t // syllable).astype(int)
    within = t - index * syllable
    voiced = within < syllable - 0.08
    envelope = np.where(voiced, np.sin(np.pi * np.clip(within / (syllable - 0.08), 0, 1)) ** 0.7, 0.0)
    formants = np.array(VOWELS, dtype=np.float64)[index % len(VOWELS)]  # [n, 3]
    signal = np.zeros(n)
    for k in range(1, 30):
        freq = k * f0
        gain = sum(np.exp(-0.5 * ((freq - formants[:, j]) / 90.0) ** 2) / (j + 1) for j in range(3))
        signal += (gain + 0.02) / k**0.5 * np.sin(k * phase)
    signal *= envelope
    signal /= np.abs(signal).max()
    signal = 0.5 * signal + 0.003 * rng.standard_normal(n)
    return signal.astype(np.float32)


def _stream(session, clip: np.ndarray) -> tuple[list[int], float]:
    start = time.perf_counter()
    session.reset()
    step = int(CHUNK_SECONDS * SAMPLE_RATE)
    for i in range(0, len(clip), step):
        session.feed(clip[i : i + step])
    session.flush()
    return [t.id for t in session.tokens], time.perf_counter() - start


def check_adapter() -> bool:
    """Open the device the engine and the kernel checks share (the best adapter there is)."""
    from .gpu.device import GPUUnavailableError, default_device

    try:
        gpu = default_device()
    except GPUUnavailableError as e:
        print(f"adapter: FAIL {e}")
        print("  (Linux: install libvulkan1 and a Vulkan driver; mesa-vulkan-drivers is a software fallback)")
        return False
    print(f"adapter: {gpu.adapter_summary}")
    print(f"  driver: {gpu.info.get('description') or '?'}; software adapter: {'yes' if gpu.is_software else 'no'}")
    return True


def check_kernels() -> bool:
    from .gpu.checks import run_kernel_checks

    start = time.perf_counter()
    checks = run_kernel_checks()
    for c in checks:
        print(f"  {c}")  # "ok  <kernel and case>: max abs ..., max rel ..." or "FAIL ..."
    failed = [c.name for c in checks if not c.passed]
    ok = bool(checks) and not failed
    summary = f"{len(checks) - len(failed)}/{len(checks)} agree with numpy" if checks else "no kernels were checked"
    print(f"kernels: {'ok' if ok else 'FAIL'} {summary} ({time.perf_counter() - start:.1f} s)")
    return ok


def check_transcription() -> bool:
    from .convert import convert_checkpoint
    from .pipeline import open_session
    from .testmodel import make_test_model

    clip = synth_clip()
    with tempfile.TemporaryDirectory(prefix="voxtral-selftest-") as tmp:
        # Both engines read the same Q4_0 GGUF, the format users run (the GPU engine would quantise an
        # original checkpoint at load time, the reference would not).
        make_test_model(Path(tmp) / "checkpoint", "tiny", MODEL_SEED)
        gguf = convert_checkpoint(Path(tmp) / "checkpoint", Path(tmp) / "q4", None)[0]
        print(f"model: tiny random test model (seed {MODEL_SEED}) as Q4_0 GGUF; "
              f"clip: {CLIP_SECONDS} s synthetic vowels")
        gpu = open_session(gguf, "gpu")
        print(f"engine: {gpu.engine.name}")
        gpu_ids, gpu_s = _stream(gpu, clip)
        ref = open_session(gguf, "reference", trace=True, kv_dtype=gpu.engine.kv_dtype)
        ref_ids, ref_s = _stream(ref, clip)
    # Top-2 logit margins of the reference at the positions that produced the transcript.
    logits = np.concatenate(ref.engine.trace["logits"])[len(ref.prompt) - 1 :][: len(ref_ids)]
    top2 = np.sort(logits, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    print(f"  gpu:       {len(gpu_ids)} tokens in {gpu_s:.2f} s, text {gpu.text!r}")
    print(f"  reference: {len(ref_ids)} tokens in {ref_s:.2f} s, text {ref.text!r}, "
          f"smallest top-2 logit margin {margins.min(initial=np.inf):.3f}")
    if not ref_ids:
        print(f"transcription: FAIL the reference produced no tokens for the {CLIP_SECONDS} s clip")
        return False
    if gpu_ids != ref_ids:
        first = next((i for i, (a, b) in enumerate(zip(gpu_ids, ref_ids, strict=False)) if a != b),
                     min(len(gpu_ids), len(ref_ids)))
        margin = f", reference margin there {margins[first]:.3f}" if first < len(margins) else ""
        print(f"transcription: FAIL token ids differ from token {first} "
              f"(gpu {gpu_ids[first:first + 5]}, reference {ref_ids[first:first + 5]}{margin})")
        return False
    print(f"transcription: ok {len(ref_ids)} identical token ids for a {CLIP_SECONDS} s clip")
    return True


def run_self_test() -> int:
    from . import __version__

    frozen = " (packaged)" if getattr(sys, "frozen", False) else ""
    print(f"Voxtral Desk {__version__}{frozen} self-test on {platform.system()} {platform.machine()}, "
          f"Python {platform.python_version()}")
    results = {}
    for name, check in (("adapter", check_adapter), ("kernels", check_kernels),
                        ("transcription", check_transcription)):
        try:
            results[name] = check()
        except Exception:  # a crash is a failure to report, not a reason to skip the remaining checks
            traceback.print_exc(file=sys.stdout)
            print(f"{name}: FAIL (exception above)")
            results[name] = False
        if name == "adapter" and not results[name]:
            break  # without an adapter nothing else can run
    _report_microphone_library()
    ok = len(results) == 3 and all(results.values())
    summary = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in results.items())
    print(f"self-test {'PASSED' if ok else 'FAILED'}: " + summary)
    return 0 if ok else 1


def _report_microphone_library() -> None:
    """Informational: whether PortAudio (the microphone library) loads. No microphone is needed for the
    self-test, so this never fails it."""
    try:
        import sounddevice

        print(f"microphone library: {sounddevice.get_portaudio_version()[1]}")
    except (OSError, ImportError) as e:
        print(f"microphone library: not found ({e}); dictation from the microphone needs PortAudio "
              "(libportaudio2 on Debian/Ubuntu)")
