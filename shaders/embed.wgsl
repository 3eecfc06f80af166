// Embedding gather: out[t, :] = table[token[t], :] for the tokens that fall in this slice of rows.
// The table is bf16, two values per u32; the output is f32.

struct Params { n_tokens: u32, hidden: u32, row_start: u32, row_end: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn embed_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let pair = gid.x;
    let half_h = p.hidden / 2u;
    if (t >= p.n_tokens || pair >= half_h) { return; }
    let tok = tokens[t];
    if (tok < p.row_start || tok >= p.row_end) { return; }
    let w = table[(tok - p.row_start) * half_h + pair];
    out[t * p.hidden + 2u * pair] = bitcast<f32>(w << 16u);
    out[t * p.hidden + 2u * pair + 1u] = bitcast<f32>(w & 0xffff0000u);
}
