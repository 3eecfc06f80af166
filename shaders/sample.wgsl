// Token sampling (the algorithm and its tie rules are documented in src/sampling.rs).
// `sample_prep`: z = clamped, penalised, temperature-scaled logits, plus one maximum per workgroup.
// `sample_select`: one workgroup turns z into integer keys q and weights w, finds the top-k and
// top-p thresholds by radix selection over q, and draws by inverse CDF in index order.
// All sums are exact 64-bit integers (vec2<u32>: lo, hi), so the result does not depend on
// reduction order and matches the CPU reference token for token.

const WG: u32 = 256u;
const LIM: f32 = 1e30;
// Logits per prep workgroup.
const CHUNK: u32 = 1024u;
// Keys at or beyond Q_DEAD (z more than 22 below the maximum) have weight 0.
const Q_DEAD: u32 = 1441792u;
const Q_ALL: u32 = 1441791u;
// Start of the fine table inside `tables` (coarse table: 1408 entries).
const FINE: u32 = 1408u;

// ---- sample_prep ----

struct PrepParams {
    n: u32,
    offset: u32,
    n_pen: u32,
    inv_temp: f32,
    rep: f32,
    inv_rep: f32,
    presence: f32,
    frequency: f32,
}

@group(0) @binding(0) var<uniform> pp: PrepParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> pens: array<u32>;
@group(0) @binding(3) var<storage, read_write> z_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> max_out: array<f32>;

var<workgroup> zs: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG>;

// NaN -> -LIM, everything else clamped to [-LIM, LIM]; decided on the bits so that
// infinities are handled without relying on IEEE behaviour.
fn clean(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7f800000u) == 0x7f800000u) {
        if ((b & 0x007fffffu) != 0u || (b & 0x80000000u) != 0u) { return -LIM; }
        return LIM;
    }
    return clamp(v, -LIM, LIM);
}

// Repetition penalty (positive logits times 1/p, the rest times p), then presence and frequency.
fn penalized(x: f32, count: u32) -> f32 {
    var y = clean(x);
    y = select(y * pp.rep, y * pp.inv_rep, y > 0.0);
    return clean(y - (pp.presence + pp.frequency * f32(count)));
}

@compute @workgroup_size(256)
fn sample_prep(
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let lid = lid3.x;
    let g = wid.x + wid.y * nwg.x;
    let base = g * CHUNK;
    if (base >= pp.n) { return; }
    for (var j = 0u; j < CHUNK / WG; j++) {
        let k = j * WG + lid;
        if (base + k < pp.n) { zs[k] = clean(clean(logits[pp.offset + base + k]) * pp.inv_temp); }
    }
    workgroupBarrier();
    // Token ids are unique in the penalty list, so no two invocations write the same slot.
    for (var e = lid; e < pp.n_pen; e += WG) {
        let id = pens[2u * e];
        let count = pens[2u * e + 1u];
        if (count > 0u && id >= base && id < base + CHUNK && id < pp.n) {
            zs[id - base] = clean(penalized(logits[pp.offset + id], count) * pp.inv_temp);
        }
    }
    workgroupBarrier();
    var m = -LIM;
    for (var j = 0u; j < CHUNK / WG; j++) {
        let k = j * WG + lid;
        if (base + k < pp.n) {
            let v = zs[k];
            z_out[base + k] = v;
            m = max(m, v);
        }
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
        workgroupBarrier();
    }
    if (lid == 0u) { max_out[g] = red[0]; }
}

// ---- sample_select ----

struct SelectParams {
    n: u32,
    n_groups: u32,
    greedy: u32,
    // 0 when top-k is off.
    top_k: u32,
    // round(top_p * 2^24); 0 when top-p is off.
    top_p24: u32,
    // Largest key min-p keeps (Q_ALL when off).
    t_cap: u32,
    // Random 32 bits: the draw is u = rnd / 2^32.
    rnd: u32,
    out_index: u32,
}

@group(0) @binding(0) var<uniform> sp: SelectParams;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> group_max: array<f32>;
@group(0) @binding(3) var<storage, read> tables: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

var<workgroup> red_max: array<f32, WG>;
var<workgroup> hist_lo: array<atomic<u32>, 128>;
var<workgroup> hist_hi: array<atomic<u32>, 128>;
var<workgroup> part_lo: array<u32, WG>;
var<workgroup> part_hi: array<u32, WG>;
var<workgroup> first_idx: atomic<u32>;
var<workgroup> sel_base: u32;
var<workgroup> sel_below: vec2<u32>;
var<workgroup> sel_target: vec2<u32>;
var<workgroup> sel_done: u32;
var<workgroup> draw_r: vec2<u32>;

// 64-bit unsigned helpers on (lo, hi).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return vec2<u32>((mid << 16u) | (ll & 0xffffu), hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u));
}

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn ge64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x >= b.x);
}

// Key: the gap to the maximum in units of 2^-16, Q_DEAD when the gap is 22 or more.
fn key(v: f32, zmax: f32) -> u32 {
    let d = zmax - v;
    if (d < 22.0) { return u32(d * 65536.0); }
    return Q_DEAD;
}

// Weight: floor(coarse[q >> 10] * fine[q & 1023] / 2^30), about 2^30 * exp(-q / 65536).
fn weight(q: u32) -> u32 {
    if (q >= Q_DEAD) { return 0u; }
    let m = mul_wide(tables[q >> 10u], tables[FINE + (q & 1023u)]);
    return (m.y << 2u) | (m.x >> 30u);
}

fn flush_count(bin: u32, n: u32) {
    if (n != 0u) { atomicAdd(&hist_lo[bin], n); }
}

fn flush_sum(bin: u32, s: vec2<u32>) {
    if (s.x != 0u || s.y != 0u) {
        let old = atomicAdd(&hist_lo[bin], s.x);
        atomicAdd(&hist_hi[bin], s.y + select(0u, 1u, old + s.x < old));
    }
}

fn clear_hist(lid: u32) {
    if (lid < 128u) {
        atomicStore(&hist_lo[lid], 0u);
        atomicStore(&hist_hi[lid], 0u);
    }
}

// Smallest key t with #{live tokens with key <= t} >= k, by three rounds of 7-bit digits;
// Q_ALL when fewer than k tokens are live.
fn select_count(lid: u32, zmax: f32, k: u32) -> u32 {
    var base = 0u;
    var below = 0u;
    if (lid == 0u) { sel_done = 0u; }
    for (var pass_i = 0u; pass_i < 3u; pass_i++) {
        let shift = 14u - 7u * pass_i;
        let want = base >> (shift + 7u);
        clear_hist(lid);
        workgroupBarrier();
        var run_bin = 0u;
        var run_n = 0u;
        for (var i = lid; i < sp.n; i += WG) {
            let q = key(z[i], zmax);
            if (q < Q_DEAD && (q >> (shift + 7u)) == want) {
                let b = (q >> shift) & 127u;
                if (b != run_bin) {
                    flush_count(run_bin, run_n);
                    run_bin = b;
                    run_n = 0u;
                }
                run_n += 1u;
            }
        }
        flush_count(run_bin, run_n);
        workgroupBarrier();
        if (lid == 0u) {
            var acc = below;
            var pick = 128u;
            for (var b = 0u; b < 128u; b++) {
                let h = atomicLoad(&hist_lo[b]);
                if (acc + h >= k) { pick = b; break; }
                acc += h;
            }
            if (pick == 128u) {
                sel_done = 1u;
                sel_base = Q_ALL;
            } else {
                sel_base = base + (pick << shift);
                sel_below = vec2<u32>(acc, 0u);
            }
        }
        workgroupBarrier();
        base = sel_base;
        below = sel_below.x;
        if (workgroupUniformLoad(&sel_done) != 0u) { break; }
    }
    return base;
}

// Smallest key t with sum{w : key <= t, key <= limit} >= ceil(S * p24 / 2^24), S being the
// sum over key <= limit.
fn select_mass(lid: u32, zmax: f32, limit: u32, p24: u32) -> u32 {
    var base = 0u;
    var below = vec2<u32>(0u, 0u);
    for (var pass_i = 0u; pass_i < 3u; pass_i++) {
        let shift = 14u - 7u * pass_i;
        let want = base >> (shift + 7u);
        clear_hist(lid);
        workgroupBarrier();
        var run_bin = 0u;
        var run_s = vec2<u32>(0u, 0u);
        for (var i = lid; i < sp.n; i += WG) {
            let q = key(z[i], zmax);
            if (q <= limit && (q >> (shift + 7u)) == want) {
                let b = (q >> shift) & 127u;
                if (b != run_bin) {
                    flush_sum(run_bin, run_s);
                    run_bin = b;
                    run_s = vec2<u32>(0u, 0u);
                }
                run_s = add64(run_s, vec2<u32>(weight(q), 0u));
            }
        }
        flush_sum(run_bin, run_s);
        workgroupBarrier();
        if (lid == 0u) {
            if (pass_i == 0u) {
                var total = vec2<u32>(0u, 0u);
                for (var b = 0u; b < 128u; b++) {
                    total = add64(total, vec2<u32>(atomicLoad(&hist_lo[b]), atomicLoad(&hist_hi[b])));
                }
                // ceil(total * p24 / 2^24) = (total >> 24) * p24 + ceil((total mod 2^24) * p24 / 2^24)
                let a = (total.x >> 24u) | (total.y << 8u);
                let low = mul_wide(total.x & 0xffffffu, p24);
                let rounded = add64(low, vec2<u32>(0xffffffu, 0u));
                let frac = (rounded.x >> 24u) | (rounded.y << 8u);
                sel_target = add64(mul_wide(a, p24), vec2<u32>(frac, 0u));
            }
            let target_mass = sel_target;
            var acc = below;
            var pick = 127u;
            for (var b = 0u; b < 128u; b++) {
                let next = add64(acc, vec2<u32>(atomicLoad(&hist_lo[b]), atomicLoad(&hist_hi[b])));
                if (ge64(next, target_mass)) { pick = b; break; }
                acc = next;
            }
            sel_base = base + (pick << shift);
            sel_below = acc;
        }
        workgroupBarrier();
        base = sel_base;
        below = sel_below;
    }
    return base;
}

// Inverse CDF in index order over the tokens with key <= t: the first index whose running
// weight exceeds r = floor(S * rnd / 2^32). Each invocation owns one contiguous range.
fn draw(lid: u32, zmax: f32, t: u32) {
    let span = (sp.n + WG - 1u) / WG;
    let start = min(lid * span, sp.n);
    let end = min(start + span, sp.n);
    var s = vec2<u32>(0u, 0u);
    for (var i = start; i < end; i++) {
        let q = key(z[i], zmax);
        if (q <= t) { s = add64(s, vec2<u32>(weight(q), 0u)); }
    }
    part_lo[lid] = s.x;
    part_hi[lid] = s.y;
    workgroupBarrier();
    if (lid == 0u) {
        var acc = vec2<u32>(0u, 0u);
        for (var j = 0u; j < WG; j++) {
            let v = vec2<u32>(part_lo[j], part_hi[j]);
            part_lo[j] = acc.x;
            part_hi[j] = acc.y;
            acc = add64(acc, v);
        }
        draw_r = add64(mul_wide(acc.y, sp.rnd), vec2<u32>(mul_wide(acc.x, sp.rnd).y, 0u));
    }
    workgroupBarrier();
    let r = draw_r;
    var acc = vec2<u32>(part_lo[lid], part_hi[lid]);
    if (ge64(r, acc) && !ge64(r, add64(acc, s))) {
        for (var i = start; i < end; i++) {
            let q = key(z[i], zmax);
            if (q <= t) {
                acc = add64(acc, vec2<u32>(weight(q), 0u));
                if (!ge64(r, acc)) {
                    out[sp.out_index] = i;
                    break;
                }
            }
        }
    }
}

@compute @workgroup_size(256)
fn sample_select(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    var m = -LIM;
    for (var g = lid; g < sp.n_groups; g += WG) { m = max(m, group_max[g]); }
    red_max[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { red_max[lid] = max(red_max[lid], red_max[lid + s]); }
        workgroupBarrier();
    }
    let zmax = red_max[0];

    if (sp.greedy != 0u) {
        // The lowest index holding the maximum.
        if (lid == 0u) { atomicStore(&first_idx, 0xffffffffu); }
        workgroupBarrier();
        for (var i = lid; i < sp.n; i += WG) {
            if (z[i] == zmax) {
                atomicMin(&first_idx, i);
                break;
            }
        }
        workgroupBarrier();
        if (lid == 0u) { out[sp.out_index] = atomicLoad(&first_idx); }
        return;
    }

    var t = Q_ALL;
    if (sp.top_k != 0u) { t = select_count(lid, zmax, sp.top_k); }
    if (sp.top_p24 != 0u) { t = select_mass(lid, zmax, t, sp.top_p24); }
    draw(lid, zmax, min(t, sp.t_cap));
}
