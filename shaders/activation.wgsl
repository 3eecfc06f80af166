// Element-wise activations of the dense MLP.

struct Params { n: u32, row: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> act: array<f32>;

// act = silu(gate) * act, where act holds the up projection (SwiGLU of the Llama family).
@compute @workgroup_size(256)
fn silu_mul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.n) { return; }
    let g = gate[i];
    act[i] = g / (1.0 + exp(-g)) * act[i];
}
