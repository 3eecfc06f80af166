// Streaming read of a buffer, the device's practical memory-bandwidth ceiling. The folded words
// are written only under a condition the data never meets, so no read can be skipped.
// read_bandwidth: 16-byte words strided by the whole grid (coalesced: what GPUs want).
// read_bandwidth_blocked: each invocation reads one contiguous block (what CPU drivers want).
// The ceiling is the faster of the two.

struct Params { n_vec4: u32, threads: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(256)
fn read_bandwidth(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    var acc = vec4<u32>(0u);
    for (var i = t; i < p.n_vec4; i += p.threads) {
        acc ^= src[i];
    }
    if (acc.x == 0x9e3779b9u && acc.y == 0x7f4a7c15u) {
        sink[0] = acc.z ^ acc.w;
    }
}

@compute @workgroup_size(256)
fn read_bandwidth_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    let per = (p.n_vec4 + p.threads - 1u) / p.threads;
    let end = min(p.n_vec4, (t + 1u) * per);
    var acc = vec4<u32>(0u);
    for (var i = t * per; i < end; i++) {
        acc ^= src[i];
    }
    if (acc.x == 0x9e3779b9u && acc.y == 0x7f4a7c15u) {
        sink[0] = acc.z ^ acc.w;
    }
}
