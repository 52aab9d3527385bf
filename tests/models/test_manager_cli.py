"""`voxtral-desk models ...` through the sub-command parser that register() adds, against the local
server. Results on stdout, progress and errors on stderr, non-zero exit on failure."""
import _thread
import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from models_helpers import MODEL, catalog_data, closed_port, wait_for

from voxtral_desk.models.cli import main, register


@pytest.fixture
def cli(tmp_path, server, tiny, monkeypatch, capsys):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_data(server, tiny)))
    monkeypatch.setenv("VOXTRAL_DESK_CATALOG", str(catalog))
    monkeypatch.setenv("HF_ENDPOINT", server.base)
    root = tmp_path / "models"

    def run(*argv):
        code = main(["models", *argv, "--dir", str(root)])
        out, err = capsys.readouterr()
        return code, out, err

    run.root = root
    return run


def test_list_download_verify_remove(cli, tiny):
    code, out, _ = cli("list")
    assert code == 0
    assert f"Models folder: {cli.root}" in out
    assert f"  {MODEL}" in out and "not installed" in out

    code, out, err = cli("download", MODEL, "--progress")
    assert code == 0, err
    assert f"installed {MODEL} in {cli.root / MODEL}" in out
    assert "downloading" in err and "joining" in err  # progress lines went to stderr

    code, out, _ = cli("download", MODEL)
    assert code == 0 and "installed already" in out

    code, out, _ = cli("list")
    assert f"* {MODEL}" in out and "installed" in out

    code, out, _ = cli("verify")
    assert code == 0 and f"{MODEL}: ok" in out

    gguf = cli.root / MODEL / "tiny-q4.gguf"
    gguf.write_bytes(gguf.read_bytes()[:-1] + b"\x01")
    code, out, _ = cli("verify", MODEL)
    assert code == 1 and "FAILED" in out and "SHA-256" in out

    code, out, _ = cli("remove", MODEL)
    assert code == 0 and f"removed {MODEL}" in out
    code, _, err = cli("remove", MODEL)
    assert code == 1 and err.startswith("error: no model named")


def test_import(cli, tiny):
    code, out, err = cli("import", str(tiny.single / "tiny.gguf"), "--name", "mine", "--no-progress")
    assert code == 0, err
    assert f"imported mine into {cli.root / 'mine'}" in out and err == ""
    code, out, _ = cli("list")
    assert "mine" in out and "imported" in out
    code, _, err = cli("import", str(tiny.single / "nothing.gguf"))
    assert code == 1 and "error:" in err and "no such file" in err


def test_errors_are_clear_and_non_zero(cli, monkeypatch):
    code, _, err = cli("download", "nope")
    assert code == 1 and "error: no model named 'nope' in the catalog" in err
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    code, out, err = cli("download", MODEL)
    assert code == 1 and out == ""
    assert err.startswith("error: cannot reach 127.0.0.1") and "import a model file you already have" in err
    assert "voxtral-desk models import PATH" in err  # the command line's own hint, added here


def test_the_command_line_adds_its_hints(cli, tiny):
    assert cli("import", str(tiny.single / "tiny.gguf"), "--no-progress")[0] == 0
    code, _, err = cli("import", str(tiny.single / "tiny.gguf"), "--no-progress")
    assert code == 1 and "error: a model named 'tiny' is installed already" in err
    assert "--name NAME" in err and "voxtral-desk models remove tiny" in err


def test_a_damaged_model_says_how_to_repair_it(cli, tiny):
    assert cli("download", MODEL)[0] == 0
    gguf = cli.root / MODEL / "tiny-q4.gguf"
    data = bytearray(gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gguf.write_bytes(bytes(data))  # same size: only a hash check sees it
    code, out, _ = cli("verify", MODEL)
    assert code == 1 and f"{MODEL}: FAILED: tiny-q4.gguf does not match its SHA-256" in out
    assert f"'voxtral-desk models repair {MODEL}' downloads it again" in out
    code, out, _ = cli("list")
    assert f"damaged: tiny-q4.gguf does not match its SHA-256 (damaged on disk); 'voxtral-desk models repair {MODEL}'" \
        in out
    code, out, err = cli("repair", MODEL, "--no-progress")
    assert code == 0 and f"repaired {MODEL}" in out, err
    code, out, _ = cli("verify", MODEL)
    assert code == 0 and f"{MODEL}: ok" in out


def test_an_import_while_another_process_imports_the_same_name(cli, tiny, tmp_path):
    """A second `models import` of the same name, from another process, says plainly that one is in progress;
    once that process dies (killed: no clean-up), the lock is gone and the import works."""
    marker = tmp_path / "copying"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from voxtral_desk.models.store import ModelStore

        def progress(p):
            if p.phase == "copying" and not Path({str(marker)!r}).exists():
                Path({str(marker)!r}).touch()
                time.sleep(600)  # holds the import (and its lock) until killed
        ModelStore({str(cli.root)!r}).import_path({str(tiny.single / "tiny.gguf")!r}, "mine", progress)
        """)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: marker.exists() or child.poll() is not None, timeout=60)
        assert child.poll() is None, child.stderr.read()
        code, out, err = cli("import", str(tiny.single / "tiny.gguf"), "--name", "mine", "--no-progress")
        assert code == 1 and out == ""
        assert err.startswith("error: a download or import of mine is already in progress in another Voxtral Desk")
        assert "permissions" not in err
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    code, out, err = cli("import", str(tiny.single / "tiny.gguf"), "--name", "mine", "--no-progress")
    assert code == 0 and "imported mine" in out, err


def test_dir_before_the_sub_command(cli, tiny, capsys):
    assert main(["models", "--dir", str(cli.root), "import", str(tiny.single / "tiny.gguf")]) == 0
    assert (cli.root / "tiny").is_dir()


def test_ctrl_c_cancels_and_keeps_the_partial_download(cli, server, tiny):
    """The server sends 8 KiB and then nothing (so the download cannot finish before Ctrl+C, however loaded
    the machine): Ctrl+C ends it at once, not after the 30 s read timeout, and keeps what arrived."""
    server.fault("shard-aa", ("stall", 8192))
    part = cli.root / ".partial" / MODEL / "files" / "shard-aa.part"
    pressed = []

    def press_ctrl_c():
        wait_for(lambda: part.exists() and part.stat().st_size >= 8192)
        pressed.append(time.monotonic())
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    code, _, err = cli("download", MODEL)
    assert code == 130 and "run the same command again to resume" in err
    assert time.monotonic() - pressed[0] < 2.5
    assert not (cli.root / MODEL).exists()
    assert part.stat().st_size == 8192
    code, _, err = cli("download", MODEL)
    assert code == 0, err
    assert server.gets("shard-aa")[-1] == "bytes=8192-"


def test_register_adds_models_beside_other_commands():
    parser = argparse.ArgumentParser(prog="voxtral-desk")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("transcribe")
    register(sub)
    args = parser.parse_args(["models", "import", "x.gguf", "--name", "n", "--dir", "/d"])
    got = (args.command, args.models_command, args.path, args.name, args.dir)
    assert got == ("models", "import", "x.gguf", "n", "/d")
    assert callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["models"])  # a sub-command is required
