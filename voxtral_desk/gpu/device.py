"""Choosing the wgpu adapter and opening the device: prefer a discrete GPU, take whatever exists
otherwise (software adapters included, clearly flagged), request the adapter's own limits and only the
optional features it offers. A GPUDevice also keeps what is made once per device (GPUDevice.cached)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

import wgpu

log = logging.getLogger(__name__)

# Lower is better. Software adapters report "CPU".
_TYPE_RANK = {"DiscreteGPU": 0, "IntegratedGPU": 1, "VirtualGPU": 2, "Unknown": 3, "CPU": 4}
# OpenGL lacks subgroups and is usually a fallback path of the same hardware.
_BACKEND_RANK = {"Vulkan": 0, "Metal": 0, "D3D12": 0, "OpenGL": 1, "OpenGLES": 1}
_SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "softpipe", "microsoft basic render", "warp")

# Limits worth raising to what the adapter allows (wgpu's defaults are WebGPU's conservative ones).
_LIMITS = ("max-storage-buffer-binding-size", "max-buffer-size", "max-compute-workgroup-storage-size",
           "max-storage-buffers-per-shader-stage", "max-compute-invocations-per-workgroup",
           "max-compute-workgroup-size-x", "max-compute-workgroup-size-y",
           "max-compute-workgroups-per-dimension", "max-uniform-buffer-binding-size")


T = TypeVar("T")


class GPUUnavailableError(RuntimeError):
    """No wgpu adapter could be opened (no Vulkan/Metal/D3D12/OpenGL driver at all)."""


@dataclass
class GPUDevice:
    adapter: object
    device: object
    info: dict
    limits: dict
    has_subgroups: bool
    is_software: bool
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def cached(self, key: Hashable, make: Callable[[], T]) -> T:
        """What make() returns, made once per device and key: pipelines (pipelines.shared_kernels), the
        placeholder buffers of unused bindings (program.dummy), the subgroup probe's verdict."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def queue(self):
        return self.device.queue

    @property
    def name(self) -> str:
        return self.info.get("device") or self.info.get("description") or "unknown adapter"

    @property
    def max_binding_size(self) -> int:
        """The largest storage binding the device accepts."""
        return int(self.limits["max-storage-buffer-binding-size"])

    @property
    def adapter_summary(self) -> str:
        return self.describe(self.has_subgroups)

    def describe(self, subgroups: bool) -> str:
        """One line for the user: adapter, backend, type, whether subgroup kernels run, and a plain
        warning when it is a software adapter."""
        kind = self.info.get("adapter_type", "Unknown")
        text = f"{self.name} via {self.info.get('backend_type', '?')} ({kind}"
        text += ", subgroups)" if subgroups else ", no subgroups)"
        if self.is_software:
            text += " - software rendering on the CPU: no GPU adapter was found, so this works but slowly"
        return text


def _is_software(info: dict) -> bool:
    name = f"{info.get('device', '')} {info.get('description', '')}".lower()
    return info.get("adapter_type") == "CPU" or any(s in name for s in _SOFTWARE_NAMES)


def _search_text(info: dict) -> str:
    return f"{info.get('device', '')} {info.get('backend_type', '')} {info.get('adapter_type', '')}"


def _rank(adapter) -> tuple:
    info = adapter.info
    return (_TYPE_RANK.get(info.get("adapter_type"), 3), _BACKEND_RANK.get(info.get("backend_type"), 2))


def list_adapters() -> list:
    """All adapters, best first."""
    return sorted(wgpu.gpu.enumerate_adapters_sync(), key=_rank)


def open_device(adapter_name: str | None = None, use_subgroups: bool | None = None) -> GPUDevice:
    """Open the best adapter, or the best whose "device backend type" description contains
    `adapter_name` (e.g. "NVIDIA", "OpenGL"). Subgroups are used when offered unless `use_subgroups`
    is False."""
    try:
        adapters = list_adapters()
        if not adapters:
            fallback = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
            adapters = [fallback] if fallback is not None else []
    except Exception as e:  # the wgpu-native library or the loader itself failed
        raise GPUUnavailableError(f"cannot enumerate GPU adapters: {e}") from None
    if adapter_name:
        adapters = [a for a in adapters if adapter_name.lower() in _search_text(a.info).lower()]
    if not adapters:
        what = f" matching {adapter_name!r}" if adapter_name else ""
        raise GPUUnavailableError(f"no GPU adapter{what} found; install a Vulkan driver (e.g. mesa-vulkan-drivers)")
    errors = []
    for adapter in adapters:
        try:
            return _open(adapter, use_subgroups)
        except Exception as e:  # try the next adapter: drivers fail in many ways
            errors.append(f"{adapter.info.get('device')}: {e}")
    raise GPUUnavailableError("no GPU adapter could be opened: " + "; ".join(errors))


# Storage buffers the Q4 matrix kernels bind (q4_epilogue.wgsl: x, weights, scales, bias, out, norm gain,
# RoPE table, K and V caches, position), above WebGPU's default of 8; desktop drivers offer 31 or more.
STORAGE_BUFFERS_NEEDED = 10


def _open(adapter, use_subgroups: bool | None) -> GPUDevice:
    have = adapter.limits.get("max-storage-buffers-per-shader-stage", 0)
    if have < STORAGE_BUFFERS_NEEDED:
        raise GPUUnavailableError(f"the adapter allows {have} storage buffers per shader stage; the kernels need "
                                  f"{STORAGE_BUFFERS_NEEDED}")
    features = []
    subgroups = "subgroup" in adapter.features and use_subgroups is not False
    if subgroups:
        features.append("subgroup")
    # Timestamps inside compute passes, for profiling (bench --profile); free when unused.
    features += [f for f in ("timestamp-query", "timestamp-query-inside-passes") if f in adapter.features]
    limits = {k: adapter.limits[k] for k in _LIMITS if k in adapter.limits}
    device = adapter.request_device_sync(required_features=features, required_limits=limits)
    info = dict(adapter.info)
    dev = GPUDevice(adapter, device, info, dict(device.limits), subgroups, _is_software(info))
    if dev.is_software:
        log.warning("only a software GPU adapter is available (%s): transcription works, but slowly", dev.name)
    return dev


_default: dict[tuple, GPUDevice] = {}


def default_device(adapter_name: str | None = None, use_subgroups: bool | None = None) -> GPUDevice:
    """One shared device per process and choice: opening a device costs about a second."""
    key = (adapter_name, use_subgroups)
    if key not in _default:
        _default[key] = open_device(adapter_name, use_subgroups)
    return _default[key]
