// Causal sliding-window attention over a ring KV cache, with grouped KV heads. One workgroup of 256 per
// (head, query row). Query row m is at position pos = state.pos0 + m and sees keys lo..pos with
// lo = max(0, pos + 1 - window); key j lives in cache slot j % cap, as f16. Keys go in chunks of CHUNK with an
// online softmax (running maximum, earlier sums rescaled): each invocation scores four keys of the chunk
// (so the encoder's whole window and the decoder's first 1024 positions take one round of reductions
// and barriers), and the weighted sum of values is split over G groups of L = head_dim/4 invocations,
// each owning one vec4 of the output and taking keys g, g+G, ... of the chunk, so value rows are read
// coalesced and many keys are in flight at once; the G partial sums are added at the end.
// head_dim % 4 == 0, <= 256.

struct AttnParams {
    m: u32,
    n_heads: u32,
    n_kv: u32,
    head_dim: u32,
    cap: u32,
    window: u32,
    scale: f32,
}

struct State {
    pos0: u32,
    out_idx: u32,
}

const WG: u32 = 256u;
const CHUNK: u32 = 4u * WG;

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;        // [m, H * hd], rotated
@group(0) @binding(2) var<storage, read> k_cache: array<vec2<u32>>;  // [cap, KV * hd] f16, 4 per vec2
@group(0) @binding(3) var<storage, read> v_cache: array<vec2<u32>>;  // [cap, KV * hd] f16, 4 per vec2
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>; // [m, H * hd]
@group(0) @binding(5) var<storage, read> state: State;

var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> ps: array<f32, CHUNK>; // scores, then softmax numerators, of the chunk's keys
var<workgroup> part: array<vec4<f32>, WG>;

fn score(base: u32, hd4: u32) -> f32 {
    var s = 0.0;
    var d = 0u;
    for (; d + 4u <= hd4; d += 4u) { // four independent loads in flight
        let k0 = f16x4(k_cache[base + d]);
        let k1 = f16x4(k_cache[base + d + 1u]);
        let k2 = f16x4(k_cache[base + d + 2u]);
        let k3 = f16x4(k_cache[base + d + 3u]);
        s += dot(qs[d], k0) + dot(qs[d + 1u], k1) + dot(qs[d + 2u], k2) + dot(qs[d + 3u], k3);
    }
    for (; d < hd4; d++) {
        s += dot(qs[d], f16x4(k_cache[base + d]));
    }
    return s * p.scale;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let h = wid.x;
    let m = wid.y;
    let hd4 = p.head_dim / 4u;
    let row4 = p.n_kv * hd4; // vec4s per cache row
    let kv_off = (h / (p.n_heads / p.n_kv)) * hd4;
    let pos = state.pos0 + m;
    let lo = select(0u, pos + 1u - p.window, pos + 1u > p.window);
    let n = pos - lo + 1u;
    let qrow = (m * p.n_heads + h) * hd4;
    if (lid < hd4) {
        qs[lid] = q[qrow + lid];
    }
    workgroupBarrier();

    let groups = WG / hd4;
    let g = lid / hd4;
    let dl = lid % hd4;
    var run_max = -3.0e38;
    var lsum = 0.0;
    var acc = vec4<f32>(0.0);
    for (var c0 = 0u; c0 < n; c0 += CHUNK) {
        var chunk_max = -3.0e38;
        for (var i = lid; i < CHUNK; i += WG) { // an invocation's own entries of ps: no barrier needed
            var s = -3.0e38;
            if (c0 + i < n) {
                s = score(((lo + c0 + i) % p.cap) * row4 + kv_off, hd4);
            }
            ps[i] = s;
            chunk_max = max(chunk_max, s);
        }
        let new_max = max(run_max, team_max(chunk_max, lid, WG, sg_size));
        let rescale = exp(run_max - new_max); // 0 on the first chunk
        var esum = 0.0;
        for (var i = lid; i < CHUNK; i += WG) {
            var e = 0.0;
            if (c0 + i < n) {
                e = exp(ps[i] - new_max);
            }
            ps[i] = e;
            esum += e;
        }
        lsum = lsum * rescale + team_sum(esum, lid, WG, sg_size); // its barriers also publish ps
        acc *= rescale;
        run_max = new_max;
        if (g < groups) {
            let cnt = min(CHUNK, n - c0);
            for (var k = g; k < cnt; k += groups) {
                acc += ps[k] * f16x4(v_cache[((lo + c0 + k) % p.cap) * row4 + kv_off + dl]);
            }
        }
        workgroupBarrier(); // ps is rewritten by the next chunk
    }
    part[lid] = acc;
    workgroupBarrier();
    if (lid < hd4) {
        var total = vec4<f32>(0.0);
        for (var i = 0u; i < groups; i++) {
            total += part[i * hd4 + lid];
        }
        out[qrow + lid] = total / lsum;
    }
}
