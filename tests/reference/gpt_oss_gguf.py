"""The tiny gpt-oss fixture (tests/fixtures/tiny/, Hugging Face hub layout) as a GGUF file laid out
the way llama.cpp's convert_hf_to_gguf.py (GptOssModel) writes it: `tests/fixtures/gguf-tiny/gpt-oss.gguf`.

What the converter does, and this script too:
- expert weights first (the converter emits them from generate_extra_tensors before the other
  tensors): gate_up_proj blocks/scales split into gate (rows 0::2) and up (rows 1::2); each 32-value
  MXFP4 block repacked into ggml's block_mxfp4 = {u8 e; u8 qs[16]} (17 bytes) with the nibbles
  re-ordered from OpenAI's order (byte j = elements 2j | 2j+1 << 4) to ggml's (byte j = elements
  j | j+16 << 4); tensors ffn_gate_exps / ffn_up_exps / ffn_down_exps, type MXFP4;
- then the other tensors in the order of the sorted Hugging Face names: 2-D weights kept BF16
  (--outtype bf16), except ffn_gate_inp (the router), which the converter forces to F32; 1-D tensors
  (norms, biases, sinks) and the expert biases (split gate 0::2 / up 1::2 like the weights) F32;
  `self_attn.sinks` becomes `blk.N.attn_sinks.weight`;
- metadata: the generic hyperparameters, then attention.sliding_window, expert_feed_forward_length
  and YaRN rope scaling (type, factor, original_context_length); a gpt2 BPE vocabulary of 512 tokens
  (256 byte tokens, a few merges, control tokens; eos 511 as in config.json) with pre "gpt-4o".

The transformers references of `tiny` (tests/fixtures/tiny/reference/) are the ground truth for
tests/gguf_gpt_oss.rs. With `--llamacpp` (run with /work/venv-llama/bin/python), the written file is
also run through llama.cpp (llama-cpp-python, CPU) on those cases and the agreement printed.

    /work/venv-ref/bin/python tests/reference/gpt_oss_gguf.py
    /work/venv-llama/bin/python tests/reference/gpt_oss_gguf.py --llamacpp
"""
from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFWriter

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[0] / "fixtures" / "tiny"
OUT = HERE.parents[0] / "fixtures" / "gguf-tiny" / "gpt-oss.gguf"


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[a:b])
    return out


def u8(t) -> np.ndarray:
    return np.frombuffer(t[2], dtype=np.uint8).reshape(t[1])


def bf16_to_f32(t) -> np.ndarray:
    assert t[0] == "BF16"
    w = np.frombuffer(t[2], dtype=np.uint16).astype(np.uint32) << 16
    return w.view(np.float32).reshape(t[1])


def openai_to_ggml_nibbles(blocks: np.ndarray) -> np.ndarray:
    """[..., 16] bytes, byte j = e[2j] | e[2j+1] << 4  ->  byte j = e[j] | e[j+16] << 4."""
    lo, hi = blocks & 0x0F, blocks >> 4
    e = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)  # e[..., k], element order
    return (e[..., :16] | (e[..., 16:] << 4)).astype(np.uint8)


def mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """OpenAI blocks [E, R, C/32, 16] + scales [E, R, C/32] -> ggml block_mxfp4 bytes [E, R, C/32*17]."""
    q = openai_to_ggml_nibbles(blocks)
    packed = np.concatenate([scales[..., None], q], axis=-1)
    return np.ascontiguousarray(packed.reshape(packed.shape[0], packed.shape[1], -1))


def vocab(n: int, eos: int, pad: int):
    b2u = gguf_bytes_to_unicode()
    tokens = list(b2u)
    merges = ["Ġ t", "h e", "i n", "Ġ a", "e r"]
    for m in merges:
        a, b = m.split(" ")
        tokens.append(a + b)
    types = [gguf.TokenType.NORMAL] * len(tokens)
    while len(tokens) < n:
        tokens.append(f"<|reserved_{len(tokens)}|>")
        types.append(gguf.TokenType.CONTROL)
    tokens[pad] = "<|endoftext|>"
    tokens[eos] = "<|return|>"
    assert len(set(tokens)) == n
    return tokens, types, merges


def gguf_bytes_to_unicode() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def write(path: Path) -> None:
    cfg = json.loads((SRC / "config.json").read_text())
    st = read_safetensors(SRC / "model.safetensors")
    L = cfg["num_hidden_layers"]
    rs = cfg["rope_scaling"]

    w = GGUFWriter(str(path), "gpt-oss")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("tiny gpt-oss")
    w.add_block_count(L)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_expert_count(cfg["num_local_experts"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_sliding_window(cfg["sliding_window"])
    w.add_expert_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(rs["factor"])
    w.add_rope_scaling_orig_ctx_len(rs.get("original_max_position_embeddings", 4096))

    tokens, types, merges = vocab(cfg["vocab_size"], cfg["eos_token_id"], cfg["pad_token_id"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-4o")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["pad_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    def raw(name: str, arr: np.ndarray, qtype) -> None:
        w.add_tensor(name, np.ascontiguousarray(arr).view(np.uint8), raw_dtype=qtype)

    # Expert weights first, as generate_extra_tensors yields them (sorted names: down, then gate_up).
    for l in range(L):
        x = f"model.layers.{l}.mlp.experts"
        raw(f"blk.{l}.ffn_down_exps.weight", mxfp4(u8(st[f"{x}.down_proj_blocks"]), u8(st[f"{x}.down_proj_scales"])), Q.MXFP4)
        gb, gs = u8(st[f"{x}.gate_up_proj_blocks"]), u8(st[f"{x}.gate_up_proj_scales"])
        raw(f"blk.{l}.ffn_gate_exps.weight", mxfp4(gb[:, 0::2], gs[:, 0::2]), Q.MXFP4)
        raw(f"blk.{l}.ffn_up_exps.weight", mxfp4(gb[:, 1::2], gs[:, 1::2]), Q.MXFP4)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "post_attention_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.o_proj.bias": "attn_output.bias",
        "self_attn.sinks": "attn_sinks.weight",
        "mlp.router.weight": "ffn_gate_inp.weight",
        "mlp.router.bias": "ffn_gate_inp.bias",
    }
    for l in range(L):
        for k, v in per_layer.items():
            names[f"model.layers.{l}.{k}"] = f"blk.{l}.{v}"
    for hf in sorted(st):
        t = st[hf]
        if "_blocks" in hf or "_scales" in hf:
            continue
        if hf.endswith("gate_up_proj_bias"):
            l = int(hf.split(".")[2])
            b = bf16_to_f32(t)
            w.add_tensor(f"blk.{l}.ffn_gate_exps.bias", np.ascontiguousarray(b[:, 0::2]))
            w.add_tensor(f"blk.{l}.ffn_up_exps.bias", np.ascontiguousarray(b[:, 1::2]))
            continue
        if hf.endswith("down_proj_bias"):
            l = int(hf.split(".")[2])
            w.add_tensor(f"blk.{l}.ffn_down_exps.bias", bf16_to_f32(t))
            continue
        g = names[hf]
        if len(t[1]) == 1 or g.endswith("ffn_gate_inp.weight"):
            w.add_tensor(g, bf16_to_f32(t))  # F32
        else:
            raw(g, np.frombuffer(t[2], dtype=np.uint16).reshape(t[1]), Q.BF16)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run_llamacpp(path: Path) -> None:
    from llama_cpp import Llama

    ref = SRC / "reference"
    cases = json.loads((ref / "cases.json").read_text())["cases"]
    llm = Llama(model_path=str(path), n_ctx=256, n_batch=256, n_threads=2, n_threads_batch=2,
                n_gpu_layers=0, logits_all=True, seed=0, verbose=False)
    worst = 0.0
    for c in cases:
        want = np.load(ref / c["logits"])
        seq = c["prompt"] + c["continuation"]
        llm.reset()
        llm.eval(seq)
        got = np.array(llm.scores[: llm.n_tokens], dtype=np.float64)
        d = float(np.abs(got - want).max())
        worst = max(worst, d)
        llm.reset()
        llm.eval(c["prompt"])
        g = []
        for i in range(len(c["continuation"])):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            g.append(t)
            llm.eval([t])
        print(f"{c['name']}: {len(seq)} rows, max |dlogit| vs transformers {d:.3e}, "
              f"argmax agree {(got.argmax(-1) == want.argmax(-1)).sum()}/{len(seq)}, greedy agrees {g == c['continuation']}")
    print(f"llama.cpp vs transformers: max |dlogit| {worst:.3e}")
    llm.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llamacpp", action="store_true", help="also run the file through llama.cpp")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    write(a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size} bytes)")
    if a.llamacpp:
        run_llamacpp(a.out)


if __name__ == "__main__":
    main()
