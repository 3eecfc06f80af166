//! The uniform parameters of every kernel, one `#[repr(C)]` struct per WGSL parameter struct,
//! field for field (`tests/shaders.rs` checks each against the struct naga reads from the kernel's
//! shader). Fields keep the WGSL names; flags are u32 bit sets as the shaders read them.

use crate::kernel_params;

kernel_params! {
    /// SwiGLU of a dense MLP (`activation.wgsl`).
    SiluMulParams { n: u32, row: u32 }
    /// Both argmax stages (`argmax.wgsl`).
    ArgmaxParams { n: u32, offset: u32, n_parts: u32 }
    /// Attention partials over one cache segment (`attention.wgsl`).
    AttentionParams {
        n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32, pos0: u32, ring: u32, window: u32,
        seg_start: u32, p_begin: u32, p_end: u32, split_len: u32, part_base: u32, n_parts: u32, scale: f32,
        kv_f16: u32, tile_keys: u32,
    }
    /// The merge of attention partials with the sinks (`attention.wgsl`).
    AttnMergeParams { n_tokens: u32, n_q_heads: u32, head_dim: u32, n_parts: u32 }
    /// The streaming-read bandwidth probes (`bandwidth.wgsl`).
    BandwidthParams { n_vec4: u32, threads: u32 }
    /// The bf16 embedding gather (`embed.wgsl`).
    EmbedParams { n_tokens: u32, hidden: u32, row_start: u32, row_end: u32 }
    /// Random weights written on the GPU (`fill.wgsl`).
    FillParams { n_words: u32, kind: u32, seed: u32, base: f32, scale: f32 }
    /// bf16 mat-vecs and the prefill mat-mat (`matmul_bf16.wgsl`).
    MatmulParams {
        n_tokens: u32, rows: u32, cols: u32, x_offset: u32, x_stride: u32, y_stride: u32, y_offset: u32,
        flags: u32, norm_eps: f32,
    }
    /// The fused q/k/v projection with RoPE and the KV-cache write (`matmul_bf16.wgsl`).
    QkvRopeParams {
        n_tokens: u32, cols: u32, x_stride: u32, has_bias: u32, n_q_heads: u32, n_kv_heads: u32,
        head_dim: u32, pos0: u32, ring: u32, kv_f16: u32, norm: u32, norm_eps: f32,
    }
    /// The MXFP4 expert kernels (`matmul_mxfp4.wgsl`).
    ExpertParams {
        n_tokens: u32, k: u32, rows_per_expert: u32, cols: u32, row_start: u32, row_end: u32, limit: f32,
        alpha: f32, n_experts: u32, route_from_logits: u32,
    }
    /// The GGUF mat-vec, mat-mat and embedding kernels (`matmul_quant.wgsl`).
    QuantMatmulParams {
        n_tokens: u32, rows: u32, cols: u32, x_offset: u32, x_stride: u32, y_stride: u32, y_offset: u32,
        flags: u32, row_bytes: u32, row_start: u32, row_end: u32, lanes: u32,
    }
    /// Top-k softmax of router logits (`moe_route.wgsl`).
    TopkParams { n_tokens: u32, n_experts: u32, k: u32 }
    /// Weighted expert outputs added into the residual (`moe_route.wgsl`).
    ExpertAccumulateParams { n_tokens: u32, k: u32, hidden: u32 }
    /// The router mat-vec with its RMSNorm (`moe_route.wgsl`).
    RouterParams { n_tokens: u32, hidden: u32, n_experts: u32, eps: f32, row_start: u32, row_end: u32, has_bias: u32, n_groups: u32 }
    /// Tokens per expert and their prefix sum (`moe_route.wgsl`).
    ExpertCountParams { n_entries: u32, n_experts: u32 }
    /// RMSNorm into scratch (`rmsnorm.wgsl`).
    RmsNormParams { n_tokens: u32, hidden: u32, eps: f32, x_offset: u32 }
    /// RoPE, optional q/k norms and the KV-cache write (`rope.wgsl`).
    RopeParams {
        n_tokens: u32, n_q_heads: u32, n_kv_heads: u32, head_dim: u32, pos0: u32, ring: u32, seg_start: u32,
        seg_slots: u32, write_q: u32, interleaved: u32, qk_norm: u32, eps: f32, kv_f16: u32,
    }
    /// The sampler's penalties and temperature pass (`sample.wgsl`).
    SamplePrepParams { n: u32, offset: u32, n_pen: u32, inv_temp: f32, rep: f32, inv_rep: f32, presence: f32, frequency: f32 }
    /// The sampler's selection and draw (`sample.wgsl`).
    SampleSelectParams { n: u32, n_groups: u32, greedy: u32, top_k: u32, top_p24: u32, t_cap: u32, rnd: u32, out_index: u32 }
}
