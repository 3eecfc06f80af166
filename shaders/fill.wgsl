// Fills a buffer with deterministic pseudo-random contents on the GPU, for models made without
// a checkpoint (benchmarks at real sizes). One invocation writes one u32 word.
//   kind 0: two bf16 values uniform in base ± scale
//   kind 1: one f32 uniform in base ± scale
//   kind 2: random bits (MXFP4 nibbles)
//   kind 3: four E8M0 scale bytes in [118, 121] (2^-9 .. 2^-6)

struct Params { n_words: u32, kind: u32, seed: u32, base: f32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn unit(bits: u32) -> f32 {
    // [-1, 1) from the top 24 bits.
    return f32(bits >> 8u) / 8388608.0 - 1.0;
}

@compute @workgroup_size(256)
fn fill_random(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n_words) { return; }
    let r0 = pcg(i ^ pcg(p.seed));
    switch p.kind {
        case 0u: {
            let r1 = pcg(r0);
            let lo = bitcast<u32>(p.base + p.scale * unit(r0)) >> 16u;
            let hi = bitcast<u32>(p.base + p.scale * unit(r1)) & 0xffff0000u;
            dst[i] = lo | hi;
        }
        case 1u: { dst[i] = bitcast<u32>(p.base + p.scale * unit(r0)); }
        case 2u: { dst[i] = r0; }
        default: { dst[i] = 0x76767676u + (r0 & 0x03030303u); }
    }
}
