"""The command line as a user runs it (a real subprocess of the installed entry point), and in-process where a
failure has to be injected."""
import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from voxtral_desk import cli as cli_module


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "voxtral_desk", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_transcribe_json_has_every_token_and_timestamps(model_dir, speech_wav, tmp_path):
    out = tmp_path / "speech.json"
    cli("transcribe", speech_wav, "--model", model_dir("tiny", 0), "--backend", "reference", "--format", "json",
        "-o", out)
    doc = json.loads(out.read_text())
    ids = [t["id"] for t in doc["tokens"]]
    assert len(ids) > 40 and doc["delay_ms"] == 480
    assert doc["tokens"][0]["start"] == 0.0 and doc["tokens"][-1]["end"] == pytest.approx(len(ids) * 0.08)
    assert "text" in doc and "segments" in doc


def test_transcribe_several_files_to_a_folder_and_report_bad_ones(model_dir, speech_wav, tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"\x00" * 100)
    proc = cli("transcribe", speech_wav, bad, "--model", model_dir("tiny", 0), "--backend", "reference",
               "--format", "srt", "-o", tmp_path, check=False)
    assert proc.returncode == 1
    assert f"error: {bad}: this is not an audio file Voxtral Desk can read (format not recognised)" in proc.stderr
    assert (tmp_path / "speech.srt").read_text().startswith("1\n00:00:")


def test_bad_model_path_is_a_clear_error(tmp_path, speech_wav):
    proc = cli("transcribe", speech_wav, "--model", tmp_path / "nowhere", "--backend", "reference", check=False)
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "Traceback" not in proc.stderr


def test_make_test_model_then_convert_then_transcribe_from_gguf(tmp_path, speech_wav):
    cli("make-test-model", tmp_path / "orig", "--preset", "tiny", "--seed", "5", "--dtype", "f32")
    proc = cli("convert", tmp_path / "orig", tmp_path / "gguf", "--quant", "q4_0", "--shard-size-mb", "0")
    assert "manifest.json" in proc.stdout
    txt = cli("transcribe", speech_wav, "--model", tmp_path / "gguf", "--backend", "reference").stdout
    assert txt.endswith("\n")


def test_unknown_quantisation_is_refused(tmp_path, model_dir):
    proc = cli("convert", model_dir("tiny", 0), tmp_path / "x", "--quant", "q8_0", check=False)
    assert proc.returncode == 2 and "q4_0" in proc.stderr


def test_bench_reports_every_figure(model_dir):
    doc = json.loads(cli("bench", "--model", model_dir("tiny", 0), "--backend", "reference", "--seconds", "3",
                         "--live-steps", "10", "--late-seconds", "4", "--json").stdout)
    for key in ("load_s", "file_rtf", "file_tokens_per_s", "encoder_ms_per_audio_s", "prefill_ms",
                "decode_tokens_per_s", "live_step_ms_median", "live_step_ms_p95", "live_late_step_ms_median",
                "live_late_step_ms_p95"):
        assert doc[key] > 0, key
    assert doc["live_late_seconds"] == 4 and doc["live_steps"] == 10
    assert doc["generated_tokens"] == 3 * 1000 // 80 + 1 + 17 - 1 - 6  # forced to full length


def run_main(capsys, *args) -> tuple[int, str, str]:
    """cli.main in this process (for injected faults): exit status, stdout, stderr."""
    code = cli_module.main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def reference(model_dir) -> list:
    return ["--model", model_dir("tiny", 0), "--backend", "reference"]


def test_inputs_with_the_same_stem_get_one_output_each(model_dir, speech_wav, tmp_path):
    soundfile.write(str(tmp_path / "memo.flac"), soundfile.read(str(speech_wav))[0], 22050)
    shutil.copy(speech_wav, tmp_path / "memo.wav")
    cli("transcribe", tmp_path / "memo.wav", tmp_path / "memo.flac", *reference(model_dir), "--format", "json",
        "-o", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["memo.flac.json", "memo.wav.json"]
    for name in ("memo.flac", "memo.wav"):
        assert json.loads((tmp_path / "out" / f"{name}.json").read_text())["audio"] == str(tmp_path / name)


def test_existing_outputs_are_only_replaced_with_overwrite(model_dir, speech_wav, tmp_path, capsys, monkeypatch):
    (tmp_path / "out").mkdir()
    shutil.copy(speech_wav, tmp_path / "a.wav")
    shutil.copy(speech_wav, tmp_path / "b.wav")
    (tmp_path / "out" / "a.srt").write_text("mine")
    (tmp_path / "out" / "b.srt").write_text("mine too")
    monkeypatch.setattr("voxtral_desk.pipeline.load_model", lambda path: pytest.fail("the model was loaded"))
    code, _, err = run_main(capsys, "transcribe", tmp_path / "a.wav", tmp_path / "b.wav", *reference(model_dir),
                            "--format", "srt", "-o", tmp_path / "out")
    assert code == 2 and len(err.splitlines()) == 1 and "--overwrite" in err
    assert str(tmp_path / "out" / "a.srt") in err and str(tmp_path / "out" / "b.srt") in err
    assert (tmp_path / "out" / "a.srt").read_text() == "mine" and (tmp_path / "out" / "b.srt").read_text() == "mine too"
    monkeypatch.undo()
    code, _, err = run_main(capsys, "transcribe", tmp_path / "a.wav", tmp_path / "b.wav", *reference(model_dir),
                            "--format", "srt", "-o", tmp_path / "out", "--overwrite")
    assert code == 0, err
    assert (tmp_path / "out" / "a.srt").read_text().startswith("1\n00:00:")


@pytest.mark.parametrize("alias", ["same", "relative", "hard link", "symlink"])
def test_an_output_never_replaces_an_input(model_dir, speech_wav, tmp_path, capsys, monkeypatch, alias):
    audio = tmp_path / "talk.wav"
    shutil.copy(speech_wav, audio)
    output = {"same": audio, "relative": "./talk.wav", "hard link": tmp_path / "link.wav",
              "symlink": tmp_path / "sym.wav"}[alias]
    if alias == "hard link":
        os.link(audio, output)
    if alias == "symlink":
        os.symlink(audio, output)
    monkeypatch.chdir(tmp_path)
    before = audio.read_bytes()
    code, _, err = run_main(capsys, "transcribe", audio, *reference(model_dir), "-o", output, "--overwrite")
    assert code == 2 and "is one of the audio files" in err and len(err.splitlines()) == 1
    assert audio.read_bytes() == before


@pytest.mark.parametrize("several", [False, True])
def test_a_missing_output_folder_is_created(model_dir, speech_wav, tmp_path, several):
    inputs = [speech_wav, tmp_path / "second.wav"] if several else [speech_wav]
    shutil.copy(speech_wav, tmp_path / "second.wav")
    folder = tmp_path / "new" / "texts"
    cli("transcribe", *inputs, *reference(model_dir), "-o", str(folder) + ("" if several else os.sep))
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == (["second.txt", "speech.txt"] if several else ["speech.txt"])


@pytest.mark.parametrize("output,words", [
    ("notes.txt/", "is a file, not a folder"),
    ("notes.txt/deeper/", "cannot create the folder"),
    ("notes.txt/out.txt", "is not a folder"),
    ("nowhere/out.txt", "does not exist"),
])
def test_an_output_that_cannot_be_made_is_refused_before_transcribing(model_dir, speech_wav, tmp_path, capsys,
                                                                       monkeypatch, output, words):
    (tmp_path / "notes.txt").write_text("my notes")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("voxtral_desk.pipeline.load_model", lambda path: pytest.fail("the model was loaded"))
    code, _, err = run_main(capsys, "transcribe", speech_wav, *reference(model_dir), "-o", output)
    assert code == 2 and err.startswith("error: ") and words in err and len(err.splitlines()) == 1
    assert (tmp_path / "notes.txt").read_text() == "my notes"


def test_a_full_disk_fails_one_output_keeps_the_old_one_and_the_others_go_on(model_dir, speech_wav, tmp_path,
                                                                            capsys, monkeypatch):
    for name in ("a.wav", "b.wav"):
        shutil.copy(speech_wav, tmp_path / name)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").write_text("the old transcript")
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("voxtral_desk.fileio.os.fsync", fsync)
    code, _, err = run_main(capsys, "transcribe", tmp_path / "a.wav", tmp_path / "b.wav", *reference(model_dir),
                            "--format", "json", "-o", tmp_path / "out", "--overwrite")
    assert code == 1
    assert f"error: cannot write {tmp_path / 'out' / 'a.json'}: the disk is full" in err and "Traceback" not in err
    assert (tmp_path / "out" / "a.json").read_text() == "the old transcript"
    assert json.loads((tmp_path / "out" / "b.json").read_text())["tokens"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.json", "b.json"]  # no temporary file left


def test_an_output_that_cannot_be_written_is_one_line_and_the_exit_status_is_1(model_dir, speech_wav, tmp_path,
                                                                               capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "speech.txt").mkdir()  # a folder where the transcript should go
    code, _, err = run_main(capsys, "transcribe", speech_wav, *reference(model_dir), "-o", tmp_path / "out",
                            "--overwrite")
    assert code == 1 and err.startswith(f"error: cannot write {tmp_path / 'out' / 'speech.txt'}: ")
    assert len(err.splitlines()) == 1


def test_libmpg123_diagnostics_stay_off_stderr(model_dir, speech_wav, tmp_path):
    soundfile.write(str(tmp_path / "song.mp3"), soundfile.read(str(speech_wav))[0], 22050)
    whole = (tmp_path / "song.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(whole[: len(whole) // 3])
    (tmp_path / "notes.mp3").write_bytes(b"\x00" * 100)
    proc = cli("transcribe", tmp_path / "notes.mp3", tmp_path / "cut.mp3", *reference(model_dir), check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: {tmp_path / 'notes.mp3'}: this is not an audio file Voxtral Desk can read (format not recognised)"]


def test_samples_that_are_not_numbers_give_one_warning_line(model_dir, tmp_path):
    audio = (np.random.default_rng(0).standard_normal(32000) * 0.1).astype(np.float32)
    audio[[10, 500, 9000]] = [np.nan, np.inf, np.nan]
    soundfile.write(str(tmp_path / "talk.wav"), audio, 16000, subtype="FLOAT")
    command = [sys.executable, "-m", "voxtral_desk", "transcribe", "talk.wav", *map(str, reference(model_dir))]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "warning: talk.wav: 3 samples were not numbers (NaN/Inf) and were replaced by silence"]


@pytest.mark.parametrize("delay", ["0", "100", "800000", "-80"])
def test_a_bad_delay_is_one_error_line_before_the_engine_is_built(model_dir, speech_wav, capsys, monkeypatch, delay):
    monkeypatch.setattr("voxtral_desk.pipeline.create_engine", lambda *a, **k: pytest.fail("an engine was built"))
    code, out, err = run_main(capsys, "transcribe", speech_wav, *reference(model_dir), "--delay-ms", delay)
    assert code == 2 and out == "" and err.startswith("error: ") and len(err.splitlines()) == 1
    assert "delay" in err


def test_help_says_how_to_open_the_app_and_the_delay_range():
    top = " ".join(cli("--help").stdout.split())  # argparse wraps lines where it likes
    assert "With no arguments, voxtral-desk opens the app" in top
    for command in ("transcribe", "convert", "models", "bench", "make-test-model", "self-test"):
        assert command in top
    assert "80-2400 ms, a multiple of 80" in " ".join(cli("transcribe", "--help").stdout.split())


def test_files_without_a_subcommand_open_the_app_with_them_queued(tmp_path, monkeypatch):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "folder").mkdir()
    calls = []
    monkeypatch.setattr("voxtral_desk.app.main.run_app", lambda **kwargs: calls.append(kwargs) or 0)
    monkeypatch.chdir(tmp_path)
    assert cli_module.main(["a.wav", "folder"]) == 0
    assert calls == [{"files": [str(tmp_path / "a.wav"), str(tmp_path / "folder")]}]


@pytest.mark.parametrize("argv", [["a.wav", "missing.wav"], ["missing.wav"], ["a.wav", "--backend", "gpu"]])
def test_anything_else_without_a_subcommand_is_argparses_usual_error(tmp_path, monkeypatch, capsys, argv):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    monkeypatch.setattr("voxtral_desk.app.main.run_app", lambda **kwargs: pytest.fail("the app was started"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli_module.main(argv)
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["transcribe", "AUDIO"], ["bench"]])
def test_without_a_model_the_error_says_how_to_get_one(command, speech_wav, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOXTRAL_DESK_MODELS_DIR", str(tmp_path / "no-models"))
    code = cli_module.main([str(speech_wav) if arg == "AUDIO" else arg for arg in command])
    assert code == 2
    assert capsys.readouterr().err == ("error: no model installed: run `voxtral-desk models download "
                                       "voxtral-mini-4b-realtime-q4`, `voxtral-desk models import PATH`, or pass "
                                       "--model PATH\n")
