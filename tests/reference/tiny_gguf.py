"""Tiny random GGUF models per architecture, with references: `tests/fixtures/gguf-tiny/`.

Each `<name>.gguf` uses the tensor names, shapes, metadata keys and tensor order that llama.cpp's
convert_hf_to_gguf.py writes for that architecture (tensors in the order of the sorted Hugging Face
names, norms and biases F32), a small byte-level BPE vocabulary (tokenizer.ggml.model "gpt2") and a
ChatML chat template:

| file | arch | layers | hidden | heads/kv x head_dim | ffn | output | tensor types |
|---|---|---|---|---|---|---|---|
| llama-q8.gguf | llama | 2 | 256 | 4/2 x 64 | 512 | separate | Q8_0 Q4_0 Q4_1 F16, F32 norms |
| llama-kquants.gguf | llama | 2 | 256 | 4/2 x 64 | 512 | separate | Q4_K Q5_K Q6_K BF16, F32 norms |
| llama-q2-iq4.gguf | llama | 2 | 256 | 4/2 x 64 | 512 | separate | Q5_0 Q5_1 Q2_K Q3_K IQ4_NL IQ4_XS, F32 norms |
| qwen2.gguf | qwen2 | 2 | 256 | 4/2 x 64 | 512 | tied | Q8_0 Q4_0 F16, F32 norms + q/k/v biases |
| qwen3.gguf | qwen3 | 2 | 256 | 8/2 x 64 (q width 512) | 512 | tied | Q8_0 Q4_1, F32 norms + q/k norms |

Metadata follows the converter: llama writes `rope.dimension_count`; qwen2 writes neither
`attention.key_length` nor `rope.dimension_count` (both default to hidden/heads); qwen3 writes
`attention.key_length`/`value_length` (its config has head_dim) but no `rope.dimension_count`
(defaults to key_length).

K-quant, IQ4_NL and IQ4_XS tensors are random valid blocks written as raw bytes (gguf-py cannot
quantize them): f16 (super-)block scales sized so that weights have std ~ 1/sqrt(cols), and for
Q2_K/Q4_K/Q5_K sub-block mins chosen so each sub-block is roughly centred. The other types are
quantized from float32 with gguf-py's `gguf.quants.quantize`.

References (`<name>.json` + `<name>.npy`), computed by the float64 numpy forward in gguf_numpy.py
from the gguf-py dequantized tensors: for 2 token sequences, the 16-token greedy continuation and
the logits of ONE teacher-forced pass over sequence + continuation[:-1] (row i = next-token logits
after position i; rows of both cases stacked, offsets in the json). With `--llamacpp`, each file is
also run through llama.cpp (llama-cpp-python, CPU) and the max |logit difference| and greedy
agreement are recorded under "llamacpp".

Usage:

    /work/venv-llama/bin/python tests/reference/tiny_gguf.py              # numpy references only
    /work/venv-llama/bin/python tests/reference/tiny_gguf.py --llamacpp   # + llama.cpp cross-check

Deterministic: a rerun with the pinned versions (requirements-gguf.txt) gives the same bytes.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFWriter
from gguf.quants import quantize

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[0] / "fixtures" / "gguf-tiny"
sys.path.insert(0, str(HERE))
from gguf_numpy import dump_json  # noqa: E402

N_GEN = 16
SEQ_LENS = (12, 20)
MIN_MARGIN = 0.05  # wanted top-1 minus top-2 at every greedy step (searched over sequence seeds)

# ----------------------------------------------------------------------------------------------
# Vocabulary: 256 byte tokens (GPT-2 byte-to-unicode), merges, 3 control tokens = 300
# ----------------------------------------------------------------------------------------------

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
          "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

MERGES = [
    "Ġ t", "h e", "Ġ a", "i n", "Ġt he", "e r", "o n", "Ġ s", "r e", "a n", "e d", "i s", "Ġ w",
    "o r", "i t", "Ġ i", "a t", "e n", "Ġ o", "Ġ c", "l l", "e s", "Ġ b", "Ġ f", "in g", "Ġ Ġ",
    "Ċ Ċ", "Ġ h", "a r", "o u", "Ġ m", "Ġ p", "Ġ d", "l e", "s t", "Ġ l", "Ġw h", "Ġo f", "Ġa n",
    "Ġan d", "ĠĠ ĠĠ",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode() -> list[str]:
    """The GPT-2 byte -> printable character table, indexed by byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def vocab():
    tokens = bytes_to_unicode()
    for m in MERGES:
        a, b = m.split(" ")
        assert a in tokens and b in tokens, m
        assert a + b not in tokens, m
        tokens.append(a + b)
    tokens += SPECIALS
    types = [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIALS)) + [gguf.TokenType.CONTROL] * len(SPECIALS)
    assert len(tokens) == 300 and len(set(tokens)) == 300
    return tokens, types


# ----------------------------------------------------------------------------------------------
# Random tensors
# ----------------------------------------------------------------------------------------------

def f16(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def pack_k_scales(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K 12-byte packing of eight 6-bit scales and mins per block ([n, 8] each)."""
    n = sc.shape[0]
    out = np.zeros((n, 12), dtype=np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def pack_q3_scales(s6: np.ndarray) -> np.ndarray:
    """Q3_K 12-byte packing of sixteen 6-bit scales per block ([n, 16]): low nibbles of scales 0..8
    and 8..16 share bytes 0..8, the top 2 bits of scale k sit at bits 2 (k / 4) of byte 8 + k % 4."""
    out = np.zeros((s6.shape[0], 12), dtype=np.uint8)
    out[:, 0:8] = (s6[:, 0:8] & 15) | ((s6[:, 8:16] & 15) << 4)
    for k in range(16):
        out[:, 8 + k % 4] |= ((s6[:, k] >> 4) & 3) << (2 * (k // 4))
    return out


def random_iq4_nl(rng, rows: int, cols: int) -> np.ndarray:
    """Random IQ4_NL blocks (32 values: f16 d, 16 quant bytes) with weights of std ~ 1/sqrt(cols)."""
    n = rows * cols // 32
    # signed scales: the IQ4 values themselves average -5.9
    d = 1.0 / np.sqrt(cols) / 67.0 * rng.uniform(0.8, 1.2, size=n) * rng.choice([-1, 1], size=n)
    blocks = np.concatenate([f16(d), rng.integers(0, 256, size=(n, 16), dtype=np.uint8)], axis=1)
    return blocks.reshape(rows, cols // 32 * 18)


def random_kquant(rng, rows: int, cols: int, qtype) -> np.ndarray:
    """Random valid K-quant (and IQ4_XS) blocks, [rows, cols/256 * block_bytes] uint8."""
    assert cols % 256 == 0
    n = rows * cols // 256
    sigma = 1.0 / np.sqrt(cols)
    jitter = rng.uniform(0.8, 1.2, size=n)
    if qtype in (Q.Q4_K, Q.Q5_K):
        levels, std_q = (16, 4.61) if qtype == Q.Q4_K else (32, 9.23)
        mean_q = (levels - 1) / 2
        sc = rng.integers(8, 64, size=(n, 8)).astype(np.uint8)
        d = sigma / (35.5 * std_q) * jitter
        ratio = np.ceil(mean_q)  # dmin = d * ratio keeps m = sc * mean_q / ratio within 6 bits
        dmin = d * ratio
        m = np.clip(np.rint(sc * mean_q / ratio), 0, 63).astype(np.uint8)
        parts = [f16(d), f16(dmin), pack_k_scales(sc, m)]
        if qtype == Q.Q5_K:
            parts.append(rng.integers(0, 256, size=(n, 32), dtype=np.uint8))
        parts.append(rng.integers(0, 256, size=(n, 128), dtype=np.uint8))
        blocks = np.concatenate(parts, axis=1)
    elif qtype == Q.Q2_K:
        # q in 0..3 (mean 1.5, std 1.12); 4-bit scales 8..15, mins m ~ 0.75 sc with dmin = 2d
        sc = rng.integers(8, 16, size=(n, 16)).astype(np.uint8)
        m = np.clip(np.rint(sc * 0.75), 0, 15).astype(np.uint8)
        d = sigma / (11.5 * 1.12) * jitter
        qs = rng.integers(0, 256, size=(n, 64), dtype=np.uint8)
        blocks = np.concatenate([sc | (m << 4), qs, f16(d), f16(2 * d)], axis=1)
    elif qtype == Q.Q3_K:
        # q - 4 in -4..3 (std 2.29); signed 6-bit scales of magnitude 8..31
        hmask = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        qs = rng.integers(0, 256, size=(n, 64), dtype=np.uint8)
        s6 = (rng.integers(8, 32, size=(n, 16)) * rng.choice([-1, 1], size=(n, 16)) + 32).astype(np.uint8)
        d = sigma / (20.0 * 2.29) * jitter
        blocks = np.concatenate([hmask, qs, pack_q3_scales(s6), f16(d)], axis=1)
    elif qtype == Q.IQ4_XS:
        # IQ4 values have std ~67; signed 6-bit sub-block scales of magnitude 8..31
        ls = (rng.integers(8, 32, size=(n, 8)) * rng.choice([-1, 1], size=(n, 8)) + 32).astype(np.uint16)
        lo = (ls & 15).astype(np.uint8)
        scales_l = lo[:, 0::2] | (lo[:, 1::2] << 4)
        scales_h = ((ls >> 4) << (2 * np.arange(8, dtype=np.uint16))).sum(axis=1, dtype=np.uint16)
        d = sigma / (20.0 * 67.0) * jitter
        qs = rng.integers(0, 256, size=(n, 128), dtype=np.uint8)
        blocks = np.concatenate([f16(d), scales_h.reshape(-1, 1).view(np.uint8), scales_l, qs], axis=1)
    elif qtype == Q.Q6_K:
        ql = rng.integers(0, 256, size=(n, 128), dtype=np.uint8)
        qh = rng.integers(0, 256, size=(n, 64), dtype=np.uint8)
        mag = rng.integers(16, 64, size=(n, 16))
        sgn = rng.choice([-1, 1], size=(n, 16))
        scales = (mag * sgn).astype(np.int8).view(np.uint8)
        d = sigma / (40.0 * 18.5) * jitter
        blocks = np.concatenate([ql, qh, scales, f16(d)], axis=1)
    else:
        raise ValueError(qtype)
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    assert blocks.shape[1] == size
    return blocks.reshape(rows, cols // 256 * size)


def encode(rng, arr: np.ndarray, qtype):
    """(data, raw_dtype) ready for GGUFWriter.add_tensor."""
    if qtype == Q.F32:
        return arr.astype(np.float32), None
    if qtype == Q.F16:
        return arr.astype(np.float16), None
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q2_K, Q.Q3_K, Q.IQ4_XS):
        return random_kquant(rng, arr.shape[0], arr.shape[1], qtype), qtype
    if qtype == Q.IQ4_NL:
        return random_iq4_nl(rng, arr.shape[0], arr.shape[1]), qtype
    return quantize(arr.astype(np.float32), qtype), qtype


# ----------------------------------------------------------------------------------------------
# Model specs
# ----------------------------------------------------------------------------------------------

SPECS = {
    "llama-q8": dict(
        arch="llama", hidden=256, heads=4, kv=2, head_dim=64, ffn=512, layers=2, tied=False,
        eps=1e-5, base=10000.0, pre="smollm", file_type=gguf.LlamaFileType.MOSTLY_Q8_0,
        types={"token_embd": Q.Q8_0, "output": Q.F16,
               0: {"attn_q": Q.Q8_0, "attn_k": Q.Q4_0, "attn_v": Q.Q4_1, "attn_output": Q.F16,
                   "ffn_gate": Q.Q4_0, "ffn_up": Q.Q4_1, "ffn_down": Q.Q8_0},
               1: {"attn_q": Q.Q4_1, "attn_k": Q.F16, "attn_v": Q.Q8_0, "attn_output": Q.Q4_0,
                   "ffn_gate": Q.Q8_0, "ffn_up": Q.Q4_0, "ffn_down": Q.Q4_1}}),
    "llama-kquants": dict(
        arch="llama", hidden=256, heads=4, kv=2, head_dim=64, ffn=512, layers=2, tied=False,
        eps=1e-5, base=10000.0, pre="smollm", file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M,
        types={"token_embd": Q.Q4_K, "output": Q.Q6_K,
               0: {"attn_q": Q.Q4_K, "attn_k": Q.Q5_K, "attn_v": Q.Q6_K, "attn_output": Q.BF16,
                   "ffn_gate": Q.Q4_K, "ffn_up": Q.Q5_K, "ffn_down": Q.Q6_K},
               1: {"attn_q": Q.Q5_K, "attn_k": Q.Q6_K, "attn_v": Q.Q4_K, "attn_output": Q.Q4_K,
                   "ffn_gate": Q.BF16, "ffn_up": Q.Q4_K, "ffn_down": Q.Q5_K}}),
    "llama-q2-iq4": dict(
        arch="llama", hidden=256, heads=4, kv=2, head_dim=64, ffn=512, layers=2, tied=False,
        eps=1e-5, base=10000.0, pre="smollm", file_type=gguf.LlamaFileType.MOSTLY_IQ4_XS,
        types={"token_embd": Q.Q5_1, "output": Q.IQ4_XS,
               0: {"attn_q": Q.Q5_0, "attn_k": Q.Q5_1, "attn_v": Q.Q2_K, "attn_output": Q.Q3_K,
                   "ffn_gate": Q.IQ4_NL, "ffn_up": Q.IQ4_XS, "ffn_down": Q.Q2_K},
               1: {"attn_q": Q.IQ4_XS, "attn_k": Q.Q3_K, "attn_v": Q.IQ4_NL, "attn_output": Q.Q5_1,
                   "ffn_gate": Q.Q2_K, "ffn_up": Q.Q5_0, "ffn_down": Q.Q3_K}}),
    "qwen2": dict(
        arch="qwen2", hidden=256, heads=4, kv=2, head_dim=64, ffn=512, layers=2, tied=True,
        eps=1e-6, base=1000000.0, pre="qwen2", file_type=gguf.LlamaFileType.MOSTLY_Q8_0,
        types={"token_embd": Q.Q8_0,
               0: {"attn_q": Q.Q8_0, "attn_k": Q.Q8_0, "attn_v": Q.Q4_0, "attn_output": Q.Q8_0,
                   "ffn_gate": Q.Q4_0, "ffn_up": Q.Q8_0, "ffn_down": Q.F16},
               1: {"attn_q": Q.Q4_0, "attn_k": Q.F16, "attn_v": Q.Q8_0, "attn_output": Q.Q8_0,
                   "ffn_gate": Q.Q8_0, "ffn_up": Q.Q4_0, "ffn_down": Q.Q8_0}}),
    "qwen3": dict(
        arch="qwen3", hidden=256, heads=8, kv=2, head_dim=64, ffn=512, layers=2, tied=True,
        eps=1e-6, base=1000000.0, pre="qwen2", file_type=gguf.LlamaFileType.MOSTLY_Q8_0,
        types={"token_embd": Q.Q8_0,
               0: {"attn_q": Q.Q8_0, "attn_k": Q.Q8_0, "attn_v": Q.Q4_1, "attn_output": Q.Q8_0,
                   "ffn_gate": Q.Q4_1, "ffn_up": Q.Q8_0, "ffn_down": Q.Q8_0},
               1: {"attn_q": Q.Q4_1, "attn_k": Q.Q8_0, "attn_v": Q.Q8_0, "attn_output": Q.Q4_1,
                   "ffn_gate": Q.Q8_0, "ffn_up": Q.Q4_1, "ffn_down": Q.Q8_0}}),
}

# Hugging Face name -> GGUF name within a layer; the converter writes tensors in the order of the
# sorted HF names (as the safetensors files list them).
HF_LAYER = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
]


def tensor_list(spec, n_vocab):
    """[(hf_name, gguf_name, numpy shape [rows, cols])] in the converter's order."""
    H, F, d = spec["hidden"], spec["ffn"], spec["head_dim"]
    qd, kvd = spec["heads"] * d, spec["kv"] * d
    shapes = {
        "attn_norm.weight": (H,), "ffn_norm.weight": (H,), "ffn_down.weight": (H, F),
        "ffn_gate.weight": (F, H), "ffn_up.weight": (F, H), "attn_q.weight": (qd, H),
        "attn_k.weight": (kvd, H), "attn_v.weight": (kvd, H), "attn_output.weight": (H, qd),
        "attn_q.bias": (qd,), "attn_k.bias": (kvd,), "attn_v.bias": (kvd,),
        "attn_q_norm.weight": (d,), "attn_k_norm.weight": (d,),
    }
    arch = spec["arch"]
    wanted = {"attn_norm.weight", "ffn_norm.weight", "ffn_down.weight", "ffn_gate.weight",
              "ffn_up.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"}
    if arch == "qwen2":
        wanted |= {"attn_q.bias", "attn_k.bias", "attn_v.bias"}
    if arch == "qwen3":
        wanted |= {"attn_q_norm.weight", "attn_k_norm.weight"}
    out = []
    if not spec["tied"]:
        out.append(("lm_head.weight", "output.weight", (n_vocab, H)))
    out.append(("model.embed_tokens.weight", "token_embd.weight", (n_vocab, H)))
    layers = sorted(range(spec["layers"]), key=str)  # "model.layers.10" sorts before "model.layers.2"
    for l in layers:
        for hf, g in HF_LAYER:
            if g in wanted:
                out.append((f"model.layers.{l}.{hf}", f"blk.{l}.{g}", shapes[g]))
    out.append(("model.norm.weight", "output_norm.weight", (H,)))
    return out


def write_model(name: str, spec: dict, path: Path) -> dict:
    seed = zlib.crc32(name.encode())
    rng = np.random.default_rng(seed)
    tokens, types = vocab()
    V = len(tokens)
    arch = spec["arch"]
    w = GGUFWriter(str(path), arch)
    # metadata in the converter's order: general.*, hyperparameters, tokenizer, quantization version
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(f"tiny {name}")
    w.add_block_count(spec["layers"])
    w.add_context_length(2048)
    w.add_embedding_length(spec["hidden"])
    w.add_feed_forward_length(spec["ffn"])
    w.add_head_count(spec["heads"])
    w.add_head_count_kv(spec["kv"])
    w.add_rope_freq_base(spec["base"])
    w.add_layer_norm_rms_eps(spec["eps"])
    if arch == "qwen3":
        w.add_key_length(spec["head_dim"])
        w.add_value_length(spec["head_dim"])
    w.add_file_type(spec["file_type"])
    if arch == "llama":
        w.add_vocab_size(V)
        w.add_rope_dimension_count(spec["head_dim"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(spec["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    eot, ims, ime = (tokens.index(s) for s in SPECIALS)
    if arch == "llama":  # SmolLM2-style: bos <|im_start|>, eos/pad <|im_end|>
        w.add_bos_token_id(ims)
        w.add_eos_token_id(ime)
        w.add_unk_token_id(eot)
        w.add_pad_token_id(ime)
    else:  # Qwen-style: bos/pad <|endoftext|>, eos <|im_end|>
        w.add_bos_token_id(eot)
        w.add_eos_token_id(ime)
        w.add_pad_token_id(eot)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tensor_types = {}
    for hf, g, shape in tensor_list(spec, V):
        base = g.rsplit(".", 1)[0]
        if len(shape) == 1:
            if g == "output_norm.weight" and spec["tied"]:
                arr = 4.0 * (1.0 + 0.1 * rng.standard_normal(shape))
            elif g.endswith("norm.weight"):
                arr = 1.0 + 0.1 * rng.standard_normal(shape)
            else:  # biases; a large v bias would add the same vector at every position
                arr = {"attn_q.bias": 0.2, "attn_k.bias": 0.5, "attn_v.bias": 0.05}[g.split(".", 2)[2]] * rng.standard_normal(shape)
            qt = Q.F32
        else:
            rows, cols = shape
            if g == "token_embd.weight" and spec["tied"]:
                # also the output matrix: a small table keeps the input token's own row from
                # dominating the logits (every token would predict itself); output_norm's
                # larger weights bring the logits back to std ~2
                arr = 0.5 * rng.standard_normal(shape) / np.sqrt(cols)
            elif g == "token_embd.weight":
                arr = rng.standard_normal(shape)
            elif g == "output.weight":
                arr = 2.0 * rng.standard_normal(shape) / np.sqrt(cols)
            else:
                arr = rng.standard_normal(shape) / np.sqrt(cols)
            if base.startswith("blk."):
                layer = int(base.split(".")[1])
                qt = spec["types"][layer][base.split(".")[2]]
            else:
                qt = spec["types"][base]
        data, raw = encode(rng, arr, qt)
        w.add_tensor(g, data, raw_dtype=raw)
        tensor_types[g] = qt.name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensor_types


# ----------------------------------------------------------------------------------------------
# References
# ----------------------------------------------------------------------------------------------

def pick_sequences(model, V: int, seed: int):
    """Two sequences (ordinary tokens, the second opening with <|im_start|>) whose greedy steps all
    have a top-2 margin >= MIN_MARGIN; the first seed that works, searched deterministically."""
    from gguf_numpy import top2_margin

    ims = V - 2
    cases = []
    for ci, L in enumerate(SEQ_LENS):
        best = None
        for s in range(200):
            rng = np.random.default_rng([seed, ci, s])
            seq = [int(t) for t in rng.integers(0, V - 3, size=L)]
            if ci == 1:
                seq[0] = ims
            cont, _, steps = model.greedy(seq, N_GEN)
            mm = min(top2_margin(r) for r in steps)
            if best is None or mm > best[0]:
                best = (mm, seq, cont, s)
            if mm >= MIN_MARGIN:
                break
        cases.append(best)
    return cases


def run_llamacpp(path: Path, cases, logits_rows):
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=128, n_batch=128, n_threads=2, n_threads_batch=2,
                n_gpu_layers=0, logits_all=True, seed=0, verbose=False)
    res = []
    for (mm, seq, cont, _), rows in zip(cases, logits_rows):
        llm.reset()
        llm.eval(seq + cont[:-1])  # teacher-forced, same rows as the numpy reference
        lc = np.array(llm.scores[: llm.n_tokens], dtype=np.float64)
        # llama.cpp's own greedy decode, one token at a time
        llm.reset()
        llm.eval(seq)
        g = []
        for i in range(N_GEN):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            g.append(t)
            if i < N_GEN - 1:
                llm.eval([t])
        d = np.abs(lc - rows)
        res.append({
            "max_abs_diff": float(d.max()),
            "mean_abs_diff": float(d.mean()),
            "max_abs_logit": float(np.abs(rows).max()),
            "greedy": g,
            "greedy_agrees": g == cont,
            "argmax_agree_rows": int((lc.argmax(-1) == rows.argmax(-1)).sum()),
            "rows": int(len(rows)),
        })
    toks = []
    for text, special in TOKENIZE:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)
        toks.append({"text": text, "special": special, "ids": [int(i) for i in ids]})
    llm.close()
    return res, toks


# Strings tokenized by llama.cpp with the tiny vocabulary (merges, byte fallback to single bytes,
# control tokens recognised only with special=True).
TOKENIZE = [
    ("the cat and the dog went in", False),
    ("  spaces    and\n\nnewlines\tand tabs", False),
    ("héllo wörld 123 😀", False),
    ("<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n", True),
    ("<|im_start|>user\nhi there<|im_end|>\n", False),
]


def f32_check(name: str, spec: dict) -> dict:
    """The same architecture with every tensor F32, run by llama.cpp with an F32 KV cache: llama.cpp
    then rounds nothing to 8 or 16 bits, so this isolates the numpy forward's reading of the
    architecture (rope style, norms, biases, heads) from quantization noise."""
    from llama_cpp import Llama

    from gguf_numpy import GgufModel

    s = copy.deepcopy(spec)
    for k, v in s["types"].items():
        if isinstance(v, dict):
            s["types"][k] = {kk: Q.F32 for kk in v}
        else:
            s["types"][k] = Q.F32
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}-f32.gguf"
        write_model(name, s, path)
        model = GgufModel(str(path))
        rng = np.random.default_rng(zlib.crc32(name.encode()) + 1)
        seq = [int(t) for t in rng.integers(0, model.vocab, size=40)]
        ref = model.forward(seq)
        res = {"tokens": len(seq)}
        for label, kw in (("kv_f32", dict(type_k=0, type_v=0)), ("kv_f16", {})):  # 0 = GGML_TYPE_F32
            llm = Llama(model_path=str(path), n_ctx=128, n_batch=128, n_threads=2, n_threads_batch=2,
                        n_gpu_layers=0, logits_all=True, seed=0, verbose=False, **kw)
            llm.eval(seq)
            lc = np.array(llm.scores[: llm.n_tokens], dtype=np.float64)
            res[f"max_abs_diff_{label}"] = float(np.abs(lc - ref).max())
            llm.close()
        res["logit_std"] = float(ref.std())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamacpp", action="store_true", help="also compare against llama.cpp")
    ap.add_argument("--only", nargs="*", choices=list(SPECS))
    args = ap.parse_args()
    from gguf_numpy import GgufModel, top2_margin

    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in SPECS.items():
        if args.only and name not in args.only:
            continue
        path = OUT / f"{name}.gguf"
        ttypes = write_model(name, spec, path)
        size = path.stat().st_size
        assert size < 1.5e6, (name, size)
        model = GgufModel(str(path))
        assert model.arch == spec["arch"] and model.head_dim == spec["head_dim"]
        assert model.tied == spec["tied"]
        V = model.vocab
        seed = zlib.crc32(name.encode())
        cases = pick_sequences(model, V, seed)
        rows_all, meta, offset = [], [], 0
        for ci, (mm, seq, cont, s) in enumerate(cases):
            rows = model.forward(seq + cont[:-1])
            # the teacher-forced pass must reproduce the cached greedy decode
            assert [int(t) for t in rows[len(seq) - 1:].argmax(-1)] == cont
            margins = [top2_margin(r) for r in rows[len(seq) - 1:]]
            rows_all.append(rows)
            meta.append({
                "name": f"seq{ci}", "prompt": seq, "continuation": cont,
                "rows": [offset, offset + len(rows)],
                "min_top2_margin": round(min(margins), 5),
                "top2_margins": [round(m, 5) for m in margins],
            })
            offset += len(rows)
        logits = np.concatenate(rows_all).astype("<f4")
        np.save(OUT / f"{name}.npy", logits)
        doc = {
            "gguf": f"{name}.gguf",
            "arch": spec["arch"],
            "config": {k: spec[k] for k in ("hidden", "heads", "kv", "head_dim", "ffn", "layers", "tied", "eps", "base")},
            "rope": "normal (adjacent pairs)" if spec["arch"] == "llama" else "neox (halves)",
            "vocab": V,
            "tensor_types": ttypes,
            "file_bytes": size,
            "cases": meta,
            "logits": f"{name}.npy",
            "logits_layout": "float32 [sum of rows, vocab]; case rows [a, b) hold one teacher-forced pass over "
                             "prompt + continuation[:-1]; row a+i = next-token logits after position i",
            "reference": "float64 numpy forward (tests/reference/gguf_numpy.py) of gguf-py dequantized tensors",
            "versions": {"gguf": gguf_version(), "numpy": np.__version__},
        }
        if args.llamacpp:
            import llama_cpp

            res, toks = run_llamacpp(path, cases, rows_all)
            doc["llamacpp"] = {
                "version": llama_cpp.__version__, "device": "CPU", "n_threads": 2,
                "flash_attn": False, "kv_cache": "f16 (default)",
                "cases": res,
                "max_abs_diff": max(r["max_abs_diff"] for r in res),
                "greedy_agrees": all(r["greedy_agrees"] for r in res),
                "note": "llama.cpp's CPU matmuls round activations to 8 bits (Q8_0/Q8_1/Q8_K) for quantized "
                        "weights and to 16 bits for F16/BF16 weights, and its KV cache is F16: that is the "
                        "max_abs_diff above. f32_weights: the same model with F32 tensors.",
                "f32_weights": f32_check(name, spec),
            }
            doc["tokenize"] = toks
        (OUT / f"{name}.json").write_text(dump_json(doc))
        msg = f"{name}: {size} bytes, min margins {[m['min_top2_margin'] for m in meta]}"
        if args.llamacpp:
            msg += (f", llama.cpp max|d| {doc['llamacpp']['max_abs_diff']:.4g} greedy agrees "
                    f"{doc['llamacpp']['greedy_agrees']}, F32 weights+KV max|d| "
                    f"{doc['llamacpp']['f32_weights']['max_abs_diff_kv_f32']:.3g}")
        print(msg)


def gguf_version():
    from importlib.metadata import version

    return version("gguf")


if __name__ == "__main__":
    main()
