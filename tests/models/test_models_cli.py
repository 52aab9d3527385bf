"""`voxtral-desk models ...` through the sub-command parser that register() adds, against the local
server. Results on stdout, progress and errors on stderr, non-zero exit on failure."""
import _thread
import argparse
import json
import threading

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
    assert err.startswith("error: cannot reach 127.0.0.1") and "import" in err


def test_dir_before_the_sub_command(cli, tiny, capsys):
    assert main(["models", "--dir", str(cli.root), "import", str(tiny.single / "tiny.gguf")]) == 0
    assert (cli.root / "tiny").is_dir()


def test_ctrl_c_cancels_and_keeps_the_partial_download(cli, server, tiny):
    server.fault("shard-aa", ("slow", 0.02))

    def press_ctrl_c():
        wait_for(lambda: server.sent["shard-aa"] >= 8192)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    code, _, err = cli("download", MODEL)
    assert code == 130 and "run the same command again to resume" in err
    assert not (cli.root / MODEL).exists()
    assert (cli.root / ".partial" / MODEL / "files" / "shard-aa.part").stat().st_size > 0
    code, _, err = cli("download", MODEL)
    assert code == 0, err
    assert server.gets("shard-aa")[-1].startswith("bytes=")


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
