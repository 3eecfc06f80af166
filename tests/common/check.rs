//! Helpers of the kernel tests: random inputs, reading buffers back, and the relative-error
//! check every kernel is held to against its CPU reference.

use half::bf16;
use rand::{rngs::StdRng, Rng};
use wgpt::gpu::{Gpu, Recorder};

/// `n` values uniform in ±`scale`.
pub fn randn(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

/// The bf16 bit patterns of `v` (round to nearest).
pub fn bf16_bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|x| bf16::from_f32(*x).to_bits()).collect()
}

/// The first `n` u32 words of a buffer.
pub fn read_u32(g: &Gpu, buf: &wgpu::Buffer, n: usize) -> Vec<u32> {
    let bytes = pollster::block_on(g.read(buf, 0, n as u64 * 4)).unwrap();
    bytemuck::cast_slice(&bytes).to_vec()
}

/// The first `n` f32 values of a buffer.
pub fn read_f32(g: &Gpu, buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
    read_u32(g, buf, n).into_iter().map(f32::from_bits).collect()
}

/// |got - want| / (1 + |want|) <= tol everywhere (and finite); prints the worst.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let d = (a - b).abs() / (1.0 + b.abs());
        assert!(d.is_finite() && d <= tol, "{what}[{i}]: got {a}, want {b}");
        worst = worst.max(d);
    }
    eprintln!("{what}: max rel err {worst:.2e} over {} values", got.len());
}

/// Submits a recorded pass and waits for it.
pub fn submit(g: &Gpu, enc: Recorder) {
    enc.submit();
    g.wait().unwrap();
}
