"""Command line: `voxtral-desk` alone starts the app; subcommands run the same engine without a window."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .audio import AudioFileError
from .config import ModelFileError


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        if not self.enabled or (fraction - self._last < 0.005 and fraction < 1.0):
            return
        self._last = fraction
        width = 30
        filled = int(width * fraction)
        elapsed = time.monotonic() - self.start
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {elapsed:6.1f}s")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def bytes(self, done: int, total: int) -> None:
        self(done / total if total else 1.0)


def resolve_model(path: str | None) -> str:
    """--model, or the model manager's default model."""
    if path:
        return path
    from .models.store import ModelStore

    model = ModelStore().default()
    if model is None:
        raise ModelFileError("no model installed: run `voxtral-desk models download voxtral-mini-4b-realtime-q4`, "
                             "`voxtral-desk models import PATH`, or pass --model PATH")
    return str(model.path)


def cmd_transcribe(args) -> int:
    from .pipeline import open_session, transcribe_file

    if args.output and len(args.audio) > 1 and not Path(args.output).is_dir():
        print("error: with several audio files, -o must name an existing folder", file=sys.stderr)
        return 2
    session = open_session(resolve_model(args.model), args.backend, args.delay_ms)
    if args.backend == "gpu":
        print(f"engine: {session.engine.name}", file=sys.stderr)
    failures = 0
    for audio in args.audio:
        try:
            transcript = transcribe_file(session, audio, ProgressBar(Path(audio).name, args.progress))
        except AudioFileError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        text = transcript.render(args.format)
        if args.output is None:
            sys.stdout.write(text)
        else:
            out = Path(args.output)
            if out.is_dir():
                out = out / f"{Path(audio).stem}.{args.format}"
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out}", file=sys.stderr)
    return 1 if failures else 0


def cmd_convert(args) -> int:
    from .convert import convert_checkpoint

    if args.quant != "q4_0":
        print("error: only --quant q4_0 is supported", file=sys.stderr)
        return 2
    files = convert_checkpoint(Path(args.src), Path(args.out), args.shard_size_mb * 2**20 or None,
                               ProgressBar("converting", args.progress).bytes)
    for f in files:
        print(f"wrote {f} ({f.stat().st_size / 2**20:.1f} MiB)")
    return 0


def cmd_bench(args) -> int:
    from .bench import main_bench

    return main_bench(args)


def cmd_make_test_model(args) -> int:
    from .testmodel import make_test_model

    files = make_test_model(Path(args.out), args.preset, args.seed, args.dtype.upper(),
                            ProgressBar("writing", args.progress).bytes)
    for f in files:
        print(f"wrote {f}")
    return 0


def cmd_self_test(args) -> int:
    from .selftest import run_self_test

    return run_self_test()


def build_parser() -> argparse.ArgumentParser:
    from .pipeline import BACKENDS
    from .transcript import FORMATS

    p = argparse.ArgumentParser(prog="voxtral-desk", description="Local streaming speech-to-text with Voxtral Realtime.")
    p.add_argument("--self-test", action="store_true",
                   help="check the GPU engine against numpy on this machine and exit (status 0: all agree)")
    sub = p.add_subparsers(dest="command")
    from .models.cli import register as register_models

    register_models(sub)

    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="progress bar on stderr (default: when stderr is a terminal)")

    t = sub.add_parser("transcribe", parents=[progress], help="transcribe audio files")
    t.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3; any rate or channels)")
    t.add_argument("--model", help="GGUF file, shard folder, or original checkpoint folder (default: the model manager's default)")
    t.add_argument("--backend", choices=BACKENDS, default="gpu")
    t.add_argument("--delay-ms", type=int, default=None, help="transcription delay, a multiple of 80 (default: the model's, 480)")
    t.add_argument("--format", choices=FORMATS, default="txt")
    t.add_argument("-o", "--output", help="output file, or folder for several inputs (default: stdout)")
    t.set_defaults(func=cmd_transcribe)

    c = sub.add_parser("convert", parents=[progress], help="convert consolidated.safetensors to Q4_0 GGUF shards")
    c.add_argument("src", help="folder with consolidated.safetensors, params.json, tekken.json")
    c.add_argument("out", help="output folder (or .gguf file name)")
    c.add_argument("--quant", default="q4_0", help="quantisation (q4_0)")
    c.add_argument("--shard-size-mb", type=int, default=512, help="largest shard in MiB; 0 for one file")
    c.set_defaults(func=cmd_convert)

    b = sub.add_parser("bench", help="measure engine speed: load, encoder, prefill, decode, live steps, RTF")
    b.add_argument("--model", help="model to measure (default: the model manager's default)")
    b.add_argument("--seconds", type=float, default=16.0, help="length of the synthetic clip")
    b.add_argument("--backend", choices=BACKENDS, default="gpu")
    b.add_argument("--delay-ms", type=int, default=None)
    b.add_argument("--live-steps", type=int, default=100, help="80 ms steps timed in live mode")
    b.add_argument("--late-seconds", type=float, default=60.0,
                   help="dictation length after which live steps are timed again (0: only at the start)")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.add_argument("--profile", action="store_true",
                   help="also GPU time per kernel class (timestamp queries) and CPU command-recording time")
    b.set_defaults(func=cmd_bench)

    m = sub.add_parser("make-test-model", parents=[progress], help="write a random-weight model for tests and benchmarks")
    m.add_argument("out")
    m.add_argument("--preset", default="tiny", choices=["tiny", "tiny-wide", "full"])
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--dtype", default="bf16", choices=["bf16", "f32"], help="safetensors dtype (tiny presets)")
    m.set_defaults(func=cmd_make_test_model)

    s = sub.add_parser("self-test", help="check the GPU engine against numpy on this machine (same as --self-test)")
    s.set_defaults(func=cmd_self_test)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        return cmd_self_test(args)
    if args.command is None:
        from .app.main import run_app

        return run_app()
    try:
        return args.func(args)
    except (ModelFileError, AudioFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
