// Moves the decoder's GPU-side position counter past the rows just decoded, so the next step recorded
// in the same submit reads its own position without a CPU round trip.

struct AdvanceParams {
    m: u32,
}

struct State {
    pos0: u32,
    out_idx: u32,
}

@group(0) @binding(0) var<uniform> p: AdvanceParams;
@group(0) @binding(1) var<storage, read_write> state: State;

@compute @workgroup_size(1)
fn main() {
    state.pos0 += p.m;
    state.out_idx += p.m;
}
