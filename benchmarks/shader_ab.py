"""A/B of kernel versions in the whole engine: one engine per folder of WGSL pieces (the package's
`shaders/` as "base", and each --variant NAME=FOLDER, e.g. a copy of `shaders/` with one kernel edited),
all on one GPU in one process, measured in alternating rounds so that clock and temperature drift reach
every variant alike.

    python benchmarks/shader_ab.py --model /tmp/full --variant mine=/tmp/shaders_mine [--rounds 4] [--json]

Per variant: file-mode wall time for the clip (decoding forced to full length) and how many of its
tokens differ from base's; the GPU time of a live step per whole program (timestamp queries, steadier
than wall-clock time) after each --at seconds of dictation. A variant that computes something else
shows up as differing tokens; kernel checks (`voxtral-desk --self-test`) say where.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from voxtral_desk.audio import synthetic_speech
from voxtral_desk.bench import file_mode_seconds
from voxtral_desk.gpu.program import Profiler
from voxtral_desk.loader import load_model
from voxtral_desk.pipeline import open_session
from voxtral_desk.session import StreamingSession

WARM_STEPS = 5  # live steps run before the timed ones (pipelines, caches)


def live_profile(session: StreamingSession, live: np.ndarray, at_s: float, steps: int,
                 per_dispatch: bool = False) -> dict | None:
    """Profiler.summary of `steps` live 80 ms steps after at_s seconds of dictation (fed in one chunk,
    then WARM_STEPS steps), per whole program or per dispatch. None where the device has no timestamp
    queries."""
    engine = session.engine
    try:
        prof = Profiler(engine.gpu, per_dispatch=per_dispatch)
    except RuntimeError:
        return None
    step = session.audio_cfg.samples_per_token
    warm = int(at_s * session.audio_cfg.sampling_rate) // step * step
    session.reset()
    session.feed(live[:warm])
    for i in range(WARM_STEPS):
        session.feed(live[warm + i * step: warm + (i + 1) * step])
    start = warm + WARM_STEPS * step
    engine.synchronize()
    engine.kernels.profiler = prof
    try:
        for i in range(steps):
            session.feed(live[start + i * step: start + (i + 1) * step])
        engine.synchronize()
    finally:
        engine.kernels.profiler = None
    return prof.summary()


def live_gpu_ms(session: StreamingSession, live: np.ndarray, at_s: float, steps: int) -> float | None:
    """GPU time per live step (whole programs) after at_s seconds of dictation; None as live_profile."""
    summary = live_profile(session, live, at_s, steps)
    return None if summary is None else summary["gpu_ms_total"] / steps


def run(model_path: str, variants: dict[str, Path | None], seconds: float, rounds: int, at: list[float],
        live_steps: int, classes: bool = False, log=print) -> dict:
    """variants: name -> folder of WGSL pieces (None: the package's); the first is the baseline whose
    file-mode tokens the others are compared with. classes: also each variant's GPU time per live step
    by kernel class (stamped per dispatch, after the first --at), once after the rounds."""
    model = load_model(model_path)
    sessions = {name: open_session(model, "gpu", stop_at_eos=False, shaders=folder)
                for name, folder in variants.items()}
    rate = model.config.audio.sampling_rate
    audio = synthetic_speech(seconds, rate)
    step_s = model.config.audio.samples_per_token / rate
    live = synthetic_speech(max(at) + (WARM_STEPS + live_steps) * step_s + 1.0, rate, 1)
    results = {name: {"folder": str(folder or "shaders/"), "file_s": [], "tokens_differ_from_base": 0,
                      "live_gpu_ms_per_step": {str(a): [] for a in at}} for name, folder in variants.items()}
    for session in sessions.values():
        file_mode_seconds(session, audio)  # warm-up
    base_tokens = None
    for r in range(rounds):
        for name, session in sessions.items():
            wall = file_mode_seconds(session, audio)
            tokens = [t.id for t in session.tokens]
            if base_tokens is None:
                base_tokens = tokens
            res = results[name]
            res["file_s"].append(round(wall, 4))
            res["tokens_differ_from_base"] = max(len(tokens), len(base_tokens)) - sum(
                a == b for a, b in zip(tokens, base_tokens, strict=False))
            for a in at:
                ms = live_gpu_ms(session, live, a, live_steps)
                res["live_gpu_ms_per_step"][str(a)].append(None if ms is None else round(ms, 4))
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{name} {res['file_s'][-1]:.4f} s" for name, res in results.items()))
    for res in results.values():
        res["file_s_median"] = float(np.median(res["file_s"]))
        res["live_gpu_ms_median"] = {a: (float(np.median(v)) if None not in v else None)
                                     for a, v in res["live_gpu_ms_per_step"].items()}
    if classes:
        for name, session in sessions.items():
            summary = live_profile(session, live, at[0], live_steps, per_dispatch=True)
            if summary is not None:
                results[name]["live_class_ms_per_step"] = {
                    tag: round(entry["gpu_ms"] / live_steps, 4) for tag, entry in summary["kernels"].items()}
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FOLDER",
                   help="a folder of WGSL pieces (all of them, as in shaders/) to compare with base")
    p.add_argument("--seconds", type=float, default=16.0, help="clip length for file mode")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--at", type=float, action="append", help="seconds of dictation before live steps are "
                   "timed (repeatable; default 2 and 60)")
    p.add_argument("--live-steps", type=int, default=20)
    p.add_argument("--classes", action="store_true", help="also GPU time per live step by kernel class")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    variants: dict[str, Path | None] = {"base": None}
    for spec in args.variant:
        name, sep, folder = spec.partition("=")
        if not sep or not name or name in variants:
            p.error(f"--variant takes NAME=FOLDER with a new name, got {spec!r}")
        if not (Path(folder) / "q4_matvec.wgsl").is_file():
            p.error(f"{folder} is not a folder of the kernels' WGSL pieces (no q4_matvec.wgsl)")
        variants[name] = Path(folder).resolve()
    results = run(args.model, variants, args.seconds, args.rounds, args.at or [2.0, 60.0], args.live_steps,
                  args.classes, log=(lambda *a: None) if args.json else print)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for name, res in results.items():
            live = ", ".join(f"{ms:.3f} ms after {a} s" for a, ms in res["live_gpu_ms_median"].items()
                             if ms is not None)
            print(f"{name}: file mode {res['file_s_median']:.4f} s, {res['tokens_differ_from_base']} tokens "
                  f"differ from base; live step GPU time {live or 'not measured (no timestamp queries)'}")
            for tag, ms in res.get("live_class_ms_per_step", {}).items():
                print(f"    {tag}: {ms:.4f} ms per live step (stamped per dispatch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
