// Four elements of a block word as q - 8 (shift 0: the low nibbles of its bytes, 4: the high ones).
// OR-ing a 4-bit q into the mantissa of 2^23 gives the float 2^23 + q exactly, so no integer-to-float
// conversion (a quarter-rate instruction) is needed.
fn nibbles(word: u32, shift: u32) -> vec4<f32> {
    let q = (vec4<u32>(word >> shift, word >> (shift + 8u), word >> (shift + 16u), word >> (shift + 24u)) & vec4<u32>(15u))
            | vec4<u32>(0x4B000000u);
    return bitcast<vec4<f32>>(q) - 8388616.0; // (2^23 + q) - (2^23 + 8)
}

