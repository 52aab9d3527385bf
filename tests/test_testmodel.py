import json

import numpy as np

from voxtral_desk.checkpoint import SafetensorsFile, tensor_table
from voxtral_desk.config import ModelConfig
from voxtral_desk.testmodel import TEKKEN_AUDIO, make_test_model, params_for
from voxtral_desk.tokenizer import Tokenizer


def test_full_preset_has_the_real_architecture():
    """Spec §1: 711 tensors, 4,429,679,360 parameters."""
    cfg = ModelConfig.from_documents(params_for("full", 131072), TEKKEN_AUDIO)
    table = tensor_table(cfg)
    assert len(table) == 711
    assert sum(int(np.prod(t.shape)) for t in table) == 4_429_679_360


def test_deterministic_per_seed_and_in_original_layout(tmp_path):
    a, b, c = (make_test_model(tmp_path / n, "tiny", s) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    assert a[0].read_bytes() == b[0].read_bytes() != c[0].read_bytes()
    st = SafetensorsFile(a[0])
    assert len(st.names()) == len(tensor_table(ModelConfig.from_model_dir(a[1], a[2])))
    assert {st.dtype(n) for n in st.names()} == {"BF16"}


def test_tekken_special_ids(tmp_path):
    make_test_model(tmp_path, "tiny", 0)
    tok = Tokenizer(tmp_path / "tekken.json")
    assert (tok.bos, tok.eos, tok.streaming_pad, tok.streaming_word, tok.n_special) == (1, 2, 32, 33, 1000)
    assert json.loads((tmp_path / "tekken.json").read_text())["audio"] == TEKKEN_AUDIO
