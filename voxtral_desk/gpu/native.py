"""Every call into wgpu-native's private API (wgpu-py's `wgpu.backends.wgpu_native._api` and `_ffi`): shader
modules without runtime checks, buffer reads that poll the device on the calling thread, and the three
commands of every recorded dispatch.

wgpu-py does not offer these, and its private API (the C structs, enums and functions it binds, the
wrappers' `_internal` handles) changes between releases: that is why wgpu is pinned below 0.33 in
pyproject.toml, and a wgpu upgrade starts here.
"""
from __future__ import annotations

import time

import numpy as np
from wgpu.backends.wgpu_native import _api
from wgpu.backends.wgpu_native._ffi import ffi, lib

# Program.encode calls these straight, once per dispatch: wgpu-py's wrappers cost twice as much CPU time
# per dispatch (docs/SPEED.md, sixth session).
set_pipeline = lib.wgpuComputePassEncoderSetPipeline
set_bind_group = lib.wgpuComputePassEncoderSetBindGroup
dispatch_workgroups = lib.wgpuComputePassEncoderDispatchWorkgroups
NULL = ffi.NULL


def handle(wrapped) -> object:
    """The wgpu-native handle of a wgpu-py object (pipeline, bind group, compute pass), for the calls above."""
    return wrapped._internal


def unchecked_shader_module(device, label: str, code: str):
    """The WGSL compiled without the checks naga adds by default (a clamp of every array index and a
    counter bounding every loop), as a wgpu-py GPUShaderModule."""
    text, name = ffi.new("char[]", code.encode()), ffi.new("char[]", label.encode())
    source = ffi.new("WGPUShaderSourceWGSL *")
    source.chain.next = ffi.NULL
    source.chain.sType = lib.WGPUSType_ShaderSourceWGSL
    source.code.data, source.code.length = text, len(text) - 1  # without the terminating zero
    descriptor = ffi.new("WGPUShaderModuleDescriptor *")
    descriptor.nextInChain = ffi.cast("WGPUChainedStruct *", source)
    descriptor.label.data, descriptor.label.length = name, len(name) - 1
    # libf raises the device's validation errors (a WGSL error) as Python exceptions, as wgpu-py does.
    module = _api.libf.wgpuDeviceCreateShaderModuleTrusted(device._internal, descriptor,
                                                          lib.WGPUShaderRuntimeChecks_None)
    return _api.GPUShaderModule(label, module, device)


@ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
def _mapped(status, message, outcome, _):
    text = ffi.string(message.data, message.length).decode(errors="replace") if message.data else ""
    ffi.from_handle(outcome).append((status, text))


def map_read(device, buffer, nbytes: int, spin_s: float) -> np.ndarray:
    """The first nbytes of a MAP_READ buffer (uint8), once the work submitted before has finished: mapped
    through wgpu-native with the device polled on this thread, busily for up to spin_s seconds, then
    blocking (wgpu-py's map_sync waits through a polling thread and an extra empty submit)."""
    outcome: list[tuple[int, str]] = []
    userdata = ffi.new_handle(outcome)
    info = ffi.new("WGPUBufferMapCallbackInfo *")
    info.mode = lib.WGPUCallbackMode_AllowProcessEvents
    info.callback = _mapped
    info.userdata1 = userdata
    lib.wgpuBufferMapAsync(buffer._internal, lib.WGPUMapMode_Read, 0, nbytes, info[0])
    native_device = device._internal
    spin_until = time.perf_counter() + spin_s
    while not outcome:
        lib.wgpuDevicePoll(native_device, time.perf_counter() >= spin_until, ffi.NULL)
    status, text = outcome[0]
    if status != lib.WGPUMapAsyncStatus_Success:
        raise RuntimeError(f"could not read back the {buffer.label or 'GPU'} buffer ({text or f'map status {status}'})")
    data = lib.wgpuBufferGetConstMappedRange(buffer._internal, 0, nbytes)
    out = np.frombuffer(ffi.buffer(data, nbytes), dtype=np.uint8).copy()
    lib.wgpuBufferUnmap(buffer._internal)
    return out
