// Fused Q4_0 dequantise + matrix-matrix product for many rows of x (m > 8: prefill, the encoder, the
// adapter), as a register-tiled GEMM with the k loop sliced inside the workgroup.
// A workgroup of 256 invocations owns an output tile of TM rows of x by TN weight rows. It walks k in
// chunks of KC = 16*SL: each chunk the x slice [TM, KC] and the weight slice [TN, KC], dequantised
// once, are staged k-major in workgroup memory by all invocations; then each of SL slices of
// TM*TN/64 invocations multiplies its own 16 k rows of the chunk, an invocation accumulating an 8x8
// block of the tile from 4 vec4 reads per k (a broadcast and consecutive vec4s across a warp: no bank
// conflicts) for 64 multiply-adds. At the end the slices' partial tiles are summed through workgroup
// memory. Why slices: the shapes here are small (m <= 128, often n <= 3840), so 8x8 blocks with one
// invocation per block leave most of the GPU idle, and 4x4 blocks read workgroup memory twice as
// often per multiply-add; slicing k keeps both the 8x8 blocks and 8 warps per workgroup.
// The global loads of chunk c+1 are issued before the arithmetic of chunk c to hide their latency.
// Each invocation loads a single row of x and a single weight row (TM and TN divide 256), so the sum
// of squares FLAG_NORM needs is a per-invocation partial, reduced once at the end.
// Weights (weights.interleave_q4) are read as one vec4<u32> per (row, group, word c), i.e. word c of
// four blocks, every 128 elements of k. The padding blocks of the last group, and whatever a last
// chunk reaching past k stages, only ever meet zeros of x (x is never read past k).
// Accumulators are 4x4 blocks held in mat4x4 values and no register array is indexed in a loop: one
// the driver does not unroll would live in local memory (measured 10x slower on an H200).
// Tiles: TM and TN each 64 or 128 (SL = 4, 2 or 1); workgroup memory 16*SL*(TM + TN)*4 bytes
// (32, 24 or 16 KB).
// With p.splits > 1 each workgroup takes one slice of k (whole groups of four blocks) and writes its
// raw partial sums to out as [splits, m, n] for split_sum.wgsl, which adds them and applies the
// epilogue (kernels.linear splits products with few output tiles and a per-element epilogue).
// Grid: (weight-row tiles split over x and y when above 65535, tiles of TM rows of x times splits in z).

const TM: u32 = /*TM*/; // rows of x per tile
const TN: u32 = /*TN*/; // weight rows per tile
const_assert TM % 64u == 0u && TM <= 128u && TN % 64u == 0u && TN <= 128u; // 64 or 128 each
const WG: u32 = 256u;
// Each slice is a TY x TX grid of invocations owning 2 x 2 blocks of 4 rows of x by 4 weight rows:
// rows v*4*TY + 4*ty + (0..3) of x and weight rows u*4*TX + 4*tx + (0..3) (v, u < 2). Blocks TY or
// TX vec4s apart keep a warp's reads of a k row of the tile on consecutive addresses.
const TY: u32 = TM / 8u;
const TX: u32 = TN / 8u;
const SLICE: u32 = TX * TY; // invocations per slice
const SL: u32 = WG / SLICE; // slices: steps of 16 per chunk
const KC: u32 = 16u * SL;   // k per chunk
const XL: u32 = KC * TM / 4u / WG; // x vec4s each invocation loads per chunk: 2 or 4
const WL: u32 = 4u * TN / WG;      // words each invocation loads per group: 1 or 2

var<workgroup> xs: array<vec4<f32>, KC * TM / 4u>; // [KC, TM]; at the end partial blocks, sums of squares
var<workgroup> ws: array<vec4<f32>, KC * TN / 4u>; // [KC, TN]

// acc + a b^T: column i is row i of x (a[i]) times the four weight rows b.
fn outer_add(acc: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(vec4<f32>(a.x), b, acc[0]), fma(vec4<f32>(a.y), b, acc[1]),
                       fma(vec4<f32>(a.z), b, acc[2]), fma(vec4<f32>(a.w), b, acc[3]));
}

// Vec4 q (elements 4q..4q+3) of x row `row` (a vec4 index), 0 past p.m or k; adds its squares to ss.
fn load_x(row: u32, live: bool, q: u32, ss: ptr<function, f32>) -> vec4<f32> {
    if (!live || q >= p.k / 4u) {
        return vec4<f32>(0.0);
    }
    let v = x[row + q];
    *ss += dot(v, v);
    if ((p.flags & FLAG_NORM) != 0u) {
        return v * gain[q];
    }
    return v;
}

// v as k rows 4q..4q+3 of one column of a staging buffer [KC, TM or TN]: e is the vec4 index of row
// 4q and the column's vec4, c the column's component.
fn stage_x(e: u32, c: u32, v: vec4<f32>) {
    xs[e][c] = v.x;
    xs[e + TM / 4u][c] = v.y;
    xs[e + 2u * TM / 4u][c] = v.z;
    xs[e + 3u * TM / 4u][c] = v.w;
}

fn stage_w(e: u32, c: u32, v: vec4<f32>) {
    ws[e][c] = v.x;
    ws[e + TN / 4u][c] = v.y;
    ws[e + 2u * TN / 4u][c] = v.z;
    ws[e + 3u * TN / 4u][c] = v.w;
}

// Slice 0 adds the other slices' 4x4 block acc, one slice at a time through xs ([4 vec4s, SLICE]:
// invocation i of a slice at i + j*SLICE). Called by every invocation (it has barriers).
fn slice_sum(acc: mat4x4<f32>, sl: u32, i: u32) -> mat4x4<f32> {
    var a = acc;
    for (var r = 1u; r < SL; r++) {
        if (sl == r) {
            xs[i] = a[0];
            xs[i + SLICE] = a[1];
            xs[i + 2u * SLICE] = a[2];
            xs[i + 3u * SLICE] = a[3];
        }
        workgroupBarrier();
        if (sl == 0u) {
            a += mat4x4<f32>(xs[i], xs[i + SLICE], xs[i + 2u * SLICE], xs[i + 3u * SLICE]);
        }
        workgroupBarrier();
    }
    return a;
}

// The epilogue for row m of x and weight rows n..n+3 (a slice of k's partial sums, raw, when split).
fn emit(m: u32, n: u32, acc: vec4<f32>, split: u32) {
    if (m >= p.m) {
        return;
    }
    var a = acc;
    if (p.splits > 1u) {
        let i = (split * p.m + m) * p.n + n;
        if (n < p.n) {
            out[i] = a.x;
        }
        if (n + 1u < p.n) {
            out[i + 1u] = a.y;
        }
        if (n + 2u < p.n) {
            out[i + 2u] = a.z;
        }
        if (n + 3u < p.n) {
            out[i + 3u] = a.w;
        }
        return;
    }
    if ((p.flags & FLAG_NORM) != 0u) {
        // Sums of squares sit at xs[0 .. WG/4) (one float per invocation): row r's are those of the
        // WG/TM invocations that loaded it.
        let r = m % TM;
        var sum = 0.0;
        for (var e = r; e < WG; e += TM) {
            sum += xs[e / 4u][e % 4u];
        }
        a *= inv_rms(sum);
    }
    if ((p.flags & (FLAG_SWIGLU | FLAG_ROPE)) != 0u) { // weight rows n, n+1 and n+2, n+3 are pairs
        if (n < p.n) {
            store_pair(m, n, a.x, a.y);
        }
        if (n + 2u < p.n) {
            store_pair(m, n + 2u, a.z, a.w);
        }
    } else {
        if (n < p.n) {
            store_out(m, n, a.x);
        }
        if (n + 1u < p.n) {
            store_out(m, n + 1u, a.y);
        }
        if (n + 2u < p.n) {
            store_out(m, n + 2u, a.z);
        }
        if (n + 3u < p.n) {
            store_out(m, n + 3u, a.w);
        }
    }
}

fn emit_block(m: u32, n: u32, acc: mat4x4<f32>, split: u32) {
    emit(m, n, acc[0], split);
    emit(m + 1u, n, acc[1], split);
    emit(m + 2u, n, acc[2], split);
    emit(m + 3u, n, acc[3], split);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let n0 = (wid.x + wid.y * nwg.x) * TN; // past p.n in the grid's extra workgroups: all masked
    let splits = max(p.splits, 1u);
    let split = wid.z % splits;
    let m0 = wid.z / splits * TM;
    let ng = (p.k / 32u + 3u) / 4u;
    // This workgroup's chunks of k: all, or its slice's whole groups of four blocks (128 elements).
    let chunks = (p.k + KC - 1u) / KC; // the last one may end past k: zeros are staged there
    let split_chunks = (ng + splits - 1u) / splits * (128u / KC);
    let c_first = min(split * split_chunks, chunks);
    let c_end = min(c_first + split_chunks, chunks);

    // What this invocation loads: row xr of x, vec4s xq + j*WG/TM (j < XL) of each chunk, and weight
    // row wr, words wc + j*WG/TN (j < WL) of each group. Staged, vec4 q of x goes to vec4 index
    // xe + j*WG (k row 4q) and component xc, word c to we + j*WG and wcomp plus 16 k rows per step.
    let xr = lid % TM;
    let xq = lid / TM;
    let x_live = m0 + xr < p.m;
    let x_row = (m0 + xr) * (p.x_stride / 4u);
    let xe = xq * TM + xr / 4u;
    let xc = xr % 4u;
    let wr = lid % TN;
    let wc = lid / TN;
    let w_live = n0 + wr < p.n;
    let w_row = (n0 + wr) * ng;
    let we = wc * TN + wr / 4u;
    let wcomp = wr % 4u;
    // What it multiplies: 16 k rows of slice sl of each chunk, block (ty, tx) of the tile.
    let sl = lid / SLICE;
    let tx = lid % SLICE % TX;
    let ty = lid % SLICE / TX;

    var xv0 = vec4<f32>(0.0);
    var xv1 = vec4<f32>(0.0);
    var xv2 = vec4<f32>(0.0); // XL = 4 only
    var xv3 = vec4<f32>(0.0);
    // Words j of the current group's blocks, the current block in .x (rotated after each block), and
    // the blocks' scales, kept 0 for rows past the chunk.
    var words0 = vec4<u32>(0u);
    var words1 = vec4<u32>(0u); // WL = 2 only
    var scale = vec4<f32>(0.0);
    var ss = 0.0;
    var acc00 = mat4x4<f32>(); // block (v, u)
    var acc01 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();

    for (var c = c_first; c <= c_end; c++) {
        if (c > c_first) {
            // Stage chunk c-1, loaded during the previous trip; its buffers' last readers finished
            // before the previous trip's second barrier.
            stage_x(xe, xc, xv0);
            stage_x(xe + WG, xc, xv1);
            if (XL > 2u) {
                stage_x(xe + 2u * WG, xc, xv2);
                stage_x(xe + 3u * WG, xc, xv3);
            }
            // Step i of the chunk is the low (even) or high nibbles of the current block: word c of
            // it holds k rows 4c..4c+3 of the step.
            for (var i = 0u; i < SL; i++) {
                let shift = 4u * ((SL * (c - 1u) + i) % 2u);
                stage_w(we + i * 4u * TN, wcomp, nibbles(words0.x, shift) * scale.x);
                if (WL > 1u) {
                    stage_w(we + i * 4u * TN + WG, wcomp, nibbles(words1.x, shift) * scale.x);
                }
                if (shift != 0u) { // both halves of the block staged: the next block moves to .x
                    words0 = words0.yzwx;
                    words1 = words1.yzwx;
                    scale = scale.yzwx;
                }
            }
            workgroupBarrier();
        }
        if (c < c_end) {
            // Load chunk c, elements KC*c .. KC*c + KC of the x row, and at the start of a group
            // (128 elements) the words and scales of its four blocks.
            let q = KC / 4u * c + xq;
            xv0 = load_x(x_row, x_live, q, &ss);
            xv1 = load_x(x_row, x_live, q + WG / TM, &ss);
            if (XL > 2u) {
                xv2 = load_x(x_row, x_live, q + 2u * WG / TM, &ss);
                xv3 = load_x(x_row, x_live, q + 3u * WG / TM, &ss);
            }
            if ((KC * c) % 128u == 0u && w_live) {
                let i = w_row + KC * c / 128u;
                scale = f16x4(w_scale[i]);
                words0 = w_nib[i * 4u + wc];
                if (WL > 1u) {
                    words1 = w_nib[i * 4u + wc + WG / TN];
                }
            }
        }
        if (c > c_first) {
            let bx = sl * 16u * (TM / 4u) + ty;
            let bw = sl * 16u * (TN / 4u) + tx;
            for (var kk = 0u; kk < 16u; kk++) {
                let a0 = xs[bx + kk * (TM / 4u)];
                let a1 = xs[bx + kk * (TM / 4u) + TY];
                let b0 = ws[bw + kk * (TN / 4u)];
                let b1 = ws[bw + kk * (TN / 4u) + TX];
                acc00 = outer_add(acc00, a0, b0);
                acc01 = outer_add(acc01, a0, b1);
                acc10 = outer_add(acc10, a1, b0);
                acc11 = outer_add(acc11, a1, b1);
            }
            workgroupBarrier();
        }
    }

    // The last barrier of the loop freed xs for the sums over slices.
    let i = lid % SLICE;
    acc00 = slice_sum(acc00, sl, i);
    acc01 = slice_sum(acc01, sl, i);
    acc10 = slice_sum(acc10, sl, i);
    acc11 = slice_sum(acc11, sl, i);
    if ((p.flags & FLAG_NORM) != 0u) {
        xs[lid / 4u][lid % 4u] = ss;
        workgroupBarrier();
    }
    if (sl == 0u) {
        emit_block(m0 + 4u * ty, n0 + 4u * tx, acc00, split);
        emit_block(m0 + 4u * ty, n0 + 4u * (TX + tx), acc01, split);
        emit_block(m0 + 4u * (TY + ty), n0 + 4u * tx, acc10, split);
        emit_block(m0 + 4u * (TY + ty), n0 + 4u * (TX + tx), acc11, split);
    }
}
