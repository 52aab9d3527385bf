"""GPUEngine: the model on any wgpu adapter through our WGSL kernels, behind the same engine interface as
reference.ReferenceEngine (see session.Engine). Everything from the log-mel of the samples to the argmax
runs on the GPU, with the weights kept in Q4_0."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from .decoder import DecoderStage, DecoderState
from .device import GPUDevice, default_device
from .encoder import EncoderStage, EncoderState
from .ops import KV_DTYPE
from .pipelines import shared_kernels
from .program import buffer_bytes
from .subgroups import subgroups_work
from .weights import WeightReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GPUState:
    """A stream's state in host memory (GPUEngine.save_state)."""

    n_delay: int
    encoder: EncoderState
    decoder: DecoderState


class GPUEngine:
    kv_dtype = KV_DTYPE  # keys and values are cached as f16: half the memory and attention reads

    def __init__(self, model, trace: bool = False, max_binding_size: int | None = None, *,
                 device: GPUDevice | None = None, adapter: str | None = None, use_subgroups: bool | None = None,
                 max_batch: int = 64, encoder_chunk_tokens: int = 64, steps_per_submit: int = 16,
                 shaders: Path | None = None):
        """max_binding_size lowers the size above which a weight is split across bindings (to exercise
        that path on devices that never need it). max_batch: prompt positions per batched forward;
        encoder_chunk_tokens: tokens per encoder submit (bounds activations and the encoder KV ring;
        longer chunks shorten file mode a little for much more memory: docs/SPEED.md, seventh session);
        steps_per_submit: generated tokens recorded per submit.
        shaders: a folder of WGSL pieces to build the kernels from instead of the package's."""
        self.gpu = device or default_device(adapter, use_subgroups)
        if self.gpu.has_subgroups and use_subgroups is not False and not subgroups_work(self.gpu):
            log.warning("subgroup reductions give wrong results on %s; using workgroup memory instead", self.gpu.name)
            use_subgroups = False
        self.kernels = shared_kernels(self.gpu, use_subgroups, shaders)
        self.config: ModelConfig = model.config
        self.name = f"gpu: {self.gpu.describe(self.kernels.subgroups)}"
        limit = (self.gpu.max_binding_size if max_binding_size is None
                 else min(max_binding_size, self.gpu.max_binding_size))
        self.binding_limit = limit
        reader = WeightReader(model)
        self.decoder = DecoderStage(self.kernels, self.config, reader, limit, max_batch, steps_per_submit)
        self.encoder = EncoderStage(self.kernels, self.config, reader, limit, encoder_chunk_tokens, trace)
        self.encoder.build(self.decoder)
        self.trace = {} if trace else None
        self.n_delay = None

    @property
    def is_software(self) -> bool:
        return self.gpu.is_software

    @property
    def gpu_memory_bytes(self) -> int:
        """Bytes of the GPU buffers this engine holds (weights, caches, activations)."""
        return buffer_bytes(self.encoder, self.decoder)

    # --- engine interface -------------------------------------------------------------------------

    def reset(self, prompt: list[int], n_delay: int) -> None:
        self.encoder.reset()
        self.decoder.reset(prompt)
        if n_delay != self.n_delay:
            self.decoder.set_delay(n_delay)
            self.n_delay = n_delay
        if self.trace is not None:
            self.trace.clear()

    def save_state(self) -> GPUState:
        """A snapshot of the stream (session.Engine.save_state), copied to host memory rather than kept
        on the GPU, whose memory is scarcer, and only the rows of the caches the stream can still read. At
        full size: 256 KiB per encoder frame, at most 187 MiB (from 15 s of audio on), 104 KiB per decoder
        position, at most 832 MiB (from 11 minutes on), 12 KiB per queued audio embedding; what copying
        them costs is in docs/SPEED.md."""
        return GPUState(self.n_delay, self.encoder.save_state(), self.decoder.save_state())

    def restore_state(self, state: GPUState) -> None:
        """session.Engine.restore_state: also puts the snapshot's delay (its ada-norm scales) back."""
        if state.n_delay != self.n_delay:
            self.decoder.set_delay(state.n_delay)
            self.n_delay = state.n_delay
        self.decoder.restore_state(state.decoder)
        self.encoder.restore_state(state.encoder)

    @property
    def audio_tokens_ready(self) -> int:
        return self.decoder.audio_tokens_ready

    def synchronize(self) -> None:
        """Wait for every submitted command buffer (for timing; decode() returns finished results). A
        readback is queued after all earlier work; wgpu-py 0.32's on_submitted_work_done is broken."""
        self.gpu.queue.read_buffer(self.decoder.state, 0, 8)

    def encode(self, audio: np.ndarray) -> None:
        """audio: samples spanning 8k STFT frames (session.Engine.encode) -> k audio embeddings queued (on
        the GPU) for the decoder."""
        self.encoder.encode(np.ascontiguousarray(audio, dtype=np.float32), self.trace)

    def decode(self, n: int) -> np.ndarray:
        """Run the next n decoder positions; returns the argmax id of each (the next position's token)."""
        return self.decoder.decode(n, self.trace, while_waiting=self.encoder.record_ahead)
