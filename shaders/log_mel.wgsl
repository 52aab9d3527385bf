// Log-mel features of STFT frames: audio.LogMel.log_mel on the GPU (MODEL.md §3), so that a live step's
// audio goes to the GPU as samples and no numpy work stands between the microphone and the encoder.
// Frame f is the window of samples f * hop .. f * hop + N_FFT; its features land in row out_row0 + f of
// out (the encoder's conv input, time-major). One workgroup per frame: the windowed samples and the
// twiddles (cos, sin)(2 pi j / N_FFT), from float64 tables as numpy's are, go to workgroup memory; the
// DFT of the frame is taken in two stages of direct sums (Cooley-Tukey with N_FFT = N1 * N2, no
// recursion), then one invocation per mel band applies its filter over the bins where it is not zero
// (at most 9 of the 201), log10 and the floor. On an H100 a live step's GPU time was 4.104 ms with one
// direct sum of N_FFT terms per bin and 4.080 with the two stages (each invocation's chain of dependent
// multiply-adds 60 long instead of 400; in this shape the kernel took 14 us per live step under
// per-dispatch timestamps, against 36 direct, and 43 with each band's filter summed over all 201 bins).
// Grid: (frames over x and y).

const N_FFT: u32 = /*N_FFT*/;
const N1: u32 = /*N1*/; // N_FFT = N1 * N2 (N1 = 1 leaves one direct sum per bin)
const N2: u32 = /*N2*/;
const N_BINS: u32 = N_FFT / 2u + 1u;
const WG: u32 = 256u;
const LOG10_2: f32 = 0.30102999566398120;

struct MelParams {
    frames: u32,
    hop: u32,
    n_mels: u32,
    out_row0: u32,
    floor: f32, // of log10 of the mel power: global_log_mel_max - 8
}

@group(0) @binding(0) var<uniform> p: MelParams;
@group(0) @binding(1) var<storage, read> samples: array<f32>; // [(frames - 1) * hop + N_FFT]
@group(0) @binding(2) var<storage, read> window: array<f32>; // [N_FFT] periodic Hann
@group(0) @binding(3) var<storage, read> twiddles: array<vec2<f32>>; // [N_FFT]
@group(0) @binding(4) var<storage, read> filters: array<f32>; // [N_BINS, n_mels]
@group(0) @binding(5) var<storage, read> bands: array<vec2<u32>>; // [n_mels]: bins first .. end - 1 of a band's filter
@group(0) @binding(6) var<storage, read_write> out: array<f32>; // [out_row0 + frames, n_mels]

var<workgroup> xs: array<f32, N_FFT>;
var<workgroup> tw: array<vec2<f32>, N_FFT>;
var<workgroup> inner: array<vec2<f32>, N_FFT>; // [N2, N1] the first stage's complex sums
var<workgroup> power: array<f32, N_BINS>;

// j + step mod N_FFT, for j, step < N_FFT: the twiddle index of the next term of a sum.
fn next_twiddle(j: u32, step: u32) -> u32 {
    return select(j + step, j + step - N_FFT, j + step >= N_FFT);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let f = wid.x + wid.y * nwg.x;
    if (f >= p.frames) { // the same for the whole workgroup
        return;
    }
    for (var n = lid; n < N_FFT; n += WG) {
        xs[n] = samples[f * p.hop + n] * window[n];
        tw[n] = twiddles[n];
    }
    workgroupBarrier();
    // With n = N2 * n1 + n2: inner[n2, k1] = sum over n1 of xs[n] e^(-2 pi i n1 k1 / N1), a twiddle
    // step of N2 * k1 in the table of N_FFT.
    for (var e = lid; e < N_FFT; e += WG) {
        let n2 = e / N1;
        let k1 = e % N1;
        var sum = vec2<f32>(0.0);
        var j = 0u;
        for (var n1 = 0u; n1 < N1; n1++) {
            sum += xs[N2 * n1 + n2] * tw[j];
            j = next_twiddle(j, N2 * k1);
        }
        inner[e] = vec2<f32>(sum.x, -sum.y);
    }
    workgroupBarrier();
    // X[k] = sum over n2 of inner[n2, k mod N1] e^(-2 pi i n2 k / N_FFT).
    for (var k = lid; k < N_BINS; k += WG) {
        let k1 = k % N1;
        var re = 0.0;
        var im = 0.0;
        var j = 0u;
        for (var n2 = 0u; n2 < N2; n2++) {
            let y = inner[n2 * N1 + k1];
            re += y.x * tw[j].x + y.y * tw[j].y;
            im += y.y * tw[j].x - y.x * tw[j].y;
            j = next_twiddle(j, k); // k < N_BINS < N_FFT
        }
        power[k] = re * re + im * im;
    }
    workgroupBarrier();
    for (var m = lid; m < p.n_mels; m += WG) {
        var mel = 0.0;
        let band = bands[m];
        for (var b = band.x; b < band.y; b++) {
            mel += power[b] * filters[b * p.n_mels + m];
        }
        let x = max(log2(max(mel, 1e-10)) * LOG10_2, p.floor);
        out[(p.out_row0 + f) * p.n_mels + m] = (x + 4.0) / 4.0;
    }
}
