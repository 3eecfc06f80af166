#!/usr/bin/env python3
"""Writes a 2-layer random gpt-oss checkpoint at gpt-oss-20b's real widths, plus its reference.

    python tests/reference/real_widths.py --out /tmp/gptoss-real   # about 3.3 GB; never commit it

Widths: hidden 2880, 64 query / 8 KV heads, head_dim 64, intermediate 2880, 32 experts top-4,
sliding window 128, vocab 201088. Hub layout with the hub's 3-shard naming
(model-0000{0,1,2}-of-00002.safetensors + model.safetensors.index.json).

DIR/reference/cases.json holds one case "real_widths":
  prompt       160 token ids
  positions    [0, 1, 63, 127, 128, 129, 159]
  logits       real_widths.npy, float32 [7, 201088]: row r = logits at positions[r] of ONE forward pass
               over the prompt only (so row 6 = position 159 predicts continuation[0])
  continuation greedy (argmax) continuation of 4 tokens after the prompt
Tensors are generated and written one shard at a time to keep host memory low.
"""

import argparse
import gc
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gptoss_ref as ref  # noqa: E402

POSITIONS = [0, 1, 63, 127, 128, 129, 159]
PROMPT_LEN = 160
CONT_LEN = 4
MIN_TOP2 = 0.05
MIN_ROUTER = 0.02

# Same per-element magnitudes as the tiny fixtures, with MXFP4 scale bytes shifted for the
# longer rows (fan-in 2880) so the expert activations and the clamp rate stay similar. The router
# is scaled up because 160 positions x 2 layers x 32 experts need a wider spread to keep the
# 4th/5th router logits apart.
SCALES = {
    "embed_std": 1.0,
    "lm_head_std": 6.0,
    "norm_lo": 0.7,
    "norm_hi": 1.3,
    "qk_std": 1.5,
    "v_std": 1.0,
    "o_std": 1.0,
    "qkv_bias_std": 0.3,
    "o_bias_std": 0.1,
    "sink_std": 1.0,
    "router_std": 12.0,
    "router_bias_std": 0.5,
    "gate_up_scale": [120, 121, 122],
    "down_scale": [116, 117, 118],
    "gate_up_bias_std": 1.0,
    "down_bias_std": 0.3,
}


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)


def log(t0, msg):
    print(f"[{time.time() - t0:7.1f}s rss_peak {peak_rss_gb():5.2f} GB] {msg}", flush=True)


def shard_plan(cfg):
    """Hub-style placement: layer 1's attention + router go first with layer 0, its experts in the next
    shard, and embed_tokens / norm / lm_head in the last one."""
    files = [f"model-0000{i}-of-00002.safetensors" for i in range(3)]
    l0, l1 = ref.layer_tensor_specs(cfg, 0), ref.layer_tensor_specs(cfg, 1)
    return [(files[0], l1[:13] + l0), (files[1], l1[13:]), (files[2], ref.global_tensor_specs(cfg))]


def write_checkpoint(out_dir, cfg, seed, t0):
    ref.write_json(os.path.join(out_dir, "config.json"), cfg)
    wm, total = {}, 0
    for fname, specs in shard_plan(cfg):
        tensors = {}
        for name, shape, dtype in specs:
            arr = ref.make_tensor(cfg, SCALES, seed, name, shape, dtype)
            tensors[name] = ref.to_torch(arr, dtype)
            wm[name] = fname
            total += arr.nbytes
            del arr
        ref.save_safetensors(os.path.join(out_dir, fname), tensors)
        del tensors
        gc.collect()
        log(t0, f"wrote {fname}")
    assert len(wm) == len(ref.all_tensor_specs(cfg))
    ref.write_index(os.path.join(out_dir, "model.safetensors.index.json"), wm, total)
    return total


class Reader:
    """name -> numpy array (uint16 bf16 bits or uint8), read through the index."""

    def __init__(self, out_dir):
        self.dir = out_dir
        with open(os.path.join(out_dir, "model.safetensors.index.json")) as f:
            self.wm = json.load(f)["weight_map"]

    def __call__(self, name):
        from safetensors import safe_open

        with safe_open(os.path.join(self.dir, self.wm[name]), framework="pt") as f:
            t = f.get_tensor(name)
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()


@torch.no_grad()
def router_margin_only(model, ids, k):
    out = model.model(torch.tensor([ids]), use_cache=False, output_router_logits=True)
    return ref.router_margin([r.float().numpy() for r in out.router_logits], k)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=3003)
    ap.add_argument("--tries", type=int, default=40, help="prompts ranked by router margin")
    ap.add_argument("--full-tries", type=int, default=8, help="best-ranked prompts evaluated fully")
    args = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out_dir = os.path.abspath(args.out)
    os.makedirs(os.path.join(out_dir, "reference"), exist_ok=True)

    cfg = ref.make_config(layers=2, hidden=2880, heads=64, kv_heads=8, head_dim=64, intermediate=2880,
                          experts=32, top_k=4, window=128, vocab=201088, eos_token_id=200002,
                          pad_token_id=199999)
    total = write_checkpoint(out_dir, cfg, args.seed, t0)
    log(t0, f"checkpoint written: {total} tensor bytes, {ref.dir_size(out_dir)} bytes on disk")

    model = ref.load_hf(out_dir, via_bf16=True)
    log(t0, "loaded with transformers (bf16, upcast to float32)")
    ref.check_config(model, cfg)
    ref.check_loaded_weights(model, cfg, Reader(out_dir), experts_to_check=[(0, 0), (0, 31), (1, 7), (1, 20)])
    gc.collect()
    log(t0, "loaded weights match the checkpoint (bf16 tensors exactly; 4 experts vs own MXFP4 dequant)")

    clamp = ref.ClampCounter(model)
    k = cfg["num_experts_per_tok"]
    special = {200002, 199999, 200012}

    def evaluate(attempt, prompt):
        clamp.reset()
        logits, _ = ref.forward(model, prompt)
        clamp_stats = clamp.stats()
        cont = ref.greedy_recompute(model, prompt, CONT_LEN)
        full, routers = ref.forward(model, prompt + cont[:-1], router=True)
        assert [int(t) for t in full[PROMPT_LEN - 1:].argmax(-1)] == cont
        top2 = float(min(ref.top2_margins(logits[POSITIONS]).min(), ref.top2_margins(full[PROMPT_LEN - 1:]).min()))
        rmarg = ref.router_margin(routers, k)
        log(t0, f"try {attempt}: top2 {top2:.4f} router {rmarg:.4f} continuation {cont}")
        ok = top2 >= MIN_TOP2 and rmarg >= MIN_ROUTER and not (special & set(cont))
        score = min(top2 / MIN_TOP2, rmarg / MIN_ROUTER)
        return ok, score, (attempt, prompt, cont, logits, top2, rmarg, clamp_stats)

    # Router margins are cheap (no lm_head): rank all prompts by them, then evaluate the best ones fully.
    prompts = []
    for attempt in range(args.tries):
        rng = np.random.default_rng([args.seed, attempt])
        prompt = [int(t) for t in rng.integers(0, 199998, size=PROMPT_LEN)]
        rm = router_margin_only(model, prompt, k)
        prompts.append((rm, attempt, prompt))
    prompts.sort(key=lambda x: -x[0])
    log(t0, f"prompt-only router margins of {args.tries} prompts: best {[round(p[0], 4) for p in prompts[:8]]}")
    chosen, evaluated = None, []
    for rm, attempt, prompt in prompts[:args.full_tries]:
        ok, score, result = evaluate(attempt, prompt)
        if ok:
            chosen = result
            break
        evaluated.append((score, result))
    if chosen is None:
        print("WARNING: no prompt met both margins; keeping the best one tried", flush=True)
        chosen = max(evaluated, key=lambda x: x[0])[1]
    attempt, prompt, cont, logits, top2, rmarg, clamp_stats = chosen

    gen, gen_logits = ref.greedy_generate(model, prompt, CONT_LEN)
    if gen != cont:
        raise SystemExit(f"generate() {gen} != recompute loop {cont}")
    gen_vs_full = float(np.abs(gen_logits[0] - logits[PROMPT_LEN - 1]).max())
    log(t0, f"generate() agrees; |generate row 0 - full forward row 159| = {gen_vs_full:.2e}")

    npy = "real_widths.npy"
    np.save(os.path.join(out_dir, "reference", npy), np.ascontiguousarray(logits[POSITIONS], dtype="<f4"))
    case = {
        "name": "real_widths",
        "prompt": prompt,
        "continuation": cont,
        "logits": npy,
        "positions": POSITIONS,
        "min_top2_margin": round(top2, 6),
        "min_router_margin": round(rmarg, 6),
    }
    doc = {
        "cases": [case],
        "min_top2_margin": case["min_top2_margin"],
        "min_router_margin": case["min_router_margin"],
        "note": "logits rows are the listed positions of one forward pass over the prompt only; "
                "continuation is the greedy continuation after the prompt",
        "swiglu_clamp": clamp_stats,
        "logits_dtype": "float32",
        "reference": "transformers GptOssForCausalLM, float32, eager attention, Mxfp4Config(dequantize=True); "
                     "loaded in bf16 and upcast to float32 (all checkpoint values are exact in bf16)",
        "versions": ref.versions(),
    }
    ref.write_cases(os.path.join(out_dir, "reference", "cases.json"), doc)
    log(t0, f"done: try {attempt}, top2 margin {top2:.4f}, router margin {rmarg:.4f}, "
            f"logit std {float(logits.std()):.2f}, clamp {clamp_stats}")
    print(f"wall {time.time() - t0:.1f}s, peak RSS {peak_rss_gb():.2f} GB", flush=True)


if __name__ == "__main__":
    main()
