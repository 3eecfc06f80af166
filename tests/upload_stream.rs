//! The upload plan every file format streams through: byte ranges of a file land in GPU
//! buffers whatever the chunking of the bytes, also when ranges overlap (one tensor widened
//! into several buffers) and when a chunk ends inside a range.

mod common;

use common::check::read_f32;
use wgpt::gpu::{Gpu, GpuOptions};
use wgpt::loader::stream::{StreamPlan, Widen};

#[test]
fn overlapping_ranges_get_every_byte_in_any_chunking() {
    let g = pollster::block_on(Gpu::new(&GpuOptions::default())).expect("GPU adapter");
    // A file: 6 bytes of header, 8 f16 values, then 8 f32 values.
    let halves: Vec<f32> = (0..8).map(|i| i as f32 * 0.5 - 1.0).collect();
    let floats: Vec<f32> = (0..8).map(|i| i as f32 * 3.0 + 0.25).collect();
    let mut file = vec![7u8; 6];
    file.extend(halves.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()));
    file.extend(floats.iter().flat_map(|v| v.to_le_bytes()));
    for piece in [1, 3, 5, 7, 64] {
        let (lo, hi, all) = (g.storage("lo", 16), g.storage("hi", 16), g.storage("all", 32));
        let mut plan = StreamPlan::new([("file".to_string(), file.len() as u64)]);
        // The same f16 tensor widened twice into two buffers, and the f32 tensor copied.
        plan.widen(0, 6..22, Widen::F16, vec![(0, 4, lo.clone(), 0)]).unwrap();
        plan.widen(0, 6..22, Widen::F16, vec![(4, 8, hi.clone(), 0)]).unwrap();
        plan.copy(0, 22..54, &all, 0).unwrap();
        for chunk in file.chunks(piece) {
            plan.feed(&g, 0, chunk).unwrap();
        }
        plan.finish(&g).unwrap();
        assert_eq!(read_f32(&g, &lo, 4), halves[..4], "chunks of {piece}");
        assert_eq!(read_f32(&g, &hi, 4), halves[4..], "chunks of {piece}");
        assert_eq!(read_f32(&g, &all, 8), floats, "chunks of {piece}");
    }
}
