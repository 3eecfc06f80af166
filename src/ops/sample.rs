//! GPU sampling launcher: two dispatches per token (`sample_prep` over the vocabulary in
//! 1024-logit workgroups, then `sample_select` in one workgroup). The result is the same token
//! as `sampling::sample_cpu`; the algorithm is documented in `crate::sampling`.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, Recorder};
use crate::sampling::{self, SamplingParams};

use super::params::{SamplePrepParams, SampleSelectParams};

kernel!(SAMPLE_PREP, "sample.wgsl", "sample_prep", SamplePrepParams);
kernel!(SAMPLE_SELECT, "sample.wgsl", "sample_select", SampleSelectParams);

/// The sampling kernels (registered for shader tests).
pub const KERNELS: &[Kernel] = &[SAMPLE_PREP, SAMPLE_SELECT];

/// Logits per `sample_prep` workgroup.
const CHUNK: u32 = 1024;

/// Buffers one sampler needs, allocated once per session for the largest vocabulary.
pub struct SampleScratch {
    /// Largest vocabulary these buffers serve.
    pub n_vocab: u32,
    /// The penalised, temperature-scaled logits `z` of the last draw (f32, `n_vocab`).
    pub z: wgpu::Buffer,
    /// One maximum of `z` per prep workgroup.
    pub group_max: wgpu::Buffer,
    /// `sampling::weight_tables()`.
    pub tables: wgpu::Buffer,
}

impl SampleScratch {
    pub fn new(gpu: &Gpu, n_vocab: u32) -> SampleScratch {
        let n_vocab = n_vocab.max(1);
        SampleScratch {
            n_vocab,
            z: gpu.storage("sample z", n_vocab as u64 * 4),
            group_max: gpu.storage("sample group max", n_vocab.div_ceil(CHUNK) as u64 * 4),
            tables: gpu.storage_with("sample weight tables", bytemuck::cast_slice(sampling::weight_tables())),
        }
    }
}

/// Samples one token from `logits[logits_offset .. logits_offset + n_vocab]` and writes it to
/// `out[0]`. `penalties` holds `n_penalties` (token id, count) pairs from
/// `sampling::penalty_pairs_for` (unique ids); it is ignored when `params` has no penalty. The
/// logits buffer is only read. `step` selects the random number (the same step and seed give
/// the same token).
#[allow(clippy::too_many_arguments)]
pub fn sample(
    rec: &mut Recorder,
    logits: &wgpu::Buffer,
    logits_offset: u32,
    n_vocab: u32,
    penalties: &wgpu::Buffer,
    n_penalties: u32,
    params: &SamplingParams,
    step: u64,
    scratch: &SampleScratch,
    out: &wgpu::Buffer,
) -> Result<()> {
    sample_at(rec, logits, logits_offset, n_vocab, penalties, n_penalties, params, step, scratch, out, 0)
}

/// [`sample`] writing the token to `out[out_index]` (several draws recorded into one encoder).
#[allow(clippy::too_many_arguments)]
pub fn sample_at(
    rec: &mut Recorder,
    logits: &wgpu::Buffer,
    logits_offset: u32,
    n_vocab: u32,
    penalties: &wgpu::Buffer,
    n_penalties: u32,
    params: &SamplingParams,
    step: u64,
    scratch: &SampleScratch,
    out: &wgpu::Buffer,
    out_index: u32,
) -> Result<()> {
    params.validate()?;
    if n_vocab == 0 || n_vocab > scratch.n_vocab {
        return Err(Error::Input(format!(
            "sample: n_vocab {n_vocab} outside 1..={} of the scratch buffers",
            scratch.n_vocab
        )));
    }
    if (logits_offset as u64 + n_vocab as u64) * 4 > logits.size() {
        return Err(Error::Input(format!(
            "sample: logits {logits_offset}..+{n_vocab} past the end of a {}-byte buffer",
            logits.size()
        )));
    }
    let n_pen = if params.has_penalties() { n_penalties } else { 0 };
    if n_pen as u64 * 8 > penalties.size() {
        return Err(Error::Input(format!(
            "sample: {n_pen} penalty pairs do not fit a {}-byte buffer",
            penalties.size()
        )));
    }
    if (out_index as u64 + 1) * 4 > out.size() {
        return Err(Error::Input(format!("sample: out[{out_index}] past the end of a {}-byte buffer", out.size())));
    }
    let d = params.derive(n_vocab, step);
    let groups = n_vocab.div_ceil(CHUNK);
    let (gx, gy) = rec.gpu.grid_2d(groups);
    rec.dispatch(&SAMPLE_PREP,
        &SamplePrepParams {
            n: n_vocab, offset: logits_offset, n_pen, inv_temp: d.inv_temp, rep: d.rep, inv_rep: d.inv_rep,
            presence: d.presence, frequency: d.frequency,
        },
        &[logits, penalties, &scratch.z, &scratch.group_max],
        [gx, gy, 1],
    );
    rec.dispatch(&SAMPLE_SELECT,
        &SampleSelectParams {
            n: n_vocab, n_groups: groups, greedy: d.greedy as u32, top_k: d.top_k, top_p24: d.top_p24,
            t_cap: d.t_cap, rnd: d.rnd, out_index,
        },
        &[&scratch.z, &scratch.group_max, &scratch.tables, out],
        [1, 1, 1],
    );
    Ok(())
}
