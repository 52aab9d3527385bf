"""Command line: `voxtral-desk` alone starts the app; subcommands run the same engine without a window."""
from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path

from .audio import AudioFileError
from .config import ModelFileError
from .fileio import write_atomic
from .transcript import export_names


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
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{fraction * 100:5.1f}% {elapsed:6.1f}s")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def bytes(self, done: int, total: int) -> None:
        self(done / total if total else 1.0)


class OutputError(Exception):
    """-o cannot be used as given; found before anything is transcribed."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symlinks too
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def plan_outputs(sources: list[str], output: str | None, fmt: str, overwrite: bool) -> list[Path] | None:
    """Where each source's transcript goes (None: stdout), checked before anything is transcribed: never over
    an input, never over an existing file without `overwrite`. Raises OutputError. A folder that -o names
    (by a trailing separator, or by giving several inputs) is created."""
    if output is None:
        return None
    out = Path(output)
    if out.is_dir() or output.endswith(tuple(filter(None, (os.sep, os.altsep)))) or len(sources) > 1:
        if out.exists() and not out.is_dir():
            raise OutputError(f"-o {output}: is a file, not a folder")
        targets = [out / name for name in export_names(sources, fmt)]
    else:
        if not out.parent.is_dir():
            what = f"{out.parent} is not a folder" if out.parent.exists() else f"the folder {out.parent} does not exist"
            raise OutputError(f"cannot write {out}: {what}")
        targets = [out]
    for target in targets:
        if any(_same_file(target, Path(source)) for source in sources):
            raise OutputError(f"-o {target} is one of the audio files: choose another output name")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputError(f"these files exist and would be replaced: {', '.join(existing)} (add --overwrite to "
                          "replace them)")
    if out not in targets:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the folder {out}: {e.strerror or e}") from None
    return targets


def _write_problem(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "the disk is full"
    return e.strerror or str(e)


def cmd_transcribe(args) -> int:
    from .models.store import resolve_model
    from .pipeline import open_session, transcribe_file

    try:
        targets = plan_outputs(args.audio, args.output, args.format, args.overwrite)
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    session = open_session(resolve_model(args.model), args.backend, args.delay_ms)
    if args.backend == "gpu":
        print(f"engine: {session.engine.name}", file=sys.stderr)
    failures = 0
    for i, audio in enumerate(args.audio):
        try:
            transcript = transcribe_file(session, audio, ProgressBar(Path(audio).name, args.progress))
        except AudioFileError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        if n := transcript.meta.get("nonfinite_samples"):
            what = "1 sample was not a number (NaN/Inf) and was" if n == 1 else \
                f"{n} samples were not numbers (NaN/Inf) and were"
            print(f"warning: {audio}: {what} replaced by silence", file=sys.stderr)
        text = transcript.render(args.format)
        if targets is None:
            sys.stdout.write(text)
            continue
        try:
            write_atomic(targets[i], text)
        except OSError as e:
            print(f"error: cannot write {targets[i]}: {_write_problem(e)}", file=sys.stderr)
            failures += 1
            continue
        print(f"wrote {targets[i]}", file=sys.stderr)
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

    p = argparse.ArgumentParser(
        prog="voxtral-desk", usage="%(prog)s [-h] [--self-test] [COMMAND ... | FILE ...]",
        description="Local streaming speech-to-text with Voxtral Realtime. With no arguments, voxtral-desk opens "
                    "the app; with audio files or folders (and no command), it opens the app with them in its file "
                    "queue. The commands below run the same engine without a window.")
    p.add_argument("--self-test", action="store_true",
                   help="check the GPU engine against numpy on this machine and exit (status 0: all agree)")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    from .models.cli import register as register_models

    register_models(sub)

    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="progress bar on stderr (default: when stderr is a terminal)")

    t = sub.add_parser("transcribe", parents=[progress], help="transcribe audio files")
    t.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3; any rate or channels)")
    t.add_argument("--model", help="GGUF file, shard folder, or original checkpoint folder "
                                   "(default: the model manager's default)")
    t.add_argument("--backend", choices=BACKENDS, default="gpu")
    t.add_argument("--delay-ms", type=int, default=None,
                   help="transcription delay, 80-2400 ms, a multiple of 80 (default: the model's, 480): longer is "
                        "more accurate")
    t.add_argument("--format", choices=FORMATS, default="txt")
    t.add_argument("-o", "--output", help="output file, or folder (made if missing) when it ends with a separator "
                                          "or several inputs are given (default: stdout)")
    t.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
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

    m = sub.add_parser("make-test-model", parents=[progress],
                       help="write a random-weight model for tests and benchmarks")
    m.add_argument("out")
    m.add_argument("--preset", default="tiny", choices=["tiny", "tiny-wide", "full"])
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--dtype", default="bf16", choices=["bf16", "f32"], help="safetensors dtype (tiny presets)")
    m.set_defaults(func=cmd_make_test_model)

    s = sub.add_parser("self-test", help="check the GPU engine against numpy on this machine (same as --self-test)")
    s.set_defaults(func=cmd_self_test)
    return p


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # `voxtral-desk FILE...` is what a file manager runs for "Open with": the app, with those files queued.
    if argv and not argv[0].startswith("-") and argv[0] not in _commands(parser) and all(map(os.path.exists, argv)):
        from .app.main import run_app

        return run_app(files=[os.path.abspath(a) for a in argv])
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
