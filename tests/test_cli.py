"""The command line as a user runs it (a real subprocess of the installed entry point)."""
import json
import subprocess
import sys

import pytest


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "voxtral_desk", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_transcribe_json_has_every_token_and_timestamps(model_dir, speech_wav, tmp_path):
    out = tmp_path / "speech.json"
    cli("transcribe", speech_wav, "--model", model_dir("tiny", 0), "--backend", "reference", "--format", "json", "-o", out)
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
    assert "broken.mp3" in proc.stderr and "cannot read audio" in proc.stderr
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
