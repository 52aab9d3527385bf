"""The floor under a live step on this GPU and stack, next to the engine's live step.

A live step is the encoder's program for one token and one decoder step: a chain of a few hundred
dispatches, each waiting for the one before (wgpu puts a barrier between dispatches that share a
read-write buffer, and a Vulkan barrier waits for all earlier work). This replays that chain, the same
dispatches in the same order, with the engine's kernels replaced by probes (shaders/dispatch_probes.wgsl):

- empty chain: each dispatch, on the engine's grid (of workgroups of 256, as most of its kernels have),
  does nothing but one store: the chain's own cost;
- streaming chain: each dispatch that reads weights instead reads as many bytes with a plain streaming
  read (from a pool far larger than the L2 cache, so they come from memory; on the grid that was
  fastest for its kernel class), the others stay empty: the step if every matrix kernel read its
  weights as fast as a plain read and all else were free;
- bandwidth floor: the step's weight bytes at the rate of one long streaming read of the pool;
- per kernel class that reads weights: its streaming reads alone, chained, in microseconds per dispatch
  and GB/s (what a plain read of each matrix reaches in the chain, next to bench --profile's figures).

Each chain is one compute pass, timed by timestamps at its ends, as the engine's programs are by
`bench --profile` (GPU time per whole program). The engine's live step is timed the same way, after
--at seconds of dictation.

    python benchmarks/dispatch_floor.py --model /tmp/full [--at 2] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import wgpu

from matvec_bench import chain_ms
from shader_ab import WARM_STEPS, live_profile
from voxtral_desk.audio import synthetic_speech
from voxtral_desk.gpu import shaders_dir
from voxtral_desk.gpu.pipelines import WORKGROUP, shader_module
from voxtral_desk.gpu.program import MAX_GROUPS, PARAM_SLOT, Profiler, empty
from voxtral_desk.loader import load_model
from voxtral_desk.pipeline import open_session

POOL_BYTES = 1 << 30  # streamed ranges cycle through it: about 20 times an H100's 50 MB of L2
STREAM_LOADS = (1, 2, 4, 8, 16, 32, 64)  # vec4s per invocation of a streaming read tried (its grid follows)
REPEATS = 20  # timed runs of each chain (after WARM_RUNS); medians reported
WARM_RUNS = 3


class Probes:
    """The probe kernels, a pool to stream from, and chains of (pipeline, bind group, grid)."""

    def __init__(self, gpu):
        self.gpu = gpu
        device = gpu.device
        code = (shaders_dir() / "dispatch_probes.wgsl").read_text()
        module = shader_module(device, "dispatch probes", code, runtime_checks=False)
        self.empty, self.stream = (
            device.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": entry})
            for entry in ("empty", "stream"))
        self.sink = empty(gpu, 16, "probe sink")
        # Zeros: the values read do not matter.
        self.pool = empty(gpu, min(POOL_BYTES, gpu.max_binding_size) // 16 * 16, "probe pool")
        self.empty_group = device.create_bind_group(layout=self.empty.get_bind_group_layout(0), entries=[
            {"binding": 0, "resource": {"buffer": self.sink, "offset": 0, "size": 16}}])
        self._first = 0  # next vec4 of the pool to stream from

    def stream_dispatch(self, nbytes: int, loads: int) -> tuple:
        """A streaming read of nbytes, `loads` vec4s per invocation (the grid follows), from where the
        last one ended (wrapping around the pool)."""
        count = -(-nbytes // 16)
        pool_vec4s = self.pool.size // 16
        if count > pool_vec4s:
            raise ValueError(f"a dispatch reads {nbytes} bytes, more than the {self.pool.size}-byte pool")
        if self._first + count > pool_vec4s:
            self._first = 0
        params = self.gpu.device.create_buffer_with_data(
            data=np.array([self._first, count] + [0] * (PARAM_SLOT // 4 - 2), dtype=np.uint32),
            usage=wgpu.BufferUsage.UNIFORM)
        self._first += count
        group = self.gpu.device.create_bind_group(layout=self.stream.get_bind_group_layout(0), entries=[
            {"binding": 0, "resource": {"buffer": self.sink, "offset": 0, "size": 16}},
            {"binding": 1, "resource": {"buffer": self.pool, "offset": 0, "size": self.pool.size}},
            {"binding": 2, "resource": {"buffer": params, "offset": 0, "size": PARAM_SLOT}}])
        return self.stream, group, (min(-(-count // (WORKGROUP * loads)), MAX_GROUPS), 1, 1)

    def fastest_stream(self, sizes: list[int]) -> tuple[int, float]:
        """(vec4s per invocation, milliseconds) of the fastest chain of streaming reads of these sizes
        among STREAM_LOADS: the best grid depends on the size and the GPU."""
        timed = [(loads, self.time_ms([self.stream_dispatch(n, loads) for n in sizes])) for loads in STREAM_LOADS]
        return min(timed, key=lambda t: t[1])

    def chain(self, shapes: list[tuple[str, tuple, int]], loads: dict[str, int] | None = None) -> list[tuple]:
        """One probe per dispatch of `shapes` (Program.dispatch_shapes): empty on the dispatch's grid, or,
        given loads (vec4s per invocation by kernel class), a streaming read of its weight bytes where
        it reads any."""
        return [self.stream_dispatch(nbytes, loads[tag]) if loads and nbytes else (self.empty, self.empty_group, grid)
                for tag, grid, nbytes in shapes]

    def time_ms(self, chain: list[tuple]) -> float:
        """Median GPU milliseconds of the chain in one compute pass."""
        return statistics.median(chain_ms(self.gpu, chain, WARM_RUNS + REPEATS)[WARM_RUNS:])


def streaming_per_class(probes: Probes, shapes: list[tuple[str, tuple, int]]) -> dict:
    """For each kernel class that reads weights: its dispatches' streaming reads alone, as one chain, on
    the fastest grid: microseconds per dispatch, the effective rate (the class's weight bytes over that
    time) and the vec4s per invocation that gave it."""
    classes: dict[str, list[int]] = {}
    for tag, _, nbytes in shapes:
        if nbytes:
            classes.setdefault(tag, []).append(nbytes)
    out = {}
    for tag, sizes in classes.items():
        loads, ms = probes.fastest_stream(sizes)
        out[tag] = {"calls": len(sizes), "MB_each": round(sum(sizes) / len(sizes) / 1e6, 2),
                    "us_each": round(1000 * ms / len(sizes), 2), "GBps": round(sum(sizes) / ms / 1e6, 1),
                    "loads": loads}
    return out


def measure(model_path: str, at_s: float, live_steps: int) -> dict:
    """The figures above for the model's live step after at_s seconds of dictation (the engine's own
    GPU time per whole program over live_steps steps)."""
    model = load_model(model_path)
    session = open_session(model, "gpu", stop_at_eos=False)
    engine = session.engine
    if not all(f in engine.gpu.device.features for f in Profiler.FEATURES):
        raise SystemExit(f"{engine.gpu.name} has no timestamp queries inside passes: nothing can be timed")
    rate = model.config.audio.sampling_rate
    step_s = model.config.audio.samples_per_token / rate
    live = synthetic_speech(at_s + (WARM_STEPS + live_steps) * step_s + 1.0, rate, 1)
    profile = live_profile(session, live, at_s, live_steps)
    probes = Probes(engine.gpu)
    programs = {"encoder": (engine.encoder.program, engine.encoder.frames_per_token),
                "decoder": (engine.decoder.step, 1)}
    out = {"device": engine.gpu.name, "at_s": at_s, "programs": {}}
    for name, (program, m) in programs.items():
        program.prepare(m)  # the live step's row count (it already is, after the live steps)
        shapes = program.dispatch_shapes()
        engine_ms = profile["kernels"][f"{program.label}: whole program"]["gpu_ms"] / live_steps
        empty_ms = probes.time_ms(probes.chain(shapes))
        per_class = streaming_per_class(probes, shapes)
        streaming_ms = probes.time_ms(probes.chain(shapes, {tag: c["loads"] for tag, c in per_class.items()}))
        out["programs"][name] = {
            "dispatches": len(shapes),
            "weight_MB": round(sum(nbytes for _, _, nbytes in shapes) / 1e6, 1),
            "engine_ms": round(engine_ms, 3),
            "empty_chain_ms": round(empty_ms, 3),
            "empty_us_per_dispatch": round(1000 * empty_ms / len(shapes), 2),
            "streaming_chain_ms": round(streaming_ms, 3),
            "streaming_per_class": per_class,
        }
    _, pool_ms = probes.fastest_stream([probes.pool.size])
    gbps = probes.pool.size / pool_ms / 1e6
    out["stream_GBps"] = round(gbps, 1)
    parts = out["programs"].values()
    out["step"] = {key: round(sum(p[key] for p in parts), 3)
                   for key in ("dispatches", "weight_MB", "engine_ms", "empty_chain_ms", "streaming_chain_ms")}
    out["step"]["bandwidth_floor_ms"] = round(out["step"]["weight_MB"] / gbps, 3)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--at", type=float, default=2.0, help="seconds of dictation before the live steps are timed")
    p.add_argument("--live-steps", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = measure(args.model, args.at, args.live_steps)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{out['device']}: live step after {out['at_s']} s; "
          f"one streaming read of the pool: {out['stream_GBps']} GB/s")
    print(f"{'':10}{'dispatches':>11}{'weight MB':>11}{'engine ms':>11}{'empty chain':>13}{'streaming':>11}")
    for name, r in [*out["programs"].items(), ("step", out["step"])]:
        print(f"{name:10}{r['dispatches']:>11}{r['weight_MB']:>11}{r['engine_ms']:>11}{r['empty_chain_ms']:>13}"
              f"{r['streaming_chain_ms']:>11}")
    print(f"empty dispatches: {out['programs']['decoder']['empty_us_per_dispatch']} us each in the decoder's chain; "
          f"the step's weights at the streaming rate: {out['step']['bandwidth_floor_ms']} ms")
    print("streaming reads of one kernel class alone, chained:")
    for name, r in out["programs"].items():
        for tag, c in r["streaming_per_class"].items():
            print(f"  {name} {tag}: {c['calls']} x {c['MB_each']} MB, {c['us_each']} us each, {c['GBps']} GB/s "
                  f"({c['loads']} vec4s per invocation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
