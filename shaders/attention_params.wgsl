// The parameters of attention.wgsl and attention_combine.wgsl (kernels.attention), and the score of a
// key a query does not see.

struct AttnParams {
    m: u32,
    n_heads: u32,
    n_kv: u32,
    head_dim: u32,
    cap: u32,
    window: u32,
    scale: f32,
    splits: u32,
}

const NONE: f32 = -3.0e38;
