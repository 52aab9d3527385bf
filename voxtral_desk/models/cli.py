"""`voxtral-desk models list | download NAME | verify [NAME] | repair NAME | import PATH | remove NAME`.

register(subparsers) adds the subcommand to the main CLI; `python -m voxtral_desk.models.cli` runs it
on its own. Results go to stdout, progress (with speed and time left) and errors to stderr. The store's
messages are worded for the app and the command line alike; the command lines that help are added here."""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from ..config import ModelFileError
from ..paths import MODELS_DIR_ENV, default_models_dir
from .catalog import load_catalog
from .errors import Cancelled, ModelManagerError
from .jobs import Control, Progress, human_bytes
from .store import InstalledModel, ModelStore

CLI = "voxtral-desk models"


def remedy_hint(remedy: str, name: str) -> str:
    """The command line that does what an error's `remedy` asks for."""
    return {
        "import": f"to install a model file you already have: {CLI} import PATH",
        "folder": f"to use another models folder: {CLI} --dir FOLDER ... (or set {MODELS_DIR_ENV})",
        "remove": f"to delete it: {CLI} remove {name}",
        "rename": f"to import under another name: add --name NAME; to delete the installed one: {CLI} remove {name}",
        "repair": f"to fetch it again: {CLI} repair {name}",
    }.get(remedy, "")


def repair_hint(m: InstalledModel) -> str:
    """What to do about a damaged model, as a command."""
    return f"'{CLI} repair {m.name}' {m.repair_does}" if m.repairable else m.repair


class ProgressPrinter:
    """One self-updating line on a terminal; elsewhere (logs, pipes) a line every few seconds."""

    def __init__(self, enabled: bool | None, stream=None, every: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.every = every
        self._key: tuple[str, str] | None = None
        self._last = 0.0
        self._width = 0

    def __call__(self, p: Progress) -> None:
        if not self.enabled or p.phase == "done":
            return
        line = p.describe()
        key = (p.phase, p.file)
        now = time.monotonic()
        if self.tty:
            if self._key is not None and key != self._key:
                self.stream.write("\n")
                self._width = 0
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        elif key != self._key or now - self._last >= self.every:
            self.stream.write(line + "\n")
            self._last = now
        self._key = key
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._key is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._key = None


def _run_cancellable(fn, printer: ProgressPrinter):
    """Run fn(progress, control) in a worker thread so Ctrl-C cancels cleanly between chunks."""
    control = Control()
    outcome: dict = {}
    finished = threading.Event()  # not Thread.join(): on 3.11 a join interrupted by Ctrl-C can return early later

    def work():
        try:
            outcome["value"] = fn(printer, control)
        except BaseException as e:  # handed to the main thread
            outcome["error"] = e
        finally:
            finished.set()

    threading.Thread(target=work, name="voxtral-models", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        control.cancel()
        finished.wait()
        printer.close()
        raise Cancelled("interrupted") from None
    printer.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _size(n: int | None, approx: bool = False) -> str:
    return ("~" if approx else "") + human_bytes(n) if n else "?"


def cmd_list(store: ModelStore, args) -> int:
    print(f"Models folder: {store.root}")
    installed = {m.name: m for m in store.installed()}
    default = store.default()
    rows = []
    for entry in store.catalog.models:
        m = installed.pop(entry.name, None)
        if m:
            status = "installed" if m.verified else f"damaged: {m.problem}; {repair_hint(m)}"
            rows.append((entry.name, _size(m.size), status, entry.title))
        else:
            part = store.partial_bytes(entry.name)
            status = f"partly downloaded ({human_bytes(part)})" if part else "not installed"
            rows.append((entry.name, _size(entry.approx_size, approx=True), status, entry.title))
    for m in installed.values():
        status = (("imported" if m.source == "import" else "installed") if m.verified
                  else f"damaged: {m.problem}; {repair_hint(m)}")
        rows.append((m.name, _size(m.size), status, m.origin))
    width = max(len(r[0]) for r in rows) if rows else 4
    print(f"  {'NAME':<{width}}  {'SIZE':>9}  STATUS")
    for name, size, status, note in rows:
        mark = "*" if default and default.name == name else " "
        print(f"{mark} {name:<{width}}  {size:>9}  {status}" + (f"  ({note})" if note else ""))
    if default:
        print(f"* = the model used when none is named: {default.path}")
    return 0


def cmd_download(store: ModelStore, args) -> int:
    before = store.find(args.name)
    if before and before.verified and not args.force:
        print(f"{args.name} is installed already in {before.path}; --force downloads it again")
        return 0
    m = _run_cancellable(lambda p, c: store.download(args.name, p, c, force=args.force), ProgressPrinter(args.progress))
    print(f"installed {m.name} in {m.path} ({human_bytes(m.size)}, every file's SHA-256 checked)")
    return 0


def cmd_verify(store: ModelStore, args) -> int:
    results = _run_cancellable(lambda p, c: store.verify(args.name, p, c), ProgressPrinter(args.progress))
    if not results:
        print("no models installed")
        return 0
    for r in results:
        print(r.describe())
        if not r.ok and (m := store.find(r.name)):
            print(f"  {repair_hint(m)}")
    return 0 if all(r.ok for r in results) else 1


def cmd_repair(store: ModelStore, args) -> int:
    m = _run_cancellable(lambda p, c: store.repair(args.name, p, c), ProgressPrinter(args.progress))
    print(f"repaired {m.name} in {m.path} ({human_bytes(m.size)}, every file's SHA-256 checked)")
    return 0


def cmd_import(store: ModelStore, args) -> int:
    m = _run_cancellable(
        lambda p, c: store.import_path(Path(args.path), args.name, p, c, shard_size_mb=args.shard_size_mb),
        ProgressPrinter(args.progress))
    print(f"imported {m.name} into {m.path} ({human_bytes(m.size)})")
    return 0


def cmd_remove(store: ModelStore, args) -> int:
    freed = store.remove(args.name)
    print(f"removed {args.name} ({human_bytes(freed)} freed)")
    return 0


COMMANDS = {"list": cmd_list, "download": cmd_download, "verify": cmd_verify, "repair": cmd_repair,
            "import": cmd_import, "remove": cmd_remove}


def run(args) -> int:
    try:
        store = ModelStore(args.dir, load_catalog(args.catalog))
        return COMMANDS[args.models_command](store, args)
    except Cancelled:
        print("interrupted: partial downloads are kept; run the same command again to resume", file=sys.stderr)
        return 130
    except (ModelManagerError, ModelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        name = getattr(e, "model", "") or getattr(args, "name", "") or "NAME"
        if hint := remedy_hint(getattr(e, "remedy", ""), name):
            print(f"  ({hint})", file=sys.stderr)
        return 1


def _location_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--dir", default=default,
                        help=f"models folder (default: ${MODELS_DIR_ENV} or {default_models_dir()})")
    parser.add_argument("--catalog", default=default, help="a catalog JSON file instead of the built-in one")


def register(subparsers) -> argparse.ArgumentParser:
    """Add `models` to the main CLI's subparsers."""
    p = subparsers.add_parser("models", help="list, download, verify, import and remove models",
                              description="Manage the models Voxtral Desk can use. Downloads resume where they "
                                          "stopped and every file is checked against its SHA-256.")
    _location_options(p, None)
    p.set_defaults(progress=None, func=run)
    sub = p.add_subparsers(dest="models_command", metavar="{list,download,verify,repair,import,remove}", required=True)

    def command(name: str, help: str, progress: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        # Accepted after the sub-command too; SUPPRESS keeps an absent one from hiding one given before it.
        _location_options(c, argparse.SUPPRESS)
        if progress:
            c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                           help="progress with speed and time left on stderr (default: when stderr is a terminal)")
        return c

    command("list", "the catalog and the installed models", progress=False)
    d = command("download", "download a model from the catalog")
    d.add_argument("name")
    d.add_argument("--force", action="store_true", help="download again even if installed")
    v = command("verify", "check every file's SHA-256 (all models, or NAME)")
    v.add_argument("name", nargs="?")
    f = command("repair", "fetch a damaged model again: download it, or import it again from where it came from")
    f.add_argument("name")
    i = command("import", "install a GGUF file, a shard set, or an original consolidated.safetensors folder")
    i.add_argument("path")
    i.add_argument("--name", help="name for the model (default: from the file or folder name)")
    i.add_argument("--shard-size-mb", type=int, default=512, help="shard size when converting an original folder")
    r = command("remove", "delete an installed model (and any partial download of it)", progress=False)
    r.add_argument("name")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxtral-desk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
