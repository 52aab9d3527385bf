// Causal sliding-window attention over a ring KV cache, with grouped KV heads. One workgroup of 64 per
// (head, query row). Query row m is at position pos = state.pos0 + m and sees keys lo..pos with
// lo = max(0, pos + 1 - window); key j lives in cache slot j % cap. Two passes: the row maximum of the
// scores first, then exp(s - max) in chunks of 64 keys shared through workgroup memory, accumulated
// into p.v by invocations that each own output dims d, d+64, ... (head_dim <= 256).

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

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;        // [m, H * hd], rotated
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;  // [cap, KV * hd]
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;  // [cap, KV * hd]
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // [m, H * hd]
@group(0) @binding(5) var<storage, read> state: State;

var<workgroup> qs: array<f32, 256>;
var<workgroup> ps: array<f32, 64>;

fn score(key_pos: u32, kv_off: u32) -> f32 {
    let base = (key_pos % p.cap) * p.n_kv * p.head_dim + kv_off;
    var s = 0.0;
    for (var d = 0u; d < p.head_dim; d++) {
        s += qs[d] * k_cache[base + d];
    }
    return s * p.scale;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let h = wid.x;
    let m = wid.y;
    let hd = p.head_dim;
    let kv_off = (h / (p.n_heads / p.n_kv)) * hd;
    let pos = state.pos0 + m;
    let lo = select(0u, pos + 1u - p.window, pos + 1u > p.window);
    let n = pos - lo + 1u;
    for (var d = lid; d < hd; d += 64u) {
        qs[d] = q[(m * p.n_heads + h) * hd + d];
    }
    workgroupBarrier();

    var mx = -3.0e38;
    for (var i = lid; i < n; i += 64u) {
        mx = max(mx, score(lo + i, kv_off));
    }
    mx = team_max(mx, lid, 64u, sg_size);

    var lsum = 0.0;
    var acc: array<f32, 4>;
    for (var c0 = 0u; c0 < n; c0 += 64u) {
        var e = 0.0;
        if (c0 + lid < n) {
            e = exp(score(lo + c0 + lid, kv_off) - mx);
        }
        ps[lid] = e;
        lsum += e;
        workgroupBarrier();
        let cnt = min(64u, n - c0);
        for (var k = 0u; k < cnt; k++) {
            let base = ((lo + c0 + k) % p.cap) * p.n_kv * hd + kv_off;
            let pk = ps[k];
            for (var s = 0u; s < 4u; s++) {
                let d = lid + 64u * s;
                if (d < hd) {
                    acc[s] += pk * v_cache[base + d];
                }
            }
        }
        workgroupBarrier();
    }
    let total = team_sum(lsum, lid, 64u, sg_size);
    for (var s = 0u; s < 4u; s++) {
        let d = lid + 64u * s;
        if (d < hd) {
            out[(m * p.n_heads + h) * hd + d] = acc[s] / total;
        }
    }
}
