// Exact (erf) GELU. WGSL has no erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the same
// approximation as voxtral_desk.reference.erf.

fn erf_as(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-a * a));
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_as(x * 0.70710678118654752));
}
