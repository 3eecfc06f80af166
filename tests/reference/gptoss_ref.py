"""Shared code for the gpt-oss reference generators.

Builds random gpt-oss checkpoints in the Hugging Face hub layout of openai/gpt-oss-20b
(config.json + safetensors with MXFP4 expert blocks/scales), loads them with transformers'
GptOssForCausalLM in float32, checks that the loaded weights are the ones written, and
computes reference logits, greedy continuations, margins and SwiGLU clamp statistics.
"""

import json
import math
import os
import re
import zlib

import numpy as np
import torch

FP4_VALUES = np.array(
    [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
    dtype=np.float32,
)

MODULES_TO_NOT_CONVERT = [
    "model.layers.*.self_attn",
    "model.layers.*.mlp.router",
    "model.embed_tokens",
    "lm_head",
]

SWIGLU_LIMIT = 7.0


# ----------------------------------------------------------------------------------------------
# config.json


def make_config(*, layers, hidden, heads, kv_heads, head_dim, intermediate, experts, top_k,
                window, vocab, eos_token_id, pad_token_id):
    """Every field of the hub's gpt-oss-20b config.json, with the given sizes."""
    return {
        "architectures": ["GptOssForCausalLM"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "eos_token_id": eos_token_id,
        "experts_per_token": top_k,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initial_context_length": 4096,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        "max_position_embeddings": 131072,
        "model_type": "gpt_oss",
        "num_attention_heads": heads,
        "num_experts_per_tok": top_k,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "num_local_experts": experts,
        "output_router_logits": False,
        "pad_token_id": pad_token_id,
        "quantization_config": {
            "modules_to_not_convert": list(MODULES_TO_NOT_CONVERT),
            "quant_method": "mxfp4",
        },
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "factor": 32.0,
            "original_max_position_embeddings": 4096,
            "rope_type": "yarn",
            "truncate": False,
        },
        "rope_theta": 150000,
        "router_aux_loss_coef": 0.9,
        "sliding_window": window,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "transformers_version": "4.55.0.dev0",
        "use_cache": True,
        "vocab_size": vocab,
    }


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_cases(path, doc):
    """cases.json with flat lists (token ids, positions) kept on one line."""
    s = json.dumps(doc, indent=1)
    s = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", s)
    with open(path, "w") as f:
        f.write(s + "\n")


# ----------------------------------------------------------------------------------------------
# Tensor list and random contents


def layer_tensor_specs(cfg, i):
    """(name, shape, dtype) of layer i's 19 tensors, in the order of the hub conversion script."""
    H, I, E = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    p = f"model.layers.{i}."
    return [
        (p + "input_layernorm.weight", (H,), "bf16"),
        (p + "self_attn.q_proj.weight", (q, H), "bf16"),
        (p + "self_attn.q_proj.bias", (q,), "bf16"),
        (p + "self_attn.k_proj.weight", (kv, H), "bf16"),
        (p + "self_attn.k_proj.bias", (kv,), "bf16"),
        (p + "self_attn.v_proj.weight", (kv, H), "bf16"),
        (p + "self_attn.v_proj.bias", (kv,), "bf16"),
        (p + "self_attn.o_proj.weight", (H, q), "bf16"),
        (p + "self_attn.o_proj.bias", (H,), "bf16"),
        (p + "self_attn.sinks", (cfg["num_attention_heads"],), "bf16"),
        (p + "post_attention_layernorm.weight", (H,), "bf16"),
        (p + "mlp.router.weight", (E, H), "bf16"),
        (p + "mlp.router.bias", (E,), "bf16"),
        (p + "mlp.experts.gate_up_proj_blocks", (E, 2 * I, H // 32, 16), "u8"),
        (p + "mlp.experts.gate_up_proj_scales", (E, 2 * I, H // 32), "u8"),
        (p + "mlp.experts.gate_up_proj_bias", (E, 2 * I), "bf16"),
        (p + "mlp.experts.down_proj_blocks", (E, H, I // 32, 16), "u8"),
        (p + "mlp.experts.down_proj_scales", (E, H, I // 32), "u8"),
        (p + "mlp.experts.down_proj_bias", (E, H), "bf16"),
    ]


def global_tensor_specs(cfg):
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    return [
        ("model.embed_tokens.weight", (V, H), "bf16"),
        ("model.norm.weight", (H,), "bf16"),
        ("lm_head.weight", (V, H), "bf16"),
    ]


def all_tensor_specs(cfg):
    specs = []
    for i in range(cfg["num_hidden_layers"]):
        specs += layer_tensor_specs(cfg, i)
    return specs + global_tensor_specs(cfg)


def spec_nbytes(shape, dtype):
    return int(np.prod(shape)) * (2 if dtype == "bf16" else 1)


def bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (no NaNs expected)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    u = u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
    return (u >> np.uint32(16)).astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def tensor_rng(seed, name):
    """An independent generator per tensor, so tensors can be made in any order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _bf16_random(rng, shape, sample, chunk_elems=1 << 24):
    """bf16 bits of `sample(rng, n)` (float32 values) filled row-chunk by row-chunk."""
    out = np.empty(shape, dtype=np.uint16)
    flat = out.reshape(-1)
    n = flat.size
    for s in range(0, n, chunk_elems):
        e = min(n, s + chunk_elems)
        flat[s:e] = bf16_bits(sample(rng, e - s))
    return out


def make_tensor(cfg, scales, seed, name, shape, dtype):
    """Random contents of one tensor, as a numpy array (uint16 bf16 bits or uint8).

    `scales` sets the magnitudes:
      embed_std, lm_head_std      : std of embedding / lm_head entries (lm_head divided by sqrt(H))
      norm_lo, norm_hi            : RMSNorm gains uniform in [lo, hi]
      qk_std, v_std, o_std        : projection stds (divided by sqrt(fan_in)); qkv_bias_std, o_bias_std
      sink_std                    : sinks ~ normal(0, sink_std)
      router_std, router_bias_std : router weight (divided by sqrt(H)) and bias
      gate_up_scale, down_scale   : list of E8M0 scale bytes drawn uniformly per 32-block
      gate_up_bias_std, down_bias_std
    """
    rng = tensor_rng(seed, name)
    H = cfg["hidden_size"]

    def normal(std):
        return lambda r, n: r.standard_normal(n, dtype=np.float32) * np.float32(std)

    def uniform(lo, hi):
        return lambda r, n: r.uniform(lo, hi, n).astype(np.float32)

    if dtype == "u8":
        if name.endswith("_blocks"):
            # Uniform bytes: every one of the 16 FP4 codes (including -0) in both nibbles.
            return rng.integers(0, 256, size=shape, dtype=np.uint8)
        choices = np.array(scales["gate_up_scale" if "gate_up" in name else "down_scale"], dtype=np.uint8)
        return choices[rng.integers(0, len(choices), size=shape)]

    leaf = name.split(".")[-1]
    if name == "model.embed_tokens.weight":
        f = normal(scales["embed_std"])
    elif name == "lm_head.weight":
        f = normal(scales["lm_head_std"] / math.sqrt(H))
    elif "layernorm" in name or name == "model.norm.weight":
        f = uniform(scales["norm_lo"], scales["norm_hi"])
    elif ".self_attn.q_proj." in name or ".self_attn.k_proj." in name:
        f = normal(scales["qk_std"] / math.sqrt(H) if leaf == "weight" else scales["qkv_bias_std"])
    elif ".self_attn.v_proj." in name:
        f = normal(scales["v_std"] / math.sqrt(H) if leaf == "weight" else scales["qkv_bias_std"])
    elif ".self_attn.o_proj." in name:
        fan_in = cfg["num_attention_heads"] * cfg["head_dim"]
        f = normal(scales["o_std"] / math.sqrt(fan_in) if leaf == "weight" else scales["o_bias_std"])
    elif leaf == "sinks":
        f = normal(scales["sink_std"])
    elif ".mlp.router." in name:
        f = normal(scales["router_std"] / math.sqrt(H) if leaf == "weight" else scales["router_bias_std"])
    elif leaf == "gate_up_proj_bias":
        f = normal(scales["gate_up_bias_std"])
    elif leaf == "down_proj_bias":
        f = normal(scales["down_bias_std"])
    else:
        raise KeyError(name)
    return _bf16_random(rng, shape, f)


def to_torch(arr, dtype):
    if dtype == "bf16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def save_safetensors(path, tensors):
    from safetensors.torch import save_file

    save_file(tensors, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)


def write_index(path, weight_map, total_size):
    write_json(path, {"metadata": {"total_size": int(total_size)}, "weight_map": dict(sorted(weight_map.items()))})


# ----------------------------------------------------------------------------------------------
# MXFP4


def dequant_mxfp4(blocks, scales):
    """[..., G, 16] u8 blocks + [..., G] u8 scales -> [..., G*32] float32.

    Low nibble of byte j = element 2j, high nibble = element 2j+1; value = FP4[nibble] * 2^(s-127).
    """
    lo = FP4_VALUES[blocks & 0x0F]
    hi = FP4_VALUES[blocks >> 4]
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * np.exp2(scales.astype(np.float32) - 127.0)[..., None]
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Loading with transformers and checking the loaded weights


def load_hf(model_dir, via_bf16=False):
    """GptOssForCausalLM in float32 with the MXFP4 experts dequantized by transformers.

    via_bf16: load in bfloat16, then upcast to float32. Every checkpoint value (bf16 tensors and
    FP4 x 2^k expert weights) is exact in bf16, so the float32 parameters are identical to a direct
    float32 load (checked on the tiny fixture); this roughly halves the peak host memory of loading.
    """
    from transformers import GptOssForCausalLM, Mxfp4Config

    model = GptOssForCausalLM.from_pretrained(
        model_dir,
        quantization_config=Mxfp4Config(dequantize=True),
        dtype=torch.bfloat16 if via_bf16 else torch.float32,
        attn_implementation="eager",
        experts_implementation="eager",
    )
    if via_bf16:
        model = model.float()
    model.eval()
    return model


def check_config(model, cfg):
    """The config transformers built from config.json matches what was written."""
    c = model.config
    rp = c.rope_parameters
    checks = {
        "num_hidden_layers": c.num_hidden_layers == cfg["num_hidden_layers"],
        "hidden_size": c.hidden_size == cfg["hidden_size"],
        "head_dim": c.head_dim == cfg["head_dim"],
        "num_attention_heads": c.num_attention_heads == cfg["num_attention_heads"],
        "num_key_value_heads": c.num_key_value_heads == cfg["num_key_value_heads"],
        "intermediate_size": c.intermediate_size == cfg["intermediate_size"],
        "num_local_experts": c.num_local_experts == cfg["num_local_experts"],
        "num_experts_per_tok": c.num_experts_per_tok == cfg["num_experts_per_tok"],
        "sliding_window": c.sliding_window == cfg["sliding_window"],
        "layer_types": list(c.layer_types) == cfg["layer_types"],
        "vocab_size": c.vocab_size == cfg["vocab_size"],
        "rms_norm_eps": c.rms_norm_eps == cfg["rms_norm_eps"],
        "swiglu_limit": c.swiglu_limit == cfg["swiglu_limit"],
        "tie_word_embeddings": c.tie_word_embeddings is False,
        "rope_type": rp.get("rope_type") == "yarn",
        "rope_theta": float(rp.get("rope_theta")) == 150000.0,
        "rope_factor": float(rp.get("factor")) == 32.0,
        "rope_beta_fast": float(rp.get("beta_fast")) == 32.0,
        "rope_beta_slow": float(rp.get("beta_slow")) == 1.0,
        "rope_orig_max": int(rp.get("original_max_position_embeddings")) == 4096,
        "rope_truncate": rp.get("truncate") is False,
        "attention_scaling": abs(model.model.rotary_emb.attention_scaling - (0.1 * math.log(32.0) + 1.0)) < 1e-12,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise SystemExit(f"transformers read config.json differently than written: {bad}; rope={rp}")


def check_loaded_weights(model, cfg, read_tensor, experts_to_check=None):
    """Every loaded parameter equals the file contents (bf16 -> f32 exactly; experts = own MXFP4 dequant).

    read_tensor(name) returns the numpy array (uint16 bf16 bits or uint8) stored in the checkpoint.
    experts_to_check: None = all experts of all layers; else list of (layer, expert) pairs.
    """
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts

    params = dict(model.named_parameters())
    E = cfg["num_local_experts"]
    for i, layer in enumerate(model.model.layers):
        if type(layer.mlp.experts) is not GptOssExperts:
            raise SystemExit(f"layer {i} experts are {type(layer.mlp.experts)}, not the dequantized GptOssExperts")
    for n, p in params.items():
        if p.dtype != torch.float32:
            raise SystemExit(f"{n} is {p.dtype}, not float32")
    bf16_names = [n for n, _, d in all_tensor_specs(cfg) if d == "bf16"]
    for name in bf16_names:
        bits = read_tensor(name)
        got = params[name].detach().numpy()
        if got.shape != bits.shape:
            raise SystemExit(f"loaded {name} has shape {got.shape}, checkpoint {bits.shape}")
        flat_b, flat_g = bits.reshape(-1), got.reshape(-1)
        step = 1 << 24
        for s in range(0, flat_b.size, step):
            if not np.array_equal(flat_g[s:s + step], bf16_to_f32(flat_b[s:s + step])):
                raise SystemExit(f"loaded {name} differs from the checkpoint")
        del bits
    rot = model.model.rotary_emb
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inv_freq, scaling = ROPE_INIT_FUNCTIONS["yarn"](model.config)
    if rot.inv_freq.dtype != torch.float32 or not torch.equal(rot.inv_freq, inv_freq.float()) or rot.attention_scaling != scaling:
        raise SystemExit("rotary inv_freq / attention_scaling are not the float32 YaRN values")
    if params["lm_head.weight"].data_ptr() == params["model.embed_tokens.weight"].data_ptr():
        raise SystemExit("lm_head is tied to embed_tokens")
    pairs = experts_to_check
    if pairs is None:
        pairs = [(i, e) for i in range(cfg["num_hidden_layers"]) for e in range(E)]
    by_layer = {}
    for i, e in pairs:
        by_layer.setdefault(i, []).append(e)
    for i, es in by_layer.items():
        p = f"model.layers.{i}.mlp.experts."
        gub, gus = read_tensor(p + "gate_up_proj_blocks"), read_tensor(p + "gate_up_proj_scales")
        dnb, dns = read_tensor(p + "down_proj_blocks"), read_tensor(p + "down_proj_scales")
        gu = params[p + "gate_up_proj"].detach()  # [E, H, 2I] (x @ W form)
        dn = params[p + "down_proj"].detach()  # [E, I, H]
        for e in es:
            w1 = dequant_mxfp4(gub[e], gus[e])  # [2I, H]
            w2 = dequant_mxfp4(dnb[e], dns[e])  # [H, I]
            if not np.array_equal(gu[e].numpy().T, w1):
                raise SystemExit(f"layer {i} expert {e}: transformers' gate_up_proj != own MXFP4 dequantization")
            if not np.array_equal(dn[e].numpy().T, w2):
                raise SystemExit(f"layer {i} expert {e}: transformers' down_proj != own MXFP4 dequantization")


# ----------------------------------------------------------------------------------------------
# Reference runs


class ClampCounter:
    """Wraps each experts module's _apply_gate to count the values the SwiGLU clamp changes."""

    def __init__(self, model):
        self.reset()
        self.limit = model.config.swiglu_limit
        for layer in model.model.layers:
            ex = layer.mlp.experts
            orig = ex._apply_gate

            def wrapped(gate_up, _orig=orig):
                gate, up = gate_up[..., ::2], gate_up[..., 1::2]
                self.gate_above += int((gate > self.limit).sum())
                self.up_above += int((up > self.limit).sum())
                self.up_below += int((up < -self.limit).sum())
                self.gate_below += int((gate < -self.limit).sum())
                self.total += gate.numel()
                return _orig(gate_up)

            ex._apply_gate = wrapped

    def reset(self):
        self.gate_above = self.up_above = self.up_below = self.gate_below = self.total = 0

    def stats(self):
        return {
            "gate_values": self.total,
            "gate_clamped_above": self.gate_above,
            "gate_below_minus_limit_not_clamped": self.gate_below,
            "up_clamped_above": self.up_above,
            "up_clamped_below": self.up_below,
        }


@torch.no_grad()
def forward(model, ids, router=False):
    out = model(torch.tensor([ids], dtype=torch.long), use_cache=False, output_router_logits=router)
    logits = out.logits[0].float().numpy()
    if not router:
        return logits, None
    return logits, [r.float().numpy().reshape(len(ids), -1) for r in out.router_logits]


@torch.no_grad()
def greedy_recompute(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        out = model(torch.tensor([ids], dtype=torch.long), use_cache=False, logits_to_keep=1)
        ids.append(int(out.logits[0, -1].argmax()))
    return ids[len(prompt):]


@torch.no_grad()
def greedy_generate(model, prompt, n):
    out = model.generate(
        torch.tensor([prompt], dtype=torch.long),
        do_sample=False,
        max_new_tokens=n,
        min_new_tokens=n,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=model.config.pad_token_id,
    )
    toks = out.sequences[0, len(prompt):].tolist()
    logits = np.stack([l[0].float().numpy() for l in out.logits])
    return toks, logits


def top2_margins(logits):
    s = np.sort(logits, axis=-1)
    return s[..., -1] - s[..., -2]


def router_margin(router_logits, k):
    m = np.inf
    for r in router_logits:
        s = -np.sort(-r, axis=-1)
        m = min(m, float((s[:, k - 1] - s[:, k]).min()))
    return m


# ----------------------------------------------------------------------------------------------
# Independent float64 forward written from the spec (cross-check of transformers)


def yarn_tables(cfg, positions):
    hd = cfg["head_dim"]
    rs = cfg["rope_scaling"]
    base = float(cfg["rope_theta"])
    factor = rs["factor"]
    orig = rs["original_max_position_embeddings"]
    freq = base ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    conc = 0.1 * math.log(factor) + 1.0
    d_half = hd / 2
    low = d_half * math.log(orig / (rs["beta_fast"] * 2 * math.pi)) / math.log(base)
    high = d_half * math.log(orig / (rs["beta_slow"] * 2 * math.pi)) / math.log(base)
    ramp = np.clip((np.arange(hd // 2) - low) / (high - low), 0.0, 1.0)
    inv_freq = (1.0 / freq) * (1 - ramp) + (1.0 / (factor * freq)) * ramp
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang) * conc, np.sin(ang) * conc


def spec_forward(cfg, W, tokens):
    """Logits [T, V] from the spec's forward pass in float64. W: name -> float64 array, experts dequantized
    as '...gate_up' [E, 2I, H] and '...down' [E, H, I]."""
    eps = cfg["rms_norm_eps"]
    nH, nKV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    k_top, win, lim = cfg["num_experts_per_tok"], cfg["sliding_window"], cfg["swiglu_limit"]
    T = len(tokens)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    cos, sin = yarn_tables(cfg, np.arange(T))

    def rope(x):  # [T, h, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)

    x = W["model.embed_tokens.weight"][np.asarray(tokens)]
    qi = np.arange(T)[:, None]
    kj = np.arange(T)[None, :]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(x, W[p + "input_layernorm.weight"])
        q = (a @ W[p + "self_attn.q_proj.weight"].T + W[p + "self_attn.q_proj.bias"]).reshape(T, nH, hd)
        k = (a @ W[p + "self_attn.k_proj.weight"].T + W[p + "self_attn.k_proj.bias"]).reshape(T, nKV, hd)
        v = (a @ W[p + "self_attn.v_proj.weight"].T + W[p + "self_attn.v_proj.bias"]).reshape(T, nKV, hd)
        q, k = rope(q), rope(k)
        allowed = kj <= qi
        if cfg["layer_types"][i] == "sliding_attention":
            allowed &= (qi - kj) < win
        att = np.zeros((T, nH, hd))
        sinks = W[p + "self_attn.sinks"]
        for h in range(nH):
            g = h // (nH // nKV)
            s = q[:, h] @ k[:, g].T / math.sqrt(hd)
            s = np.where(allowed, s, -np.inf)
            m = np.maximum(s.max(-1), sinks[h])
            e = np.exp(s - m[:, None])
            den = e.sum(-1) + np.exp(sinks[h] - m)
            att[:, h] = (e / den[:, None]) @ v[:, g]
        x = x + att.reshape(T, nH * hd) @ W[p + "self_attn.o_proj.weight"].T + W[p + "self_attn.o_proj.bias"]
        t = rms(x, W[p + "post_attention_layernorm.weight"])
        r = t @ W[p + "mlp.router.weight"].T + W[p + "mlp.router.bias"]
        w1, b1 = W[p + "mlp.experts.gate_up"], W[p + "mlp.experts.gate_up_proj_bias"]
        w2, b2 = W[p + "mlp.experts.down"], W[p + "mlp.experts.down_proj_bias"]
        moe = np.zeros_like(x)
        for tk in range(T):
            idx = np.argsort(-r[tk], kind="stable")[:k_top]
            sc = np.exp(r[tk, idx] - r[tk, idx].max())
            sc /= sc.sum()
            for e_, wgt in zip(idx, sc):
                hh = w1[e_] @ t[tk] + b1[e_]
                gt = np.minimum(hh[0::2], lim)
                up = np.clip(hh[1::2], -lim, lim)
                act = gt / (1 + np.exp(-1.702 * gt)) * (up + 1)
                moe[tk] += wgt * (w2[e_] @ act + b2[e_])
        x = x + moe
    return rms(x, W["model.norm.weight"]) @ W["lm_head.weight"].T


def spec_weights(cfg, read_tensor):
    W = {}
    for name, _, dtype in all_tensor_specs(cfg):
        if dtype == "bf16":
            W[name] = bf16_to_f32(read_tensor(name)).astype(np.float64)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}.mlp.experts."
        W[p + "gate_up"] = dequant_mxfp4(read_tensor(p + "gate_up_proj_blocks"),
                                         read_tensor(p + "gate_up_proj_scales")).astype(np.float64)
        W[p + "down"] = dequant_mxfp4(read_tensor(p + "down_proj_blocks"),
                                      read_tensor(p + "down_proj_scales")).astype(np.float64)
    return W


def versions():
    import safetensors
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total
