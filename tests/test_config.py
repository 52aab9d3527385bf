"""Hyper-parameters: every value in params.json and tekken.json's `audio` block is checked against sane
bounds and against the others before anything is sized from it, and a bad one is named with its file."""
from __future__ import annotations

import copy
import json

import pytest

from voxtral_desk.config import MAX_DELAY_MS, AudioConfig, ModelConfig, ModelFileError
from voxtral_desk.models.catalog import load_catalog
from voxtral_desk.testmodel import PRESETS, TEKKEN_AUDIO, params_for

ENC = "multimodal.whisper_model_args.encoder_args."


def mutated(doc: dict, key: str, value) -> dict:
    """A deep copy of doc with the dotted key set to value (or removed when value is DELETE)."""
    doc = copy.deepcopy(doc)
    *parents, last = key.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()

# (file, key, value, what the message must say after "<file>: <key> is <value>")
CORPUS = [
    ("params", "n_layers", 1_000_000_000, r"n_layers is 1000000000; a Voxtral Realtime model has between 1 and 256"),
    ("params", "n_layers", -1, r"n_layers is -1; a Voxtral Realtime model has between 1 and 256"),
    ("params", "n_layers", 0, r"n_layers is 0; .* between 1 and 256"),
    ("params", ENC + "n_layers", 1_000_000_000, ENC + r"n_layers is 1000000000; .* between 1 and 256"),
    ("params", "n_layers", 2.5, r"n_layers is 2.5; it must be a whole number"),
    ("params", "n_layers", "2", r"n_layers is \"2\"; it must be a whole number"),
    ("params", "n_layers", True, r"n_layers is true; it must be a whole number"),
    ("params", "vocab_size", DELETE, r"vocab_size is missing"),
    ("params", "dim", 1 << 40, r"dim is 1099511627776; .* between 32 and 16384"),
    ("params", "dim", 100, r"dim is 100; it must be a multiple of 32"),
    ("params", "hidden_dim", 0, r"hidden_dim is 0; .* between 32 and"),
    ("params", "head_dim", 15, r"head_dim is 15; it must be even"),
    ("params", "head_dim", 1024, r"head_dim is 1024; .* between 2 and 256"),
    ("params", "n_heads", 1_000_000, r"n_heads is 1000000; .* between 1 and 256"),
    ("params", "n_kv_heads", 3, r"n_kv_heads is 3; it must divide n_heads \(8\)"),
    ("params", "n_kv_heads", 16, r"n_kv_heads is 16; it must divide n_heads \(8\)"),
    ("params", ENC + "n_kv_heads", 3, ENC + r"n_kv_heads is 3; it must divide n_heads \(4\)"),
    ("params", ENC + "head_dim", 18, ENC + r"n_heads × head_dim is 72; it must be a multiple of 32"),
    ("params", "sliding_window", 0, r"sliding_window is 0; .* between 1 and 32768"),
    ("params", "sliding_window", -5, r"sliding_window is -5; .* between 1 and 32768"),
    ("params", ENC + "sliding_window", 0, ENC + r"sliding_window is 0; .* between 1 and 4096"),
    ("params", "norm_eps", -1e-5, r"norm_eps is -1e-05; .* between 1e-12 and 0.1"),
    ("params", "norm_eps", float("nan"), r"norm_eps is NaN; .* between 1e-12 and 0.1"),
    ("params", ENC + "norm_eps", 0, ENC + r"norm_eps is 0; .* between 1e-12 and 0.1"),
    ("params", "rope_theta", 0, r"rope_theta is 0; .* between 1 and 1e\+10"),
    ("params", ENC + "rope_theta", float("inf"), ENC + r"rope_theta is Infinity; .* between 1 and 1e\+10"),
    ("params", "vocab_size", 10 ** 12, r"vocab_size is 1000000000000; .* between 1 and 1048576"),
    ("params", "ada_rms_norm_t_cond_dim", 33, r"ada_rms_norm_t_cond_dim is 33; it must be a multiple of 32"),
    ("params", ENC + "audio_encoding_args.num_mel_bins", 1_000_000, r"num_mel_bins is 1000000; .* between 1 and 512"),
    ("params", ENC + "audio_encoding_args.global_log_mel_max", float("nan"), r"global_log_mel_max is NaN"),
    ("params", "multimodal.whisper_model_args.downsample_args.downsample_factor", 3,
     r"downsample_factor is 3; .* 8 mel frames per token.* it must be 4"),
    ("params", "multimodal", [], r"multimodal is \[\]; it must be a JSON object"),
    ("audio", "audio_encoding_config.window_size", 1_000_000_000, r"window_size is 1000000000; .* between 2 and 8192"),
    ("audio", "streaming_n_left_pad_tokens", 1_000_000_000,
     r"streaming_n_left_pad_tokens is 1000000000; .* between 0 and 256"),
    ("audio", "transcription_delay_ms", 1_000_000_000, r"transcription_delay_ms is 1000000000; .* 80 and 2400 ms"),
    ("audio", "transcription_delay_ms", 0, r"transcription_delay_ms is 0; .* 80 and 2400 ms"),
    ("audio", "audio_encoding_config.hop_length", 0, r"hop_length is 0; .* between 1 and"),
    ("audio", "audio_encoding_config.hop_length", 300, r"1280 samples per token is not a whole number of hop_length"),
    ("audio", "audio_encoding_config.hop_length", 320, r"downsample_factor is 4; .* 4 mel frames per token"),
    ("audio", "frame_rate", 0, r"frame_rate is 0; .* between 1 and 100"),
    ("audio", "frame_rate", float("nan"), r"frame_rate is NaN"),
    ("audio", "sampling_rate", 16001, r"sampling_rate / frame_rate is 1280.08 samples per token; it must be a whole"),
    ("audio", "sampling_rate", 0, r"sampling_rate is 0; .* between 4000 and 192000"),
    ("audio", "audio_encoding_config.num_mel_bins", 80, r"num_mel_bins is 80, but .*params.json.* says 128"),
]


def write_model_docs(folder, params: dict, audio: dict):
    (folder / "params.json").write_text(json.dumps(params))
    (folder / "tekken.json").write_text(json.dumps({"audio": audio}))
    return folder / "params.json", folder / "tekken.json"


CASE_IDS = [f"{w}:{k.removeprefix(ENC)}={'missing' if v is DELETE else repr(v)}" for w, k, v, _ in CORPUS]


@pytest.mark.parametrize("where, key, value, message", CORPUS, ids=CASE_IDS)
def test_bad_hyper_parameters_are_named(tmp_path, where, key, value, message):
    params, audio = params_for("tiny", 1556), copy.deepcopy(TEKKEN_AUDIO)
    if where == "params":
        params = mutated(params, key, value)
    else:
        audio = mutated(audio, key, value)
    params_path, tekken_path = write_model_docs(tmp_path, params, audio)
    with pytest.raises(ModelFileError, match=message) as err:
        ModelConfig.from_model_dir(params_path, tekken_path)
    text = str(err.value)
    # A value that disagrees with one in the other file is blamed on one of them and names both.
    named = params_path if where == "params" else tekken_path
    assert text.startswith((f"{params_path}: ", f"{tekken_path}: ")) and str(named) in text, text
    assert "Error" not in text and "Traceback" not in text


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_and_the_real_model_are_accepted(preset):
    cfg = ModelConfig.from_documents(params_for(preset, 131072 if preset == "full" else 1556), TEKKEN_AUDIO)
    assert cfg.decoder.n_layers == PRESETS[preset]["dec"]["n_layers"]
    real = ModelConfig.from_documents(load_catalog().models[0].params, TEKKEN_AUDIO)
    assert (real.decoder.n_layers, real.encoder.n_layers, real.audio.samples_per_token) == (26, 32, 1280)


def test_gguf_metadata_source_is_named():
    params = json.dumps(mutated(params_for("tiny", 1556), "rope_theta", 0))
    sources = ("model.gguf, metadata voxtral_realtime.params_json",
               "model.gguf, metadata voxtral_realtime.tekken_audio_json")
    with pytest.raises(ModelFileError, match=r"^model.gguf, metadata voxtral_realtime.params_json: rope_theta is 0;"):
        ModelConfig.from_json_texts(params, json.dumps(TEKKEN_AUDIO), *sources)


def test_metadata_that_is_not_json_is_named():
    with pytest.raises(ModelFileError, match=r"^m.gguf, metadata k: not valid JSON"):
        ModelConfig.from_json_texts("{n_layers: 2", json.dumps(TEKKEN_AUDIO), "m.gguf, metadata k",
                                    "m.gguf, metadata a")


@pytest.fixture
def audio_cfg() -> AudioConfig:
    return ModelConfig.from_documents(params_for("tiny", 1556), TEKKEN_AUDIO).audio


@pytest.mark.parametrize("delay_ms", [0, -80, 100, 81, 2480, 10_000, 1_000_000_000])
def test_delay_out_of_range_is_refused(audio_cfg, delay_ms):
    rule = "the delay must be a multiple of 80 ms between 80 and 2400 ms"
    with pytest.raises(ValueError, match=rf"^{rule}, not {delay_ms} ms$"):
        audio_cfg.delay_tokens(delay_ms)


def test_delay_range_is_exported(audio_cfg):
    assert MAX_DELAY_MS == AudioConfig.max_delay_ms == 2400
    assert audio_cfg.token_ms == 80
    assert [audio_cfg.delay_tokens(ms) for ms in (80, 480, 1200, 2400)] == [1, 6, 15, 30]
