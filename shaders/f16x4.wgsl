// Four f16 values packed in two u32 words, as f32: Q4_0 block scales and rows of the KV cache.
fn f16x4(v: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
}
