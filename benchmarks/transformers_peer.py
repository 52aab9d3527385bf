"""Peer benchmark: Hugging Face transformers' VoxtralRealtime (bf16, CUDA) on the same clip length as
`voxtral-desk bench`, forced to full length, so both run in one job on one machine.

    python benchmarks/transformers_peer.py --seconds 16 --json

Needs torch with CUDA and transformers (not dependencies of the app). Random full-size weights: speed
does not depend on their values.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from transformers import VoxtralRealtimeConfig, VoxtralRealtimeForConditionalGeneration

from voxtral_desk.audio import LogMel, synthetic_speech
from voxtral_desk.testmodel import TEKKEN_AUDIO
from voxtral_desk.config import AudioConfig


def padded_mel(seconds: float) -> np.ndarray:
    audio_cfg = AudioConfig(16000, 12.5, 160, 400, 1.5, 32, 480)
    audio = synthetic_speech(seconds, 16000)
    r = audio_cfg.samples_per_token
    right = (-len(audio)) % r + 17 * r
    # Centre padding (200 zeros, the reflection of the zero left pad) on both sides.
    stream = np.concatenate([np.zeros(200 + 32 * r, np.float32), audio, np.zeros(right + 200, np.float32)])
    mel = LogMel(audio_cfg, TEKKEN_AUDIO["audio_encoding_config"]["num_mel_bins"]).features(stream)
    return mel[:, : (len(stream) - 400) // 160]  # a frame per 160 samples of the stream before centre padding


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=16.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = VoxtralRealtimeForConditionalGeneration(VoxtralRealtimeConfig()).to(torch.bfloat16).eval()
    torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    mel = torch.from_numpy(padded_mel(args.seconds))[None].to("cuda", torch.bfloat16)
    n_tokens = mel.shape[-1] // 8
    prompt = torch.tensor([[1] + [32] * 38], device="cuda")
    n_new = n_tokens - prompt.shape[1]
    times = []
    for _ in range(args.runs + 1):  # the first run warms up
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_features=mel, input_ids=prompt, num_delay_tokens=6, do_sample=False,
                                 min_new_tokens=n_new, max_new_tokens=n_new,
                                 attention_mask=torch.ones_like(prompt))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    generated = out.shape[1] - prompt.shape[1]
    best = min(times[1:])
    result = {"engine": f"transformers bf16 on {torch.cuda.get_device_name()}", "audio_seconds": args.seconds,
              "load_s": round(load_s, 2), "file_wall_s": round(best, 4), "file_rtf": round(best / args.seconds, 4),
              "generated_tokens": generated, "file_tokens_per_s": round(generated / best, 1),
              "runs_s": [round(t, 4) for t in times[1:]],
              "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    print(json.dumps(result, indent=2) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
