// Greedy token choice in two dispatches: argmax_partial reduces slices of SLICE logits of each row to
// (value, index) pairs, argmax reduces a row's pairs and stores the id. Ties go to the first index,
// as numpy. One workgroup of 256 each.

const SLICE: u32 = 4096u; // logits per argmax_partial workgroup
const NONE: u32 = 0xffffffffu;

struct ArgmaxParams {
    m: u32,
    vocab: u32,
    parts: u32, // slices per row: ceil(vocab / SLICE)
}

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

// Whether (v, i) beats (bv, bi): larger, or equal with a smaller index; NONE is no candidate.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

// Reduce every invocation's candidate; the winner ends in best_v[0], best_i[0].
fn reduce_best(v: f32, i: u32, lid: u32) {
    best_v[lid] = v;
    best_i[lid] = i;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s / 2u) {
        if (lid < s && better(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
            best_v[lid] = best_v[lid + s];
            best_i[lid] = best_i[lid + s];
        }
        workgroupBarrier();
    }
}
