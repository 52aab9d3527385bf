// Decoder input: x[m] = audio[(pos0 + m) % audio_cap] + E[tok[m]], with E the Q4_0 token embedding
// table read on the GPU. The table may be split by rows across bindings: one dispatch per chunk, and
// only the chunk holding the token writes. One invocation per 32-element block.

struct EmbedParams {
    m: u32,
    d: u32,
    audio_cap: u32,
    row0: u32, // first table row in this chunk
    rows: u32, // rows in this chunk
}

struct State {
    pos0: u32,
    out_idx: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> tok: array<u32>;          // [m] input ids
@group(0) @binding(2) var<storage, read> audio: array<f32>;        // [audio_cap, d] ring
@group(0) @binding(3) var<storage, read> w_nib: array<u32>;    // [rows, G, 4 words, 4 blocks] (weights.interleave_q4)
@group(0) @binding(4) var<storage, read> w_scale: array<u32>;  // [rows, G * 4] f16, two per word
@group(0) @binding(5) var<storage, read_write> x: array<f32>;      // [m, d]
@group(0) @binding(6) var<storage, read> state: State;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let nb = p.d / 32u;
    let b = gid.x;
    let m = gid.y;
    if (b >= nb || m >= p.m) {
        return;
    }
    let t = tok[m];
    if (t < p.row0 || t >= p.row0 + p.rows) {
        return;
    }
    let ng = (nb + 3u) / 4u;
    let grp = (t - p.row0) * ng + b / 4u;
    let d = unpack2x16float(w_scale[grp * 2u + (b % 4u) / 2u])[b % 2u];
    let a = ((state.pos0 + m) % p.audio_cap) * p.d + b * 32u;
    let o = m * p.d + b * 32u;
    for (var w = 0u; w < 4u; w++) {
        let word = w_nib[(grp * 4u + w) * 4u + b % 4u];
        for (var c = 0u; c < 4u; c++) {
            let byte = word >> (8u * c);
            let j = 4u * w + c;
            x[o + j] = audio[a + j] + d * f32(i32(byte & 15u) - 8);
            x[o + 16u + j] = audio[a + 16u + j] + d * f32(i32((byte >> 4u) & 15u) - 8);
        }
    }
}
