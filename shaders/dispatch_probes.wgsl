// Probes for benchmarks/dispatch_floor.py, which replays the engine's chain of dispatches with these in
// place of its kernels. Both keep a read-write binding, so wgpu orders each after the dispatch before it
// with a barrier, as it does the engine's kernels.

@group(0) @binding(0) var<storage, read_write> sink: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>; // `stream` only

struct Range {
    first: u32, // vec4s of src
    count: u32,
}

@group(0) @binding(2) var<uniform> range: Range; // `stream` only

// Nothing but one store: the cost of a dispatch in the chain itself.
@compute @workgroup_size(256)
fn empty(@builtin(global_invocation_id) id: vec3<u32>) {
    if (all(id == vec3<u32>(0u))) {
        sink[0] += 1u;
    }
}

// A plain grid-stride read of a range of src, the kind of read that streamed 4.1-4.2 TB/s on an H200.
// Four loads per trip, all in flight at once (an index past the range reads the range's last vec4).
@compute @workgroup_size(256)
fn stream(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lanes = nwg.x * 256u;
    let last = range.first + range.count - 1u;
    var acc = vec4<u32>(0u);
    for (var i = range.first + id.x; i <= last; i += 4u * lanes) {
        acc ^= src[i] ^ src[min(i + lanes, last)] ^ src[min(i + 2u * lanes, last)] ^ src[min(i + 3u * lanes, last)];
    }
    if (all(acc == vec4<u32>(0x9E3779B9u))) { // practically never: the store only keeps the reads alive
        sink[1] = 1u;
    }
}
