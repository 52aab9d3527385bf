// Causal sliding-window attention over a ring KV cache, with grouped KV heads. One workgroup of 256 per
// (head, block of ROWS consecutive query rows). Query row m is at position pos = state.pos0 + m and
// sees keys lo..pos with lo = max(0, pos + 1 - window); key j lives in cache slot j % cap, as f16.
// The block's keys (from its first query's lo to its last query's position) go in rounds of KEYS with
// an online softmax (running maximum, earlier sums rescaled). Each invocation scores keys of the round
// against all the block's queries, and a team of WG/ROWS invocations per query takes its softmax. The
// weighted sum of values is split over groups of head_dim/4 invocations that each own one vec4 of the
// output for every query of the block and take every few keys, so value rows are read coalesced; the
// groups' partial sums are added at the end. Key and value rows are read once per block rather than once
// per query. One query per workgroup (ROWS 1, KEYS 1024) is the variant for one to a few rows, which
// need the workgroups (kernels.attention_block). head_dim % 4 == 0, <= 256.
// With KEY_LANES > 1 (one query per workgroup: its key reads serve no other query) a team of KEY_LANES
// invocations scores each key instead (score_keys), so a key row is read in one coalesced piece rather
// than one invocation per row, whose neighbours read rows n_kv * head_dim * 2 bytes apart: on an H200 a
// live step's GPU time 4.20 -> 4.13 ms at the start of a dictation, 4.95 -> 4.81 after 240 s (the
// decoder's attention 0.86 -> 0.75 ms per step, stamped per dispatch). The team's four keys are summed
// by team_sum4, whose first shuffles exchange halves (log2(team) + 1 shuffles, not 4 log2(team)), each
// of its invocations 0-3 ending with one key's score: a live step's GPU time 3.89 -> 3.86 ms at the
// start, 4.15 -> 4.09 after 60 s, 4.38 -> 4.31 after 240 s (H200).
// The loops over memory issue several loads per trip before their sums: a key row's vec4s four at a
// time (score), two vec4s of four keys (score_keys), eight value rows per group. With one load per trip
// each invocation waited on one load at a time, and a live step's attention took 1.30 ms of GPU time
// on an H200; four per trip 1.0 ms. Eight value rows rather than four: a live step's GPU time 4.49 ->
// 4.42 ms after 60 s of dictation, 4.81 -> 4.69 after 240 s (the encoder's attention, whose window of
// 750 keys is full after 15 s, 0.78 -> 0.72 ms per step), the same at the start.
// With p.splits > 1 (few queries: too few workgroups for the GPU) the block's keys are split into
// p.splits runs, one per workgroup (grid z), each writing its queries' unnormalised sums of values with
// their softmax maximum and denominator to `partials` [splits, m, H, hd/4 + 1]; attention_combine.wgsl
// weighs the runs into `out`.

struct State {
    pos0: u32,
    out_idx: u32,
}

const WG: u32 = 256u;
const ROWS: u32 = /*ROWS*/; // query rows per workgroup
const KEYS: u32 = /*KEYS*/; // keys per round
const KEY_LANES: u32 = /*KEY_LANES*/; // invocations per key in the scores: 1, or head_dim / 8
const TQ: u32 = WG / ROWS;  // invocations per query in the softmax and the sum of values
const KEY_TEAMS: u32 = WG / KEY_LANES; // keys scored side by side

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;        // [m, H * hd], rotated
@group(0) @binding(2) var<storage, read> k_cache: array<vec2<u32>>;  // [cap, KV * hd] f16, 4 per vec2
@group(0) @binding(3) var<storage, read> v_cache: array<vec2<u32>>;  // [cap, KV * hd] f16, 4 per vec2
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>; // [m, H * hd]
@group(0) @binding(5) var<storage, read> state: State;
@group(0) @binding(6) var<storage, read_write> partials: array<vec4<f32>>; // [splits, m, H, hd/4 + 1]

var<workgroup> qs: array<vec4<f32>, ROWS * 64u>; // [ROWS, hd/4]
var<workgroup> ps: array<f32, ROWS * KEYS>;      // [ROWS, KEYS] scores, then softmax numerators
var<workgroup> part: array<vec4<f32>, WG>;
var<workgroup> rescales: array<f32, ROWS>; // per query: the round's rescaling of earlier sums
var<workgroup> sums: array<f32, ROWS>;     // per query: the softmax denominator
var<workgroup> maxes: array<f32, ROWS>;    // and its running maximum

// Per invocation, the score of its current key for query row j of the block (lines marked "each row
// j" are repeated for j = 0 .. ROWS-1 by the loader), as separate variables: arrays indexed in a loop
// the driver did not unroll lived in local memory.
var<private> s{j}: f32; // each row j
// And this invocation's vec4 of each query's output, summed over its group of keys.
var<private> acc{j}: vec4<f32>; // each row j

// The key at position kp scored against every query of the block (rows past the block's masked).
fn score(kp: u32, base: u32, hd4: u32, first: u32, nq: u32) {
    s{j} = 0.0; // each row j
    var d = 0u;
    for (; d + 4u <= hd4; d += 4u) {
        let k0 = f16x4(k_cache[base + d]);
        let k1 = f16x4(k_cache[base + d + 1u]);
        let k2 = f16x4(k_cache[base + d + 2u]);
        let k3 = f16x4(k_cache[base + d + 3u]);
        s{j} += dot(qs[{j}u * 64u + d], k0) + dot(qs[{j}u * 64u + d + 1u], k1) + dot(qs[{j}u * 64u + d + 2u], k2) + dot(qs[{j}u * 64u + d + 3u], k3); // each row j
    }
    for (; d < hd4; d++) {
        let kd = f16x4(k_cache[base + d]);
        s{j} += dot(qs[{j}u * 64u + d], kd); // each row j
    }
    s{j} = select(NONE, s{j} * p.scale, {j}u < nq && sees(first + {j}u, kp)); // each row j
}

// vec4 `off` of the value row of the key at position kp, or 0 (a key past the round's).
fn value(kp: u32, used: bool, row4: u32, off: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), f16x4(v_cache[(kp % p.cap) * row4 + off]), used);
}

// Whether the query at position pos sees the key at position kp.
fn sees(pos: u32, kp: u32) -> bool {
    return kp <= pos && kp + p.window > pos;
}

// The round's keys at .. at + cnt - 1 (by position) scored by teams of KEY_LANES invocations: invocation
// d of a team reads vec4s 2d and 2d + 1 of the key row (head_dim = 8 * KEY_LANES), the team adds up the
// parts (team_sum4), and invocation d < 4 stores the scores of key d. Four keys per team and trip; every
// invocation takes the same trips (team_sum4 may have barriers).
fn score_keys(at: u32, cnt: u32, row4: u32, kv_off: u32, first: u32, nq: u32, lid: u32, sg: u32) {
    let d = lid % KEY_LANES;
    let qa{j} = qs[{j}u * 64u + 2u * d]; // each row j
    let qb{j} = qs[{j}u * 64u + 2u * d + 1u]; // each row j
    for (var i0 = 0u; i0 < cnt; i0 += 4u * KEY_TEAMS) {
        let i = vec4<u32>(i0 + lid / KEY_LANES) + vec4<u32>(0u, 1u, 2u, 3u) * KEY_TEAMS;
        let kp = vec4<u32>(at) + min(i, vec4<u32>(cnt - 1u)); // keys past the round's read its last
        let r = (kp % p.cap) * row4 + kv_off + 2u * d;
        let a0 = f16x4(k_cache[r.x]);
        let b0 = f16x4(k_cache[r.x + 1u]);
        let a1 = f16x4(k_cache[r.y]);
        let b1 = f16x4(k_cache[r.y + 1u]);
        let a2 = f16x4(k_cache[r.z]);
        let b2 = f16x4(k_cache[r.z + 1u]);
        let a3 = f16x4(k_cache[r.w]);
        let b3 = f16x4(k_cache[r.w + 1u]);
        let t{j} = team_sum4(vec4<f32>(dot(qa{j}, a0) + dot(qb{j}, b0), dot(qa{j}, a1) + dot(qb{j}, b1), dot(qa{j}, a2) + dot(qb{j}, b2), dot(qa{j}, a3) + dot(qb{j}, b3)), lid, KEY_LANES, sg); // each row j
        if (d < 4u && i[d] < cnt) { // invocation d of the team holds the scores of key d of the four
            ps[{j}u * KEYS + i[d]] = select(NONE, t{j} * p.scale, {j}u < nq && sees(first + {j}u, kp[d])); // each row j
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let h = wid.x;
    let m0 = wid.y * ROWS;
    let nq = min(ROWS, p.m - m0);
    let hd4 = p.head_dim / 4u;
    let row4 = p.n_kv * hd4; // vec4s per cache row
    let kv_off = (h / (p.n_heads / p.n_kv)) * hd4;
    let first = state.pos0 + m0; // position of the block's first query
    let lo = select(0u, first + 1u - p.window, first + 1u > p.window);
    let n = first + nq - lo; // keys some query of the block sees
    // This workgroup's run of them: keys c_first .. c_end (all of them unless split).
    let per_split = (n + p.splits - 1u) / p.splits;
    let c_first = min(wid.z * per_split, n);
    let c_end = min(c_first + per_split, n);
    for (var e = lid; e < ROWS * 64u; e += WG) {
        let j = e / 64u;
        let d = e % 64u;
        if (j < nq && d < hd4) {
            qs[e] = q[((m0 + j) * p.n_heads + h) * hd4 + d];
        }
    }
    workgroupBarrier();

    // This invocation's query in the softmax and its place in the query's team; its vec4 of the output
    // and group of keys in the sum of values.
    let qb = lid / TQ;
    let t = lid % TQ;
    let groups = WG / hd4;
    let g = lid / hd4;
    let dl = lid % hd4;
    var run_max = NONE;
    var lsum = 0.0;
    for (var c0 = c_first; c0 < c_end; c0 += KEYS) {
        let cnt = min(KEYS, c_end - c0); // keys of this round
        if (KEY_LANES > 1u) {
            score_keys(lo + c0, cnt, row4, kv_off, first, nq, lid, sg_size);
        } else {
            for (var i = lid; i < cnt; i += WG) { // an invocation's own entries of ps: no barrier needed
                let kp = lo + c0 + i;
                score(kp, (kp % p.cap) * row4 + kv_off, hd4, first, nq);
                ps[{j}u * KEYS + i] = s{j}; // each row j
            }
        }
        workgroupBarrier();
        var chunk_max = NONE;
        for (var i = t; i < cnt; i += TQ) {
            chunk_max = max(chunk_max, ps[qb * KEYS + i]);
        }
        let new_max = max(run_max, team_max(chunk_max, lid, TQ, sg_size));
        let rescale = exp(run_max - new_max); // 0 on the first round with a key the query sees
        var esum = 0.0;
        for (var i = t; i < cnt; i += TQ) {
            let s = ps[qb * KEYS + i];
            let e = select(0.0, exp(s - new_max), s > NONE); // unseen keys weigh 0, even in a round of only them
            ps[qb * KEYS + i] = e;
            esum += e;
        }
        lsum = lsum * rescale + team_sum(esum, lid, TQ, sg_size);
        run_max = new_max;
        if (t == 0u) {
            rescales[qb] = rescale;
        }
        workgroupBarrier(); // publishes ps and rescales (team_sum has no barrier when a team fits in a subgroup)
        // Each value row is read once for all the block's queries.
        acc{j} *= rescales[{j}u]; // each row j
        if (g < groups) {
            // Eight keys per trip (those past the round's read its last key, weighted 0).
            let at = lo + c0;
            let off = kv_off + dl;
            for (var k = g; k < cnt; k += 8u * groups) {
                let k1 = min(k + groups, cnt - 1u);
                let k2 = min(k + 2u * groups, cnt - 1u);
                let k3 = min(k + 3u * groups, cnt - 1u);
                let k4 = min(k + 4u * groups, cnt - 1u);
                let k5 = min(k + 5u * groups, cnt - 1u);
                let k6 = min(k + 6u * groups, cnt - 1u);
                let k7 = min(k + 7u * groups, cnt - 1u);
                let v0 = value(at + k, true, row4, off);
                let v1 = value(at + k1, k + groups < cnt, row4, off);
                let v2 = value(at + k2, k + 2u * groups < cnt, row4, off);
                let v3 = value(at + k3, k + 3u * groups < cnt, row4, off);
                let v4 = value(at + k4, k + 4u * groups < cnt, row4, off);
                let v5 = value(at + k5, k + 5u * groups < cnt, row4, off);
                let v6 = value(at + k6, k + 6u * groups < cnt, row4, off);
                let v7 = value(at + k7, k + 7u * groups < cnt, row4, off);
                acc{j} += ps[{j}u * KEYS + k] * v0 + ps[{j}u * KEYS + k1] * v1 + ps[{j}u * KEYS + k2] * v2 + ps[{j}u * KEYS + k3] * v3 + ps[{j}u * KEYS + k4] * v4 + ps[{j}u * KEYS + k5] * v5 + ps[{j}u * KEYS + k6] * v6 + ps[{j}u * KEYS + k7] * v7; // each row j
            }
        }
        workgroupBarrier(); // ps and rescales are rewritten by the next round
    }
    if (t == 0u) {
        sums[qb] = lsum;
        maxes[qb] = run_max;
    }
    finish({j}u, acc{j}, m0, nq, h, hd4, lid, wid.z); // each row j
}

// Row j of the block: the groups' partial sums of values added and divided by the query's softmax sum,
// or, split, written undivided with the maximum and the sum. Called by every invocation (barriers;
// j < nq is uniform).
fn finish(j: u32, acc: vec4<f32>, m0: u32, nq: u32, h: u32, hd4: u32, lid: u32, split: u32) {
    if (j >= nq) {
        return;
    }
    part[lid] = acc;
    workgroupBarrier();
    if (lid < hd4) {
        var total = vec4<f32>(0.0);
        for (var i = 0u; i < WG / hd4; i++) {
            total += part[i * hd4 + lid];
        }
        let row = (m0 + j) * p.n_heads + h;
        if (p.splits == 1u) {
            out[row * hd4 + lid] = total / sums[j];
        } else {
            let at = ((split * p.m) * p.n_heads + row) * (hd4 + 1u);
            partials[at + lid] = total;
            if (lid == 0u) {
                partials[at + hd4] = vec4<f32>(maxes[j], sums[j], 0.0, 0.0);
            }
        }
    }
    workgroupBarrier();
}
