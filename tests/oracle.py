"""Hugging Face transformers' VoxtralRealtime, built from the same original-layout checkpoint our code
reads: the executable reference our numpy model must match. Test-only (torch + transformers)."""
from __future__ import annotations


import numpy as np
import torch
from transformers import VoxtralRealtimeConfig, VoxtralRealtimeFeatureExtractor, VoxtralRealtimeForConditionalGeneration

from voxtral_desk.checkpoint import AUDIO_TENSORS, FINAL_NORM, TOKEN_EMBEDDINGS, decoder_layers, encoder_layers
from voxtral_desk.config import ModelConfig


def hf_config(cfg: ModelConfig) -> VoxtralRealtimeConfig:
    e, d = cfg.encoder, cfg.decoder
    audio = dict(hidden_size=e.dim, intermediate_size=e.hidden_dim, num_hidden_layers=e.n_layers,
                 num_attention_heads=e.n_heads, head_dim=e.head_dim, num_mel_bins=e.n_mels, rms_norm_eps=e.norm_eps,
                 rope_parameters={"rope_type": "default", "rope_theta": e.rope_theta},
                 sliding_window=e.sliding_window, vocab_size=d.vocab_size)
    text = dict(vocab_size=d.vocab_size, hidden_size=d.dim, intermediate_size=d.hidden_dim,
                num_hidden_layers=d.n_layers, num_attention_heads=d.n_heads, num_key_value_heads=d.n_kv_heads,
                head_dim=d.head_dim, rms_norm_eps=d.norm_eps,
                rope_parameters={"rope_type": "default", "rope_theta": d.rope_theta},
                sliding_window=d.sliding_window, tie_word_embeddings=True)
    return VoxtralRealtimeConfig(audio_config=audio, text_config=text, downsample_factor=e.downsample_factor,
                                 audio_length_per_tok=cfg.audio.mel_frames_per_token, projector_hidden_act="gelu")


def _rope_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Interleaved pairs (2k, 2k+1) of each head -> rotate-half order (k, k + hd/2), as HF stores q/k."""
    rows = w.shape[0]
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(rows, *w.shape[1:])


def hf_state_dict(cfg: ModelConfig, weights) -> dict[str, torch.Tensor]:
    e, d = cfg.encoder, cfg.decoder
    sd = {}

    def put(key, name, permute_heads=None):
        w = weights.f32(name)
        if permute_heads:
            w = _rope_permute(w, permute_heads)
        sd[key] = torch.from_numpy(np.array(w, dtype=np.float32))  # a writable copy (GGUF data is a read-only map)

    put("model.language_model.embed_tokens.weight", TOKEN_EMBEDDINGS)
    put("lm_head.weight", TOKEN_EMBEDDINGS)
    put("model.language_model.norm.weight", FINAL_NORM)
    for j, L in enumerate(decoder_layers(cfg)):
        hp = f"model.language_model.layers.{j}."
        put(hp + "input_layernorm.weight", L.attn_norm)
        put(hp + "post_attention_layernorm.weight", L.ffn_norm)
        put(hp + "self_attn.q_proj.weight", L.wq, d.n_heads)
        put(hp + "self_attn.k_proj.weight", L.wk, d.n_kv_heads)
        put(hp + "self_attn.v_proj.weight", L.wv)
        put(hp + "self_attn.o_proj.weight", L.wo)
        put(hp + "mlp.gate_proj.weight", L.w1)
        put(hp + "mlp.down_proj.weight", L.w2)
        put(hp + "mlp.up_proj.weight", L.w3)
        put(hp + "ada_rms_norm.linear1.weight", L.ada_down)
        put(hp + "ada_rms_norm.linear2.weight", L.ada_up)
    a = AUDIO_TENSORS
    put("model.audio_tower.embedder.conv1.weight", a.conv0)
    put("model.audio_tower.embedder.conv1.bias", a.conv0_bias)
    put("model.audio_tower.embedder.conv2.weight", a.conv1)
    put("model.audio_tower.embedder.conv2.bias", a.conv1_bias)
    put("model.audio_tower.norm.weight", a.encoder_norm)
    for i, L in enumerate(encoder_layers(cfg)):
        hp = f"model.audio_tower.layers.{i}."
        put(hp + "self_attn.q_proj.weight", L.wq, e.n_heads)
        put(hp + "self_attn.q_proj.bias", L.wq_bias, e.n_heads)
        put(hp + "self_attn.k_proj.weight", L.wk, e.n_kv_heads)
        put(hp + "self_attn.v_proj.weight", L.wv)
        put(hp + "self_attn.v_proj.bias", L.wv_bias)
        put(hp + "self_attn.o_proj.weight", L.wo)
        put(hp + "self_attn.o_proj.bias", L.wo_bias)
        put(hp + "self_attn_layer_norm.weight", L.attn_norm)
        put(hp + "final_layer_norm.weight", L.ffn_norm)
        put(hp + "mlp.gate_proj.weight", L.w1)
        put(hp + "mlp.down_proj.weight", L.w2)
        put(hp + "mlp.down_proj.bias", L.w2_bias)
        put(hp + "mlp.up_proj.weight", L.w3)
    put("model.multi_modal_projector.linear_1.weight", a.adapter_in)
    put("model.multi_modal_projector.linear_2.weight", a.adapter_out)
    return sd


class HFOracle:
    def __init__(self, model, device: str = "cpu"):
        """model: a loader.Model (original layout or GGUF). float32 on `device` (full size fits a big GPU)."""
        self.cfg = model.config
        self.device = device
        torch.manual_seed(0)
        with torch.device(device):
            self.model = VoxtralRealtimeForConditionalGeneration(hf_config(self.cfg)).float().eval()
        missing, unexpected = self.model.load_state_dict(hf_state_dict(self.cfg, model.weights), strict=False)
        assert not unexpected and all("inv_freq" in k for k in missing), (missing, unexpected)
        self.model.model.time_embedding.inv_freq.copy_(torch.exp(  # buffer, not in the state dict
            -np.log(10000.0) * torch.arange(self.cfg.decoder.dim // 2).float() / (self.cfg.decoder.dim // 2)))
        self.features = VoxtralRealtimeFeatureExtractor(feature_size=self.cfg.encoder.n_mels)

    def mel(self, padded_audio: np.ndarray) -> torch.Tensor:
        mel = self.features(padded_audio, sampling_rate=self.cfg.audio.sampling_rate,
                            return_tensors="pt").input_features
        return mel.to(self.device)

    @torch.no_grad()
    def run(self, padded_audio: np.ndarray, prompt: list[int], n_delay: int) -> dict[str, np.ndarray]:
        mel = self.mel(padded_audio)  # [1, n_mels, 8T]
        m = self.model
        conv = m.model.audio_tower.embedder(mel)[0]
        encoder = m.model.audio_tower(input_features=mel).last_hidden_state[0]
        adapter = m.model.get_audio_features(input_features=mel).pooler_output[0]
        prompt_ids = torch.tensor([prompt], device=self.device)
        ids = m.generate(input_features=mel, input_ids=prompt_ids, num_delay_tokens=n_delay, do_sample=False,
                         attention_mask=torch.ones_like(prompt_ids))[0]
        logits = self.teacher_forced_logits(mel, ids.tolist(), n_delay)
        return {"mel": mel[0].cpu().numpy(), "conv": conv.cpu().numpy(), "encoder": encoder.cpu().numpy(),
                "adapter": adapter.cpu().numpy(), "logits": logits, "generated": ids[len(prompt):].cpu().numpy()}

    @torch.no_grad()
    def teacher_forced_logits(self, mel: torch.Tensor, ids: list[int], n_delay: int) -> np.ndarray:
        """Logits at positions 0 .. len(ids)-2 with the given input ids (prompt + generated)."""
        n_tokens = mel.shape[-1] // self.cfg.audio.mel_frames_per_token
        full = torch.full((1, n_tokens), ids[-1], device=self.device)
        full[0, : len(ids)] = torch.tensor(ids, device=self.device)
        logits = self.model(input_ids=full, input_features=mel, num_delay_tokens=n_delay).logits[0, : len(ids) - 1]
        return logits.float().cpu().numpy()

