"""Float64 numpy forward of a GGUF decoder-only transformer (llama, qwen2, qwen3).

Shared by `llamacpp_reference.py` and `tiny_gguf.py`. Every tensor is dequantized with gguf-py's
`gguf.quants.dequantize` and upcast to float64; the forward then follows llama.cpp's graphs for
these architectures:

* RMSNorm: x / sqrt(mean(x^2) + eps) * w, eps from `<arch>.attention.layer_norm_rms_epsilon`.
* Attention: q/k/v projections (+ biases when the file has them, qwen2), optional per-head RMSNorm
  of q and k before rope (qwen3: `attn_q_norm` / `attn_k_norm`, weight of size head_dim),
  rope, causal softmax(q k^T / sqrt(head_dim)), grouped-query heads (q head h reads kv head
  h // (n_head / n_head_kv)), output projection.
* Rope: theta_i = pos * base^(-2i/n_rot). llama uses the "normal" style that rotates adjacent pairs
  (x[2i], x[2i+1]) because the converter permuted the q/k rows; qwen2 and qwen3 use the NeoX style
  that rotates (x[i], x[i + n_rot/2]). n_rot = `<arch>.rope.dimension_count`, defaulting to the
  key length (which itself defaults to hidden / heads).
* FFN: down(silu(gate(x)) * up(x)).
* Output: RMSNorm with `output_norm`, then `output.weight`, or `token_embd.weight` when the file
  has no output tensor (tied embeddings).

GGUF stores a matrix with ne = [cols, rows]; gguf-py exposes it as a numpy array [rows, cols], so a
linear layer is y = x @ W.T with W [out, in].
"""
from __future__ import annotations

import json

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROPE_STYLE = {"llama": "norm", "qwen2": "neox", "qwen3": "neox"}


def field_value(reader: GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


class GgufModel:
    def __init__(self, path: str):
        r = GGUFReader(path)
        self.path = path
        self.arch = field_value(r, "general.architecture")
        if self.arch not in ROPE_STYLE:
            raise ValueError(f"unsupported architecture {self.arch!r}")
        a = self.arch
        self.n_layer = int(field_value(r, f"{a}.block_count"))
        self.n_embd = int(field_value(r, f"{a}.embedding_length"))
        self.n_ff = int(field_value(r, f"{a}.feed_forward_length"))
        self.n_head = int(field_value(r, f"{a}.attention.head_count"))
        self.n_head_kv = int(field_value(r, f"{a}.attention.head_count_kv", self.n_head))
        self.head_dim = int(field_value(r, f"{a}.attention.key_length", self.n_embd // self.n_head))
        self.v_head_dim = int(field_value(r, f"{a}.attention.value_length", self.head_dim))
        self.n_rot = int(field_value(r, f"{a}.rope.dimension_count", self.head_dim))
        self.eps = float(field_value(r, f"{a}.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(field_value(r, f"{a}.rope.freq_base", 10000.0))
        self.rope_style = ROPE_STYLE[a]
        self.types = {}
        self.w = {}
        for t in r.tensors:
            self.types[t.name] = t.tensor_type.name
            arr = dequantize(t.data, t.tensor_type)
            shape = tuple(int(n) for n in reversed(t.shape))
            self.w[t.name] = np.asarray(arr, dtype=np.float64).reshape(shape)
        self.vocab = self.w["token_embd.weight"].shape[0]
        self.output = self.w.get("output.weight", self.w["token_embd.weight"])
        self.tied = "output.weight" not in self.w

    # ---- pieces ----
    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        """x [T, heads, head_dim], pos [T] -> rotated copy."""
        x = x.copy()
        n = self.n_rot
        inv = self.rope_base ** (-np.arange(0, n, 2, dtype=np.float64) / n)  # [n/2]
        ang = pos[:, None].astype(np.float64) * inv[None, :]  # [T, n/2]
        c = np.cos(ang)[:, None, :]
        s = np.sin(ang)[:, None, :]
        if self.rope_style == "norm":
            a = x[..., 0:n:2].copy()
            b = x[..., 1:n:2].copy()
            x[..., 0:n:2] = a * c - b * s
            x[..., 1:n:2] = a * s + b * c
        else:
            h = n // 2
            a = x[..., 0:h].copy()
            b = x[..., h:n].copy()
            x[..., 0:h] = a * c - b * s
            x[..., h:n] = a * s + b * c
        return x

    def lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        if b is not None:
            y = y + b
        return y

    # ---- forward with a KV cache ----
    def new_cache(self):
        return {"k": [None] * self.n_layer, "v": [None] * self.n_layer, "n": 0}

    def forward(self, tokens, cache=None):
        """Logits [T, vocab] (float64) for `tokens` appended after the cached positions."""
        if cache is None:
            cache = self.new_cache()
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        p0 = cache["n"]
        pos = np.arange(p0, p0 + T)
        x = self.w["token_embd.weight"][tokens]
        group = self.n_head // self.n_head_kv
        scale = 1.0 / np.sqrt(self.head_dim)
        for l in range(self.n_layer):
            p = f"blk.{l}"
            h = self.rmsnorm(x, self.w[f"{p}.attn_norm.weight"])
            q = self.lin(h, f"{p}.attn_q").reshape(T, self.n_head, self.head_dim)
            k = self.lin(h, f"{p}.attn_k").reshape(T, self.n_head_kv, self.head_dim)
            v = self.lin(h, f"{p}.attn_v").reshape(T, self.n_head_kv, self.v_head_dim)
            if f"{p}.attn_q_norm.weight" in self.w:
                q = self.rmsnorm(q, self.w[f"{p}.attn_q_norm.weight"])
                k = self.rmsnorm(k, self.w[f"{p}.attn_k_norm.weight"])
            q = self.rope(q, pos)
            k = self.rope(k, pos)
            if cache["k"][l] is not None:
                k = np.concatenate([cache["k"][l], k], axis=0)
                v = np.concatenate([cache["v"][l], v], axis=0)
            cache["k"][l], cache["v"][l] = k, v
            S = k.shape[0]
            kk = np.repeat(k, group, axis=1)  # [S, n_head, d]
            vv = np.repeat(v, group, axis=1)
            att = np.einsum("thd,shd->hts", q, kk) * scale  # [H, T, S]
            mask = np.arange(S)[None, :] > pos[:, None]  # key after query
            att = np.where(mask[None], -np.inf, att)
            att = att - att.max(axis=-1, keepdims=True)
            att = np.exp(att)
            att = att / att.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", att, vv).reshape(T, self.n_head * self.v_head_dim)
            x = x + self.lin(o, f"{p}.attn_output")
            h = self.rmsnorm(x, self.w[f"{p}.ffn_norm.weight"])
            g = self.lin(h, f"{p}.ffn_gate")
            u = self.lin(h, f"{p}.ffn_up")
            x = x + self.lin(g / (1.0 + np.exp(-g)) * u, f"{p}.ffn_down")
        cache["n"] = p0 + T
        x = self.rmsnorm(x, self.w["output_norm.weight"])
        return x @ self.output.T

    def greedy(self, prompt, n):
        """Argmax continuation of `n` tokens, prompt logits [P, V], and the step logits [n, V]
        (row i = the logits that chose token i)."""
        cache = self.new_cache()
        logits = self.forward(prompt, cache)
        prompt_logits = logits
        out, steps = [], []
        last = logits[-1]
        for _ in range(n):
            t = int(np.argmax(last))
            out.append(t)
            steps.append(last)
            last = self.forward([t], cache)[-1]
        return out, prompt_logits, np.stack(steps)


def top2_margin(row) -> float:
    s = np.sort(np.asarray(row, dtype=np.float64))
    return float(s[-1] - s[-2])


def dump_json(obj, indent: int = 1) -> str:
    """JSON with one item per line, except that lists of numbers (or of such lists) stay on one line."""

    def flat(o):
        return isinstance(o, list) and all(
            isinstance(x, (int, float, bool, type(None))) or (isinstance(x, list) and flat(x)) for x in o)

    def enc(o, level):
        pad, inner = " " * (indent * level), " " * (indent * (level + 1))
        if isinstance(o, dict) and o:
            items = [f"{inner}{json.dumps(k)}: {enc(v, level + 1)}" for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list) and o and not flat(o):
            return "[\n" + ",\n".join(inner + enc(v, level + 1) for v in o) + "\n" + pad + "]"
        return json.dumps(o, ensure_ascii=False)

    return enc(obj, 0) + "\n"
