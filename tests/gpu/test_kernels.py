"""Each WGSL kernel against numpy on odd sizes (checks.run_kernel_checks, also used by --self-test)."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import wgpu

from voxtral_desk.gpu import shaders_dir
from voxtral_desk.gpu.checks import run_kernel_checks
from voxtral_desk.gpu.device import open_device
from voxtral_desk.gpu.subgroups import subgroups_work
from voxtral_desk.gpu.pipelines import KERNEL_SOURCES, Kernels
from voxtral_desk.gpu.program import MAX_GROUPS, Program, empty, map_read, upload

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def checks(gpu):
    results = run_kernel_checks(gpu)
    for c in results:
        print(c)
    return results


def test_every_kernel_passes(checks):
    failed = [str(c) for c in checks if not c.passed]
    assert not failed, "\n".join(failed)


def test_every_kernel_is_checked(checks, gpu):
    names = " ".join(c.name for c in checks)
    for kernel in KERNEL_SOURCES:
        assert kernel in names, f"{kernel} has no check"
    if gpu.has_subgroups:  # both reduction variants ran
        assert "(subgroup)" in names and "(workgroup)" in names


def test_kernels_pass_with_runtime_checks(gpu):
    """The engine's kernels are compiled without naga's index clamps (pipelines.shader_module). With the
    clamps, an access out of bounds lands on another element instead of robust access's zero or
    nothing, so a kernel that relied on straying would fail here."""
    results = run_kernel_checks(gpu, runtime_checks=True)
    assert all(c.passed for c in results), "\n".join(str(c) for c in results if not c.passed)


def test_kernels_on_a_second_backend_without_subgroups():
    """wgpu's OpenGL backend has no subgroups: the workgroup-memory kernels must stand alone there."""
    from voxtral_desk.gpu.device import GPUUnavailableError, list_adapters

    if not any(a.info.get("backend_type") == "OpenGL" for a in list_adapters()):
        pytest.skip("no OpenGL adapter on this machine")
    try:
        gl = open_device("OpenGL")
    except GPUUnavailableError as e:
        pytest.skip(f"OpenGL adapter listed but cannot be opened: {e}")
    results = run_kernel_checks(gl)
    assert not gl.has_subgroups
    assert all(c.passed for c in results), "\n".join(str(c) for c in results if not c.passed)


def test_a_bad_dispatch_is_reported(gpu):
    """Program.encode hands dispatches straight to wgpu-native; an invalid one must still raise."""
    prog = Program(Kernels(gpu), "bad grid")
    state = empty(gpu, 16)
    prog.dispatch("advance", [state], lambda m: (), lambda m: (MAX_GROUPS + 1, 1, 1))
    prog.build().prepare(1)
    encoder = gpu.device.create_command_encoder()
    with pytest.raises(wgpu.GPUValidationError, match="65535"):
        prog.encode(encoder, 1)
        encoder.finish()


@pytest.mark.parametrize("spin", [False, True])
def test_map_read_returns_what_the_gpu_copied(gpu, spin):
    """program.map_read waits for the submitted copy itself (wgpu-native's poll on this thread), also
    when it spins first as it does on hardware adapters."""
    gpu = dataclasses.replace(gpu, is_software=not spin)
    data = np.arange(64, dtype=np.uint32) * 7919
    staging = gpu.device.create_buffer(size=data.nbytes, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)
    for start in (0, 16):  # twice: the buffer is unmapped again after a read
        src = upload(gpu, data[start:])
        encoder = gpu.device.create_command_encoder()
        encoder.copy_buffer_to_buffer(src, 0, staging, 0, (64 - start) * 4)
        gpu.queue.submit([encoder.finish()])
        got = map_read(gpu, staging, (64 - start) * 4).view(np.uint32)
        np.testing.assert_array_equal(got, data[start:])


def test_map_read_failure_is_an_error(gpu):
    unmappable = empty(gpu, 64, "not mappable")
    with pytest.raises(RuntimeError, match="could not read back the not mappable buffer"):
        map_read(gpu, unmappable, 64)


def test_subgroup_probe_catches_wrong_subgroup_sums(gpu, tmp_path):
    """subgroups.subgroups_work, which GPUEngine asks before building subgroup kernels: the package's
    reductions agree with the workgroup-memory ones; a team sum that skips its first butterfly step (lanes
    paired wrongly, as where subgroups are not consecutive invocations) does not."""
    assert gpu.has_subgroups, "the devices these tests run on (lavapipe, NVIDIA) offer subgroups"
    broken = tmp_path / "shaders"
    shutil.copytree(shaders_dir(), broken)
    source = (broken / "reduce_subgroup.wgsl").read_text()
    loop = "for (var off = 1u; off < width; off = off * 2u) {"
    assert source.count(loop) == 2  # team_sum and team_max
    (broken / "reduce_subgroup.wgsl").write_text(source.replace(loop, loop.replace("off = 1u", "off = 2u"), 1))
    assert subgroups_work(gpu)
    assert not subgroups_work(gpu, broken)
