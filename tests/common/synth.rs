//! Writes gpt-oss checkpoints in the Hugging Face hub layout at test time: random weights, or a
//! "scripted" model whose greedy output is a chosen token sequence (each token of the script
//! points at its successor through the embedding and the LM head; every layer adds zero).

use std::collections::HashMap;
use std::path::Path;

use half::bf16;
use rand::{rngs::StdRng, Rng, SeedableRng};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

pub struct Shape {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub experts: usize,
    pub top_k: usize,
    pub window: usize,
}

impl Shape {
    /// A small model with the real o200k_harmony vocabulary.
    pub fn tiny_real_vocab() -> Shape {
        Shape { vocab: 201088, hidden: 64, layers: 2, heads: 4, kv_heads: 2, head_dim: 16, intermediate: 64, experts: 4, top_k: 2, window: 8 }
    }

    pub fn config_json(&self) -> serde_json::Value {
        let layer_types: Vec<&str> =
            (0..self.layers).map(|i| if i % 2 == 0 { "sliding_attention" } else { "full_attention" }).collect();
        serde_json::json!({
            "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": true,
            "attention_dropout": 0.0, "eos_token_id": 200002, "pad_token_id": 199999,
            "experts_per_token": self.top_k, "num_experts_per_tok": self.top_k, "num_local_experts": self.experts,
            "head_dim": self.head_dim, "hidden_act": "silu", "hidden_size": self.hidden,
            "intermediate_size": self.intermediate, "initial_context_length": 4096, "initializer_range": 0.02,
            "layer_types": layer_types, "max_position_embeddings": 131072,
            "num_attention_heads": self.heads, "num_hidden_layers": self.layers, "num_key_value_heads": self.kv_heads,
            "output_router_logits": false,
            "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
            "rms_norm_eps": 1e-05,
            "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                             "original_max_position_embeddings": 4096, "truncate": false},
            "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": self.window,
            "swiglu_limit": 7.0, "tie_word_embeddings": false, "use_cache": true, "vocab_size": self.vocab
        })
    }
}

struct Tensors(Vec<(String, Dtype, Vec<usize>, Vec<u8>)>);

impl Tensors {
    fn bf16(&mut self, name: String, shape: Vec<usize>, values: impl IntoIterator<Item = f32>) {
        let bytes: Vec<u8> = values.into_iter().flat_map(|v| bf16::from_f32(v).to_bits().to_le_bytes()).collect();
        self.0.push((name, Dtype::BF16, shape, bytes));
    }
    fn u8(&mut self, name: String, shape: Vec<usize>, bytes: Vec<u8>) {
        self.0.push((name, Dtype::U8, shape, bytes));
    }
}

/// How the weights are filled.
pub enum Fill<'a> {
    Random { seed: u64 },
    /// Greedy decoding after any of these tokens continues along the map (token -> next).
    Script { next: &'a HashMap<u32, u32> },
    /// A script that branches on context: after `rule.at`, the candidates `rule.next` of all
    /// rules at that token compete with scores `base + sum(weight * cue seen)`, where cue `c`
    /// is "token `cues[c]` occurs anywhere earlier" (at most 3 cues). Other tokens follow
    /// `next`. See [`Rule`].
    Cued { next: &'a HashMap<u32, u32>, rules: &'a [Rule], cues: &'a [u32] },
}

/// One candidate successor of a branching token (see [`Fill::Cued`]).
pub struct Rule {
    pub at: u32,
    pub next: u32,
    pub base: f32,
    /// (cue index, weight)
    pub cues: Vec<(usize, f32)>,
}

/// How the cue memory works: the full-attention layer has one query head per cue. At a
/// branching token the head's query (in a RoPE dimension that barely rotates) matches the key
/// of the cue token, so the head attends almost only to cue positions, whose value is 1; it
/// writes that into the cue's own hidden dimension, which the LM head weighs. Elsewhere the
/// query is zero, attention is uniform and the cue dimension only gets count/positions.
fn cued_weights(
    s: &Shape,
    next: &HashMap<u32, u32>,
    rules: &[Rule],
    cues: &[u32],
) -> (Vec<f32>, Vec<f32>, usize, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (h, v) = (s.hidden, s.vocab);
    let (qd, kd, hd) = (s.heads * s.head_dim, s.kv_heads * s.head_dim, s.head_dim);
    assert!(cues.len() <= 3 && s.heads >= 3 && s.heads / s.kv_heads == 2 && hd >= 8, "cue layout needs 4 heads over 2 kv heads");
    let mut dims: HashMap<u32, usize> = HashMap::new();
    let mut dim_of = |t: u32| {
        let n = dims.len();
        *dims.entry(t).or_insert(n)
    };
    for (&t, _) in next {
        dim_of(t);
    }
    for r in rules {
        dim_of(r.at);
    }
    for &c in cues {
        dim_of(c);
    }
    let memory0 = dims.len();
    assert!(memory0 + cues.len() <= h, "script needs hidden >= {}", memory0 + cues.len());
    let mut embed = vec![0.0; v * h];
    let mut lm = vec![0.0; v * h];
    for (&t, &d) in &dims {
        embed[t as usize * h + d] = 1.0;
    }
    for (&t, &n) in next {
        lm[n as usize * h + dims[&t]] = 16.0;
    }
    for r in rules {
        lm[r.next as usize * h + dims[&r.at]] += r.base;
        for &(c, w) in &r.cues {
            lm[r.next as usize * h + memory0 + c] += w;
        }
    }
    let (mut q, mut k, mut val, mut o) = (vec![0.0; qd * h], vec![0.0; kd * h], vec![0.0; kd * h], vec![0.0; h * qd]);
    for (c, &cue) in cues.iter().enumerate() {
        let (head, kv, qk_dim, v_dim) = (c, c / 2, hd / 2 - 1 - c % 2, c % 2);
        for r in rules.iter().filter(|r| r.cues.iter().any(|&(i, _)| i == c)) {
            q[(head * hd + qk_dim) * h + dims[&r.at]] = 1.375;
        }
        k[(kv * hd + qk_dim) * h + dims[&cue]] = 1.375;
        val[(kv * hd + v_dim) * h + dims[&cue]] = 0.125;
        o[(memory0 + c) * qd + head * hd + v_dim] = 1.0;
    }
    (embed, lm, memory0, q, k, val, o)
}

/// Writes config.json, model.safetensors and (when given) tokenizer.json into `dir`.
pub fn write_checkpoint(dir: &Path, s: &Shape, fill: Fill, tokenizer_json: Option<&[u8]>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&s.config_json()).unwrap()).unwrap();
    if let Some(t) = tokenizer_json {
        std::fs::write(dir.join("tokenizer.json"), t).unwrap();
    }
    let (h, v, i, e) = (s.hidden, s.vocab, s.intermediate, s.experts);
    let (qd, kd) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let (random, mut rng, scale) = match &fill {
        Fill::Random { seed } => (true, StdRng::seed_from_u64(*seed), 1.0f32),
        Fill::Script { .. } | Fill::Cued { .. } => (false, StdRng::seed_from_u64(0), 0.0f32),
    };
    let cued = match &fill {
        Fill::Cued { next, rules, cues } => Some(cued_weights(s, next, rules, cues)),
        _ => None,
    };
    let mut t = Tensors(Vec::new());
    let mut nibble_rng = StdRng::seed_from_u64(rng.random());
    let mut rnd = |n: usize, amp: f32| -> Vec<f32> { (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * amp * scale).collect() };

    // Embedding and LM head.
    let (mut embed, mut lm) = (rnd(v * h, 1.0), rnd(v * h, 0.5));
    if let Fill::Script { next } = &fill {
        assert!(next.len() <= h, "a script of {} tokens needs hidden >= that", next.len());
        for (dim, (&tok, &nxt)) in next.iter().enumerate() {
            embed[tok as usize * h + dim] = 1.0;
            lm[nxt as usize * h + dim] = 4.0; // logit 4 * sqrt(hidden) = 32 above the rest
        }
    }
    if let Some((e, l, ..)) = &cued {
        embed = e.clone();
        lm = l.clone();
    }
    t.bf16("model.embed_tokens.weight".into(), vec![v, h], embed);
    t.bf16("lm_head.weight".into(), vec![v, h], lm);
    t.bf16("model.norm.weight".into(), vec![h], vec![1.0; h]);
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        t.bf16(format!("{p}.input_layernorm.weight"), vec![h], vec![1.0; h]);
        t.bf16(format!("{p}.post_attention_layernorm.weight"), vec![h], vec![1.0; h]);
        // Cue memory lives in the first full-attention layer.
        let memory = cued.as_ref().filter(|_| l == 1);
        let pick = |w: Vec<f32>, which: usize| match memory {
            Some((_, _, _, q, k, v, o)) => [q, k, v, o][which].clone(),
            None => w,
        };
        t.bf16(format!("{p}.self_attn.q_proj.weight"), vec![qd, h], pick(rnd(qd * h, 0.3), 0));
        t.bf16(format!("{p}.self_attn.q_proj.bias"), vec![qd], rnd(qd, 0.1));
        t.bf16(format!("{p}.self_attn.k_proj.weight"), vec![kd, h], pick(rnd(kd * h, 0.3), 1));
        t.bf16(format!("{p}.self_attn.k_proj.bias"), vec![kd], rnd(kd, 0.1));
        t.bf16(format!("{p}.self_attn.v_proj.weight"), vec![kd, h], pick(rnd(kd * h, 0.3), 2));
        t.bf16(format!("{p}.self_attn.v_proj.bias"), vec![kd], rnd(kd, 0.1));
        t.bf16(format!("{p}.self_attn.o_proj.weight"), vec![h, qd], pick(rnd(h * qd, 0.3), 3));
        t.bf16(format!("{p}.self_attn.o_proj.bias"), vec![h], rnd(h, 0.1));
        t.bf16(format!("{p}.self_attn.sinks"), vec![s.heads], rnd(s.heads, 1.0));
        t.bf16(format!("{p}.mlp.router.weight"), vec![e, h], rnd(e * h, 0.5));
        t.bf16(format!("{p}.mlp.router.bias"), vec![e], rnd(e, 0.1));
        let x = format!("{p}.mlp.experts");
        let mut nibbles = |n: usize| -> Vec<u8> { (0..n).map(|_| if random { nibble_rng.random::<u8>() } else { 0 }).collect() };
        let gu_blocks = nibbles(e * 2 * i * h / 2);
        let dn_blocks = nibbles(e * h * i / 2);
        t.u8(format!("{x}.gate_up_proj_blocks"), vec![e, 2 * i, h / 32, 16], gu_blocks);
        t.u8(format!("{x}.gate_up_proj_scales"), vec![e, 2 * i, h / 32], vec![122; e * 2 * i * h / 32]);
        t.bf16(format!("{x}.gate_up_proj_bias"), vec![e, 2 * i], rnd(e * 2 * i, 0.1));
        t.u8(format!("{x}.down_proj_blocks"), vec![e, h, i / 32, 16], dn_blocks);
        t.u8(format!("{x}.down_proj_scales"), vec![e, h, i / 32], vec![122; e * h * i / 32]);
        t.bf16(format!("{x}.down_proj_bias"), vec![e, h], rnd(e * h, 0.1));
    }
    let views: Vec<(String, TensorView)> =
        t.0.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize_to_file(views, Some(meta), &dir.join("model.safetensors")).unwrap();
}
