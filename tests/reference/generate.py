#!/usr/bin/env python3
"""Regenerates the tiny gpt-oss fixtures and their transformers reference outputs.

    python tests/reference/generate.py            # from the repository root

Writes tests/fixtures/tiny/ (single model.safetensors) and tests/fixtures/tiny-sharded/
(hub-style 3-shard checkpoint + model.safetensors.index.json), each with reference/cases.json
and one float32 .npy of logits per case. Deterministic: fixed seeds for weights and prompts.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gptoss_ref as ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

MIN_TOP2 = 0.05  # top-1 minus top-2 logit, every row
MIN_ROUTER = 0.02  # k-th minus (k+1)-th router logit, every layer and position

# Magnitudes: O(1) activations, logits spread over several units, SwiGLU clamp hit regularly.
SCALES = {
    "embed_std": 1.0,
    "lm_head_std": 4.0,
    "norm_lo": 0.7,
    "norm_hi": 1.3,
    "qk_std": 1.5,
    "v_std": 1.0,
    "o_std": 1.0,
    "qkv_bias_std": 0.3,
    "o_bias_std": 0.1,
    "sink_std": 1.0,
    "router_std": 3.0,
    "router_bias_std": 0.5,
    "gate_up_scale": [123, 124, 125],
    "down_scale": [118, 119, 120],
    "gate_up_bias_std": 1.0,
    "down_bias_std": 0.3,
}

FIXTURES = {
    "tiny": {
        "seed": 1001,
        "config": dict(layers=4, hidden=96, heads=4, kv_heads=2, head_dim=16, intermediate=128, experts=8,
                       top_k=4, window=8, vocab=512, eos_token_id=511, pad_token_id=510),
        "scales": dict(SCALES),
        "sharding": None,
    },
    "tiny-sharded": {
        "seed": 2002,
        "config": dict(layers=3, hidden=64, heads=6, kv_heads=2, head_dim=16, intermediate=160, experts=6,
                       top_k=2, window=6, vocab=384, eos_token_id=383, pad_token_id=382),
        "scales": dict(SCALES, down_scale=[117, 118, 119]),
        "sharding": "hub",
    },
}


def case_plan(window):
    """(name, prompt length, continuation length)."""
    return [
        ("long", (5 * window) // 2, 10),  # prompt 2.5x the window
        ("short", 3, 3 * window),  # continuation runs well past the window
        ("single", 1, 5),
        ("window_edge", window + 1, window),  # prompt just past the window
    ]


def hub_shards(cfg):
    """Tensor name -> shard file, scattered like the hub's gpt-oss-20b index: layers in a non-sequential
    order, two layers split across shards, embed_tokens / norm / lm_head in the last shard."""
    L = cfg["num_hidden_layers"]
    files = [f"model-0000{i}-of-00002.safetensors" for i in range(3)]
    layers = [ref.layer_tensor_specs(cfg, i) for i in range(L)]
    assert L == 3
    order = [
        (0, layers[0]),
        (0, layers[2][:9]),  # layer 2 starts in shard 0 ...
        (1, layers[2][9:]),  # ... and ends in shard 1
        (1, layers[1][:14]),  # layer 1 split between shard 1 and shard 2
        (2, layers[1][14:]),
        (2, ref.global_tensor_specs(cfg)),
    ]
    wm = {}
    for shard, specs in order:
        for name, _, _ in specs:
            wm[name] = files[shard]
    assert len(wm) == len(ref.all_tensor_specs(cfg))
    return wm


def write_checkpoint(out_dir, cfg, scales, seed, sharding):
    arrays = {}
    for name, shape, dtype in ref.all_tensor_specs(cfg):
        arrays[name] = (ref.make_tensor(cfg, scales, seed, name, shape, dtype), dtype)
    ref.write_json(os.path.join(out_dir, "config.json"), cfg)
    if sharding is None:
        ref.save_safetensors(os.path.join(out_dir, "model.safetensors"),
                             {n: ref.to_torch(a, d) for n, (a, d) in arrays.items()})
    else:
        wm = hub_shards(cfg)
        for f in sorted(set(wm.values())):
            ref.save_safetensors(os.path.join(out_dir, f),
                                 {n: ref.to_torch(a, d) for n, (a, d) in arrays.items() if wm[n] == f})
        total = sum(a.nbytes for a, _ in arrays.values())
        ref.write_index(os.path.join(out_dir, "model.safetensors.index.json"), wm, total)
    return {n: a for n, (a, _) in arrays.items()}


def read_back(out_dir):
    """name -> numpy array read from the files just written (through the index when sharded)."""
    from safetensors import safe_open

    idx = os.path.join(out_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
    else:
        wm = None
    out = {}
    files = sorted(set(wm.values())) if wm else ["model.safetensors"]
    for fn in files:
        with safe_open(os.path.join(out_dir, fn), framework="pt") as f:
            assert f.metadata() == {"format": "pt"}, f.metadata()
            for n in f.keys():
                t = f.get_tensor(n)
                if t.dtype == torch.bfloat16:
                    out[n] = t.view(torch.int16).numpy().view(np.uint16)
                else:
                    assert t.dtype == torch.uint8, (n, t.dtype)
                    out[n] = t.numpy()
                if wm is not None:
                    assert wm[n] == fn, n
    return out


def search_case(model, cfg, name, P, C, base_seed, clamp, max_tries=4000):
    V = cfg["vocab_size"]
    special = {cfg["eos_token_id"], cfg["pad_token_id"]}
    k = cfg["num_experts_per_tok"]
    best = None
    for attempt in range(max_tries):
        rng = np.random.default_rng([base_seed, attempt])
        prompt = [int(t) for t in rng.integers(0, V - 2, size=P)]
        cont = ref.greedy_recompute(model, prompt, C)
        if special & set(cont):
            continue
        ids = prompt + cont
        clamp.reset()
        logits, routers = ref.forward(model, ids, router=True)
        top2 = float(ref.top2_margins(logits).min())
        rmarg = ref.router_margin(routers, k)
        if best is None or min(top2 / MIN_TOP2, rmarg / MIN_ROUTER) > best[0]:
            best = (min(top2 / MIN_TOP2, rmarg / MIN_ROUTER), attempt)
        if top2 < MIN_TOP2 or rmarg < MIN_ROUTER:
            continue
        # argmax of the single full forward reproduces the greedy continuation
        am = logits.argmax(-1)
        assert [int(t) for t in am[P - 1:P + C - 1]] == cont, name
        return dict(prompt=prompt, continuation=cont, logits=logits, top2=top2, router=rmarg,
                    attempt=attempt, clamp=clamp.stats())
    raise SystemExit(f"{name}: no prompt meets the margins in {max_tries} tries (best {best})")


def check_bf16_load_equivalent(model, out_dir):
    """Loading in bf16 then upcasting (what real_widths.py does) gives the same float32 model."""
    other = ref.load_hf(out_dir, via_bf16=True)
    a, b = model.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    for n in a:
        if a[n].dtype != b[n].dtype or not torch.equal(a[n], b[n]):
            raise SystemExit(f"bf16-then-float32 load differs from the float32 load at {n}")
    ids = list(range(0, 3 * model.config.sliding_window))
    if not np.array_equal(ref.forward(model, ids)[0], ref.forward(other, ids)[0]):
        raise SystemExit("bf16-then-float32 load gives different logits")


def build_fixture(fname, spec):
    out_dir = os.path.join(REPO, "tests", "fixtures", fname)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(os.path.join(out_dir, "reference"))
    cfg = ref.make_config(**spec["config"])
    written = write_checkpoint(out_dir, cfg, spec["scales"], spec["seed"], spec["sharding"])

    disk = read_back(out_dir)
    assert set(disk) == set(written)
    for n in written:
        assert np.array_equal(disk[n], written[n]), n

    model = ref.load_hf(out_dir)
    ref.check_config(model, cfg)
    ref.check_loaded_weights(model, cfg, lambda n: disk[n])
    check_bf16_load_equivalent(model, out_dir)
    W = ref.spec_weights(cfg, lambda n: disk[n])
    clamp = ref.ClampCounter(model)

    cases, report = [], []
    for ci, (name, P, C) in enumerate(case_plan(cfg["sliding_window"])):
        r = search_case(model, cfg, name, P, C, spec["seed"] * 100 + ci, clamp)
        gen, gen_logits = ref.greedy_generate(model, r["prompt"], C)
        if gen != r["continuation"]:
            raise SystemExit(f"{fname}/{name}: generate() {gen} != recompute loop {r['continuation']}")
        P_, ids = len(r["prompt"]), r["prompt"] + r["continuation"]
        # generate()'s cached decode logits vs the single full forward
        gen_vs_full = float(np.abs(gen_logits - r["logits"][P_ - 1:P_ + C - 1]).max())
        if gen_vs_full > 1e-3:
            raise SystemExit(f"{fname}/{name}: generate() logits differ from the full forward by {gen_vs_full}")
        spec_diff = float(np.abs(ref.spec_forward(cfg, W, ids) - r["logits"]).max())
        if spec_diff > 1e-3:
            raise SystemExit(f"{fname}/{name}: float64 spec forward differs from transformers by {spec_diff}")
        npy = f"{name}.npy"
        np.save(os.path.join(out_dir, "reference", npy), np.ascontiguousarray(r["logits"], dtype="<f4"))
        cases.append({
            "name": name,
            "prompt": r["prompt"],
            "continuation": r["continuation"],
            "logits": npy,
            "min_top2_margin": round(r["top2"], 6),
            "min_router_margin": round(r["router"], 6),
        })
        report.append(dict(name=name, P=P, C=C, attempt=r["attempt"], top2=r["top2"], router=r["router"],
                           gen_vs_full=gen_vs_full, spec_diff=spec_diff,
                           logit_std=float(r["logits"].std()), clamp=r["clamp"]))

    doc = {
        "cases": cases,
        "min_top2_margin": min(c["min_top2_margin"] for c in cases),
        "min_router_margin": min(c["min_router_margin"] for c in cases),
        "swiglu_clamp": {k: sum(r["clamp"][k] for r in report) for k in report[0]["clamp"]},
        "logits_dtype": "float32",
        "reference": "transformers GptOssForCausalLM, float32, eager attention, Mxfp4Config(dequantize=True)",
        "versions": ref.versions(),
    }
    ref.write_cases(os.path.join(out_dir, "reference", "cases.json"), doc)
    return out_dir, report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(FIXTURES), help="regenerate one fixture")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    print("versions:", ref.versions())
    for fname, spec in FIXTURES.items():
        if args.only and fname != args.only:
            continue
        out_dir, report = build_fixture(fname, spec)
        print(f"\n{fname}: {ref.dir_size(out_dir)} bytes in {out_dir}")
        for r in report:
            c = r["clamp"]
            print(f"  {r['name']:12s} P={r['P']:3d} C={r['C']:3d} try={r['attempt']:4d} "
                  f"top2={r['top2']:.4f} router={r['router']:.4f} logit_std={r['logit_std']:.2f} "
                  f"|gen-full|={r['gen_vs_full']:.2e} |spec-hf|={r['spec_diff']:.2e}")
            print(f"  {'':12s} clamp: gate>7 {c['gate_clamped_above']}, up>7 {c['up_clamped_above']}, "
                  f"up<-7 {c['up_clamped_below']}, gate<-7 (unclamped) {c['gate_below_minus_limit_not_clamped']} "
                  f"of {c['gate_values']} gate values")


if __name__ == "__main__":
    main()
