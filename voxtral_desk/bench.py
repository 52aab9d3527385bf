"""`voxtral-desk bench`: how fast an engine runs the model, measured the way users use it.

File mode is one offline transcription (feed everything, flush); live mode feeds 80 ms at a time and
times each step (encoder + adapter + one decoder token). Decoding is forced to full length (EOS does not
stop it) so runs of random-weight models are comparable. `voxtral-desk bench --profile`
adds GPU time per kernel class (timestamp queries) and CPU command-recording time per phase.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np

from .audio import FrameStream, synthetic_speech
from .models.store import resolve_model
from .pipeline import open_session
from .session import MAX_SPAN_TOKENS, StreamingSession


def nvidia_memory_used_mib() -> int | None:
    """Device memory in use according to nvidia-smi (Vulkan allocations show there, not per process)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def step_ms(seconds: list[float]) -> tuple[float, float]:
    """Median and 95th percentile of step times, in milliseconds."""
    ms = np.array(seconds) * 1000
    return round(float(np.median(ms)), 3), round(float(np.percentile(ms, 95)), 3)


def file_mode_seconds(session: StreamingSession, audio: np.ndarray) -> float:
    """Transcribe audio from a fresh start as file mode does (feed it all, then flush); wall seconds.
    The tokens are in session.tokens."""
    session.reset()
    start = time.perf_counter()
    session.feed(audio)
    session.flush()
    return time.perf_counter() - start


def next_span(frames: FrameStream, samples: np.ndarray, max_frames: int | None) -> np.ndarray:
    """Push the samples and take the next span of whole tokens' frames, at most max_frames (None: all complete)."""
    return frames.push(samples, None if max_frames is None else frames.frames_done + max_frames)


def run_bench(model_path: str, seconds: float, backend: str = "gpu", delay_ms: int | None = None,
              live_steps: int = 100, log=print, profile: bool = False, late_seconds: float = 60.0) -> dict:
    mem_before = nvidia_memory_used_mib()
    t0 = time.perf_counter()
    session = open_session(model_path, backend, delay_ms, stop_at_eos=False)
    engine = session.engine
    load_s = time.perf_counter() - t0
    log(f"engine: {engine.name}; loaded in {load_s:.2f} s")
    audio = synthetic_speech(seconds, session.audio_cfg.sampling_rate)
    result = {"engine": engine.name, "backend": backend, "audio_seconds": seconds, "delay_ms": session.delay_ms,
              "load_s": round(load_s, 3)}

    file_mode_seconds(session, audio)  # warm-up: pipelines, caches, clocks
    wall = file_mode_seconds(session, audio)
    n_generated = len(session.tokens)
    result.update(file_wall_s=round(wall, 4), file_rtf=round(wall / seconds, 5), generated_tokens=n_generated,
                  file_tokens_per_s=round(n_generated / wall, 1))
    log(f"file mode: {seconds:.1f} s of audio in {wall * 1000:.0f} ms (RTF {wall / seconds:.4f}), "
        f"{n_generated} tokens, {n_generated / wall:.0f} tokens/s effective")

    # Stage by stage, driving the engine directly: encoder, prefill, then one-token decode steps. The GPU
    # encodes the whole clip at once; the reference, whose memory grows with the square of a span, gets the
    # session's bounded spans.
    session.reset()
    engine.synchronize()
    frames = FrameStream(session.audio_cfg)
    padded = np.concatenate([audio, np.zeros(session.audio_cfg.window_size // 2, np.float32)])
    limit = None if backend == "gpu" else MAX_SPAN_TOKENS * session.audio_cfg.mel_frames_per_token
    span = next_span(frames, padded, limit)
    start = time.perf_counter()
    while len(span):
        engine.encode(span)
        span = next_span(frames, padded[:0], limit)
    engine.synchronize()
    encode_s = time.perf_counter() - start
    n_prompt = len(session.prompt)
    start = time.perf_counter()
    engine.decode(n_prompt)
    prefill_s = time.perf_counter() - start
    n_decode = engine.audio_tokens_ready
    start = time.perf_counter()
    engine.decode(n_decode)
    decode_s = time.perf_counter() - start
    audio_in_encode = frames.frames_done / session.audio_cfg.mel_frames_per_token * session.audio_cfg.token_seconds
    result.update(encoder_ms_per_audio_s=round(encode_s * 1000 / audio_in_encode, 3),
                  prefill_ms=round(prefill_s * 1000, 3), prefill_positions=n_prompt,
                  decode_tokens_per_s=round(n_decode / decode_s, 1), decode_steps=n_decode)
    log(f"encoder: {encode_s * 1000 / audio_in_encode:.2f} ms per second of audio; prefill of {n_prompt} "
        f"positions: {prefill_s * 1000:.1f} ms; decode: {n_decode / decode_s:.1f} tokens/s over {n_decode} steps")

    # Live mode: 80 ms of audio per call, each returning its token; timed at the start of a dictation
    # and, when late_seconds is longer, again over its last live_steps steps (the decoder attends to
    # everything said so far, so later steps cost more).
    session.reset()
    step = session.audio_cfg.samples_per_token
    rate = session.audio_cfg.sampling_rate
    early_s = live_steps * step / rate + 1.0
    live = synthetic_speech(max(early_s, late_seconds), rate, 1)
    latencies = []
    for i in range(0, len(live) - step + 1, step):
        start = time.perf_counter()
        got = session.feed(live[i : i + step])
        if got:
            latencies.append(time.perf_counter() - start)
    early = latencies[5: 5 + live_steps] or latencies
    median, p95 = step_ms(early)
    result.update(live_step_ms_median=median, live_step_ms_p95=p95, live_tokens_per_s=round(1000 / median, 1),
                  live_steps=len(early))
    log(f"live mode: 80 ms step in {median:.2f} ms median, {p95:.2f} ms p95 (~{1000 / median:.0f} steps/s possible)")
    if late_seconds > early_s:
        median, p95 = step_ms(latencies[-live_steps:])
        result.update(live_late_seconds=late_seconds, live_late_step_ms_median=median, live_late_step_ms_p95=p95)
        log(f"live mode after {late_seconds:.0f} s of dictation: {median:.2f} ms median, {p95:.2f} ms p95")

    if profile:
        result["profile"] = profile_engine(engine, session, audio, padded, n_prompt, log)

    gpu_bytes = getattr(engine, "gpu_memory_bytes", None)
    if gpu_bytes is not None:
        result["gpu_buffers_mib"] = round(gpu_bytes / 2**20, 1)
    mem_after = nvidia_memory_used_mib()
    if mem_before is not None and mem_after is not None:
        result["nvidia_memory_used_delta_mib"] = mem_after - mem_before
    memory = ", ".join(f"{k} {v}" for k, v in result.items() if "mib" in k)
    log(f"memory: {memory}" if memory else "memory: not reported by this engine")
    return result


def profile_engine(engine, session, audio, padded, n_prompt: int, log, live_steps: int = 20) -> dict:
    """GPU time per kernel class (timestamp queries) and CPU time per phase, GPU engine only. The
    timestamps around every dispatch add a little GPU and CPU time, so the phases are run again here
    rather than profiling the timed runs above."""
    from .gpu.program import Profiler

    kernels = getattr(engine, "kernels", None)
    if kernels is None:
        return {"skipped": "not the GPU engine"}
    try:
        prof = Profiler(engine.gpu)
    except RuntimeError as e:
        return {"skipped": str(e)}
    out = {}

    def phase(name, fn, prof=prof):
        engine.synchronize()
        prof.reset()
        kernels.profiler = prof
        start = time.perf_counter()
        try:
            fn()
            engine.synchronize()
        finally:
            kernels.profiler = None
        wall = time.perf_counter() - start
        out[name] = dict(wall_ms=round(wall * 1000, 3), **prof.summary())
        top = ", ".join(f"{k} {v['gpu_ms']:.2f}" for k, v in list(out[name]["kernels"].items())[:6])
        log(f"profile {name}: wall {wall * 1000:.1f} ms, GPU {out[name]['gpu_ms_total']:.1f} ms; top: {top}")

    phase("file", lambda: file_mode_seconds(session, audio))
    session.reset()
    engine.synchronize()
    span = FrameStream(session.audio_cfg).push(padded)
    phase("encode", lambda: engine.encode(span))
    phase("prefill", lambda: engine.decode(n_prompt))
    n = engine.audio_tokens_ready
    phase("decode", lambda: engine.decode(n))
    out["decode"]["steps"] = n

    step = session.audio_cfg.samples_per_token
    rate = session.audio_cfg.sampling_rate
    live = synthetic_speech(2.0 + live_steps * step / rate, rate, 1)
    warm = int(2.0 * rate) // step * step  # past the prompt

    def live_steps_from_warm():
        session.reset()
        session.feed(live[:warm])
        return lambda: [session.feed(live[i: i + step]) for i in range(warm, len(live) - step + 1, step)]

    # Per kernel class, then the same steps timed per whole program, without the timestamps between
    # dispatches and the GPU time they add. Both stayed within 0.01 ms between runs in jobs where
    # wall-clock step medians moved by up to 1 ms (H200): the figures to compare kernel changes by.
    phase("live", live_steps_from_warm())
    phase("live_programs", live_steps_from_warm(), Profiler(engine.gpu, per_dispatch=False))
    for name in ("live", "live_programs"):
        out[name]["steps"] = live_steps
        out[name]["gpu_ms_per_step"] = round(out[name]["gpu_ms_total"] / live_steps, 3)
    log(f"profile live: {out['live_programs']['gpu_ms_per_step']:.2f} ms of GPU time per step "
        f"({out['live']['gpu_ms_per_step']:.2f} ms with a timestamp around every dispatch)")

    # CPU cost of recording one decoder step, without timestamps and without submitting.
    program = engine.decoder.step
    program.prepare(1)
    enc = engine.gpu.device.create_command_encoder()
    start = time.perf_counter()
    for _ in range(50):
        program.record(enc, 1)
    out["cpu_record_decoder_step_ms"] = round((time.perf_counter() - start) * 1000 / 50, 3)
    out["dispatches_per_decoder_step"] = len(program.dispatches())
    log(f"CPU: recording one decoder step ({out['dispatches_per_decoder_step']} dispatches) takes "
        f"{out['cpu_record_decoder_step_ms']:.3f} ms")
    return out


def main_bench(args) -> int:
    quiet = (lambda *a, **k: None) if args.json else print
    result = run_bench(resolve_model(args.model), args.seconds, args.backend, args.delay_ms, args.live_steps, quiet,
                       args.profile, args.late_seconds)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0

