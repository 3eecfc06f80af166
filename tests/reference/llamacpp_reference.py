"""llama.cpp references for SmolLM2-135M-Instruct (Q4_1 GGUF): `tests/fixtures/smollm2/`.

Subcommands (run in order; `all` does them all):

    tokenize  tokenize.jsonl: {"text", "ids"} per line, llama.cpp's tokenizer with add_bos=False,
              special=False (control-token look-alikes stay plain text).
    cases     cases.json + logits_<case>.npy (llama.cpp) + exact_<case>.npy (float64 numpy forward
              of the same file, gguf_numpy.py): 4 chat prompts rendered from the GGUF's chat
              template, 32-token greedy continuations, full logit rows at 2 positions, top-32 at 10
              more, top-1 minus top-2 margins, agreement numbers, and a rope-style check.
    f32check  the model rewritten with F32 tensors (temporary file) through llama.cpp with an F32
              KV cache vs the numpy forward: isolates the architecture from quantization noise.
    speed     llama.cpp prompt and decode speed (128-token prompt, 64 generated) for --threads
              (default 2 and 1), merged into cases.json under "speed". Set OMP_WAIT_POLICY=PASSIVE
              in the environment to add that configuration.

Usage (CPU only, no network; the model file is never committed):

    python3 -m venv /work/venv-llama
    /work/venv-llama/bin/pip install -r tests/reference/requirements-gguf.txt   # builds llama.cpp (~15 min)
    /work/venv-llama/bin/python tests/reference/llamacpp_reference.py all \
        --model ~/.cache/wgpt/models/SmolLM2-135M-Instruct.Q4_1.gguf

Versions that produced the committed files: llama-cpp-python 0.3.36 (its bundled llama.cpp at
commit 0c1e570, CPU build), gguf 0.19.0, numpy 2.4.6, jinja2 3.1.6, Python 3.11 (recorded in cases.json).

Greedy decoding here is a plain argmax over llama.cpp's logits after each `Llama.eval`, no sampler
at all (so no temperature, top-k/p or repetition penalty can interfere).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[0] / "fixtures" / "smollm2"
DEFAULT_MODEL = os.path.expanduser("~/.cache/wgpt/models/SmolLM2-135M-Instruct.Q4_1.gguf")
N_THREADS = 2
N_GEN = 32

sys.path.insert(0, str(HERE))
from gguf_numpy import dump_json  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Tokenizer corpus
# ----------------------------------------------------------------------------------------------

CORPUS = [
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they've done it, haven't they? We'd go; it's fine. I'M LOUD, YOU'LL SEE.",
    "don't DON'T Don't can't won't shouldn't y'all",
    "12345678901234567890",
    "3.14159265358979 and 2.71828, also -42 and +7e-10",
    "Phone: +1 (555) 123-4567, year 2024, 1,000,000 dollars, 0x1F600",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n\tprintln!(\"{:?}\", v);\n}",
    "<html><body class=\"main\">&nbsp;<p>Hi</p></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "a\n\nb\n\n\nc",
    "line one\r\nline two\r\n",
    "tabs\tand\t\tdouble tabs\t\t\tand more",
    "many     spaces     between      words",
    "   \n   \n\t  mixed whitespace only   ",
    "\n",
    "    ",
    "日本語のテキストです。東京は大きい都市です。",
    "中文文本：你好，世界！我们今天去公园散步吧。",
    "한국어 문장입니다. 안녕하세요!",
    "Привет, мир! Как дела?",
    "Ελληνικά: Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "emoji 😀😃😄 and 👍🏽 and a family 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "Café naïve résumé façade — “quotes” and ‘single’ … ellipsis",
    "math: ∑_{i=1}^{n} i² = n(n+1)/2, √2 ≈ 1.414, ∞ ≠ ∅",
    "<|im_start|>user\nHello<|im_end|>",
    "<|endoftext|> looks special but is text here",
    "<repo_name>wgpt<file_sep>src/main.rs",
    "<|im_start|><|im_start|>",
    "user: What is 17 * 23?\nassistant: 17 * 23 = 391.",
    "https://example.com/path?query=value&other=123#frag",
    "snake_case_name camelCaseName PascalCase SCREAMING_CASE kebab-case",
    "!!!???...,,,;;;:::---___===+++",
    "The year 1999 was followed by 2000, 2001 and 20000000000000000001.",
    "A" * 64,
    "ab" * 40,
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def load_vocab_only(model: str):
    from llama_cpp import Llama

    return Llama(model_path=model, vocab_only=True, verbose=False)


def cmd_tokenize(args):
    llm = load_vocab_only(args.model)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for text in CORPUS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        back = llm.detokenize(ids).decode("utf-8")
        if back != text:
            raise SystemExit(f"llama.cpp detokenize does not round-trip {text!r}: {back!r}")
        rows.append({"text": text, "ids": [int(i) for i in ids]})
    with open(OUT / "tokenize.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {OUT / 'tokenize.jsonl'}")


# ----------------------------------------------------------------------------------------------
# Chat cases
# ----------------------------------------------------------------------------------------------

# Prompts chosen (from a handful tried) so that llama.cpp's greedy steps have clear top-1 margins;
# "capital" answers, emits <|im_end|> and goes on (decoding never stops at EOS here).
CASES = [
    ("capital", [{"role": "user", "content": "What is the capital of France? Answer in one word."}]),
    ("code", [{"role": "user", "content": "Write a Python function that returns the square of a number."}]),
    ("system", [
        {"role": "system", "content": "You are a pirate. Always talk like a pirate."},
        {"role": "user", "content": "Where is the treasure?"},
    ]),
    ("multiturn", [
        {"role": "user", "content": "Hi! My name is Ada."},
        {"role": "assistant", "content": "Hello Ada! How can I help you today?"},
        {"role": "user", "content": "List three colors of the rainbow."},
    ]),
]
TOPK = 32


def gguf_chat_template(model: str) -> tuple[str, dict]:
    from gguf import GGUFReader

    r = GGUFReader(model)
    tmpl = r.fields["tokenizer.chat_template"].contents()
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    special = {
        "bos_token": toks[int(r.fields["tokenizer.ggml.bos_token_id"].contents())],
        "eos_token": toks[int(r.fields["tokenizer.ggml.eos_token_id"].contents())],
    }
    return tmpl, special


def render_chat(tmpl: str, special: dict, messages) -> str:
    """Like transformers' apply_chat_template: sandboxed jinja2, trim_blocks + lstrip_blocks."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg):
        raise TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
    return env.from_string(tmpl).render(messages=messages, add_generation_prompt=True, **special)


def positions_for(P: int) -> tuple[list[int], list[int]]:
    """(full-row positions, top-k positions). Full float32 rows (49152 wide) are kept for two
    positions only, to keep the fixture small: the last prompt position (prefill) and the last
    generated input (decode at the longest context). Elsewhere the top-k ids and logits."""
    full = [P - 1, P + N_GEN - 2]
    inside = {0, 1, P // 4, P // 2, (3 * P) // 4, P - 2}
    gen = {P + i for i in (0, 1, 7, 15)}  # inputs = generated tokens 0, 1, 7, 15
    return full, sorted((inside | gen) - set(full))


def topk_rows(rows, k=TOPK):
    out = []
    for r in rows:
        idx = np.argsort(-np.asarray(r, dtype=np.float64), kind="stable")[:k]
        out.append([[int(i), round(float(r[i]), 5)] for i in idx])
    return out


def llama_greedy(llm, prompt, n):
    """Pure argmax decode. Returns (tokens, scores [P+n-1, V]) where row p = logits after position p."""
    llm.reset()
    llm.eval(prompt)
    out = []
    for i in range(n):
        row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        t = int(np.argmax(row))
        out.append(t)
        if i < n - 1:
            llm.eval([t])
    scores = np.array(llm.scores[: llm.n_tokens], dtype=np.float32)
    return out, scores


def versions() -> dict:
    import gguf
    import jinja2
    import llama_cpp

    v = {
        "llama_cpp_python": llama_cpp.__version__,
        "gguf": getattr(gguf, "__version__", None),
        "numpy": np.__version__,
        "jinja2": jinja2.__version__,
        "python": platform.python_version(),
    }
    if v["gguf"] is None:
        from importlib.metadata import version

        v["gguf"] = version("gguf")
    try:
        v["llama_cpp_system_info"] = llama_cpp.llama_print_system_info().decode()
    except Exception:  # older bindings
        pass
    return v


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_cases(args):
    from llama_cpp import Llama

    from gguf_numpy import GgufModel, top2_margin

    OUT.mkdir(parents=True, exist_ok=True)
    tmpl, special = gguf_chat_template(args.model)
    llm = Llama(model_path=args.model, n_ctx=512, n_batch=512, n_threads=N_THREADS,
                n_threads_batch=N_THREADS, n_gpu_layers=0, logits_all=True, seed=0, verbose=False)
    t0 = time.time()
    ref = GgufModel(args.model)
    print(f"numpy model loaded in {time.time() - t0:.1f}s")
    cases = []
    for name, messages in CASES:
        text = render_chat(tmpl, special, messages)
        prompt = [int(i) for i in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)]
        P = len(prompt)
        cont, scores = llama_greedy(llm, prompt, N_GEN)
        pos, tk_pos = positions_for(P)
        lc = scores[pos]
        np.save(OUT / f"logits_{name}.npy", lc.astype("<f4"))
        margins = [top2_margin(scores[P - 1 + i]) for i in range(N_GEN)]
        if [int(np.argmax(scores[P - 1 + i])) for i in range(N_GEN)] != cont:
            raise SystemExit("llama.cpp scores disagree with the decode loop")

        # exact reference: one teacher-forced pass over prompt + llama.cpp's continuation,
        # and its own greedy continuation
        full = ref.forward(prompt + cont[:-1])
        ex = full[pos]
        tk_d = np.abs(full[tk_pos] - scores[tk_pos].astype(np.float64)).max()
        np.save(OUT / f"exact_{name}.npy", ex.astype("<f4"))
        ex_cont, _, ex_steps = ref.greedy(prompt, N_GEN)
        ex_margins = [top2_margin(r) for r in ex_steps]
        d = np.abs(ex - lc.astype(np.float64))
        corr = float(np.corrcoef(ex.ravel(), lc.ravel().astype(np.float64))[0, 1])
        agree = 0
        while agree < N_GEN and ex_cont[agree] == cont[agree]:
            agree += 1
        c = {
            "name": name,
            "messages": messages,
            "rendered": text,
            "prompt": prompt,
            "prompt_len": P,
            "continuation": cont,
            "continuation_text": llm.detokenize(cont).decode("utf-8", errors="replace"),
            "positions": pos,
            "topk_positions": tk_pos,
            "topk_llamacpp": topk_rows(scores[tk_pos]),
            "topk_exact": topk_rows(full[tk_pos]),
            "max_abs_diff_exact_vs_llamacpp_topk_positions": float(tk_d),
            "logits": f"logits_{name}.npy",
            "exact_logits": f"exact_{name}.npy",
            "top2_margins": [round(m, 5) for m in margins],
            "min_top2_margin": round(min(margins), 5),
            "exact_continuation": ex_cont,
            "exact_top2_margins": [round(m, 5) for m in ex_margins],
            "greedy_agree_prefix": agree,
            "max_abs_diff_exact_vs_llamacpp": float(d.max()),
            "mean_abs_diff_exact_vs_llamacpp": float(d.mean()),
            "corr_exact_vs_llamacpp": corr,
            "all_rows": {  # every position of prompt + continuation[:-1]
                "rows": int(len(full)),
                "max_abs_diff": float(np.abs(full - scores.astype(np.float64)).max()),
                "argmax_agree": int((full.argmax(-1) == scores.argmax(-1)).sum()),
            },
        }
        print(f"{name}: P={P} max|d|={c['max_abs_diff_exact_vs_llamacpp']:.4f} corr={corr:.6f} "
              f"greedy agree {agree}/{N_GEN} min margin {c['min_top2_margin']:.3f}")
        print("   ", repr(c["continuation_text"]))
        if name == CASES[0][0]:
            # the other rope pairing, to show the data decides between them
            ref.rope_style = "neox"
            wrong = ref.forward(prompt + cont[:-1])[pos]
            ref.rope_style = "norm"
            rope_check = {"case": name, "style": "norm (adjacent pairs)",
                          "max_abs_diff_if_neox": float(np.abs(wrong - lc.astype(np.float64)).max()),
                          "max_abs_diff_norm": c["max_abs_diff_exact_vs_llamacpp"]}
            print("    rope check:", rope_check)
        cases.append(c)

    doc = {
        "model": os.path.basename(args.model),
        "model_sha256": sha256(args.model),
        "vocab": int(llm.n_vocab()),
        "n_gen": N_GEN,
        "cases": cases,
        "logits_dtype": "float32",
        "logits_layout": "row r = next-token logits after the token at positions[r] of prompt + continuation "
                         "(teacher-forced: the inputs after the prompt are llama.cpp's continuation); "
                         "topk_*: at topk_positions, the top-k [id, logit] pairs, best first",
        "topk": TOPK,
        "llamacpp": {"n_threads": N_THREADS, "n_threads_batch": N_THREADS, "n_gpu_layers": 0,
                     "device": "CPU", "n_ctx": 512, "n_batch": 512, "logits_all": True,
                     "flash_attn": False, "kv_cache": "f16 (llama.cpp default type_k/type_v)",
                     "decode": "prompt in one eval, then one eval per generated token; argmax of the last row"},
        "exact": "float64 numpy forward (tests/reference/gguf_numpy.py) of the gguf-py dequantized tensors; "
                 "exact_<case>.npy from one teacher-forced pass over prompt + llama.cpp continuation",
        "rope_check": rope_check,
        "versions": versions(),
    }
    prev = OUT / "cases.json"
    if prev.exists():
        old = json.loads(prev.read_text())
        for key in ("f32_check", "speed"):  # written by the other subcommands
            if key in old:
                doc[key] = old[key]
    prev.write_text(dump_json(doc))
    print("wrote", prev)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def speed_runs(model: str, n_threads: int, reps: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=model, n_ctx=512, n_batch=512, n_threads=n_threads,
                n_threads_batch=n_threads, n_gpu_layers=0, logits_all=False, seed=0, verbose=False)
    rng = np.random.default_rng(0)
    # 128 ordinary tokens (ids above the 17 control tokens)
    prompt = [int(t) for t in rng.integers(17, llm.n_vocab(), size=128)]
    runs = []
    for rep in range(reps + 1):
        load = os.getloadavg()[0]
        llm.reset()
        w0 = time.perf_counter()
        llm.eval(prompt)
        w1 = time.perf_counter()
        for _ in range(64):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([t])
        w2 = time.perf_counter()
        r = {"prompt_tokens": len(prompt), "prompt_ms": round((w1 - w0) * 1e3, 2),
             "decode_tokens": 64, "decode_ms": round((w2 - w1) * 1e3, 2), "load_average_1min": load}
        r["prompt_tok_s"] = round(r["prompt_tokens"] / (r["prompt_ms"] / 1e3), 2)
        r["decode_tok_s"] = round(r["decode_tokens"] / (r["decode_ms"] / 1e3), 2)
        print(f"threads {n_threads} run {rep}: {r['prompt_tok_s']:.1f} prompt tok/s, "
              f"{r['decode_tok_s']:.1f} decode tok/s (load {load:.1f})")
        if rep > 0:  # run 0 warms caches and pages the model in
            runs.append(r)
    llm.close()
    return {
        "n_threads": n_threads,
        "runs": runs,
        "prompt_tok_s_median": float(np.median([r["prompt_tok_s"] for r in runs])),
        "decode_tok_s_median": float(np.median([r["decode_tok_s"] for r in runs])),
        "prompt_tok_s_best": float(max(r["prompt_tok_s"] for r in runs)),
        "decode_tok_s_best": float(max(r["decode_tok_s"] for r in runs)),
    }


def cmd_speed(args):
    """Measures each --threads count under this process's OMP_WAIT_POLICY and merges the results
    into cases.json "speed" (entries of other thread counts / policies are kept)."""
    import llama_cpp

    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    new = [dict(speed_runs(args.model, n, args.reps), omp_wait_policy=policy) for n in args.threads]
    path = OUT / "cases.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    old = doc.get("speed", {}).get("by_config", [])
    keys = {(e["n_threads"], e["omp_wait_policy"]) for e in new}
    by_config = [e for e in old if (e["n_threads"], e["omp_wait_policy"]) not in keys] + new
    by_config.sort(key=lambda e: (e["omp_wait_policy"] != "default", -e["n_threads"]))
    head = next((e for e in by_config if e["n_threads"] == N_THREADS and e["omp_wait_policy"] == "default"),
                by_config[0])
    speed = {
        "how": "llama-cpp-python Llama.eval on CPU, n_threads = n_threads_batch, n_ctx=512, n_batch=512, "
               "logits_all=False, F16 KV cache, no flash attention. Wall clock (time.perf_counter) around one "
               "eval of a 128-token prompt (random ordinary ids, seed 0) = prompt tok/s, then around 64 "
               "single-token evals, each fed the argmax of the previous logits (the argmax and Python "
               "overhead, well under 1% here, are included) = decode tok/s, decode context 128..191. "
               "llama_perf_context reported zeros through this binding, so it is not used. One warm-up run, "
               "then the listed runs per configuration, each with the 1-minute load average; "
               "headline = n_threads 2 with OpenMP's default (spinning) wait policy, median and best. "
               "On a loaded 2-core machine OpenMP's spinning threads lose their time slices; "
               "OMP_WAIT_POLICY=PASSIVE or 1 thread avoids that (entries in by_config).",
        "n_threads": head["n_threads"],
        "omp_wait_policy": head["omp_wait_policy"],
        "prompt_tok_s_median": head["prompt_tok_s_median"],
        "decode_tok_s_median": head["decode_tok_s_median"],
        "prompt_tok_s_best": head["prompt_tok_s_best"],
        "decode_tok_s_best": head["decode_tok_s_best"],
        "by_config": by_config,
        "machine": f"{os.cpu_count()} logical CPUs ({cpu_name()}), shared with other work while measured",
        "llama_cpp_python": llama_cpp.__version__,
    }
    doc["speed"] = speed
    path.write_text(dump_json(doc))
    for e in new:
        print(json.dumps({k: e[k] for k in ("n_threads", "omp_wait_policy", "prompt_tok_s_median",
                                             "decode_tok_s_median", "prompt_tok_s_best", "decode_tok_s_best")}))


def cmd_f32check(args):
    """Rewrite the model with every tensor dequantized to F32 (a temporary file) and run it through
    llama.cpp with an F32 KV cache: llama.cpp then rounds no activation to 8 or 16 bits, so its
    logits should equal the float64 numpy forward up to float32 rounding. This checks the numpy
    reading of the architecture on the real model, apart from quantization noise."""
    import tempfile

    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize
    from llama_cpp import Llama

    from gguf_numpy import GgufModel

    tmpl, special = gguf_chat_template(args.model)
    r = GGUFReader(args.model)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = str(Path(tmp) / "f32.gguf")
        w = GGUFWriter(path, r.fields["general.architecture"].contents())
        for key, f in r.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            if key == "general.file_type":
                w.add_file_type(0)  # ALL_F32
                continue
            sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
            w.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
        for t in r.tensors:
            arr = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            w.add_tensor(t.name, arr.reshape(tuple(int(n) for n in reversed(t.shape))))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        del r
        ref = GgufModel(args.model)  # the quantized file: same values as the F32 copy
        llm = Llama(model_path=path, n_ctx=512, n_batch=512, n_threads=N_THREADS, n_threads_batch=N_THREADS,
                    n_gpu_layers=0, logits_all=True, seed=0, verbose=False, type_k=0, type_v=0)  # 0 = F32
        res = []
        for name, messages in CASES[:2]:
            text = render_chat(tmpl, special, messages)
            prompt = [int(i) for i in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)]
            cont, scores = llama_greedy(llm, prompt, 8)
            full = ref.forward(prompt + cont[:-1])
            ex_cont, _, _ = ref.greedy(prompt, 8)
            res.append({"case": name, "rows": int(len(full)),
                        "max_abs_diff": float(np.abs(full - scores.astype(np.float64)).max()),
                        "greedy_8_agree": ex_cont == cont})
            print(res[-1])
        llm.close()
    out = OUT / "cases.json"
    doc = json.loads(out.read_text())
    doc["f32_check"] = {
        "how": "the GGUF with every tensor dequantized to F32, llama.cpp with an F32 KV cache "
               "(type_k=type_v=F32), 8 greedy tokens, all rows of prompt + continuation vs the float64 numpy forward",
        "cases": res,
    }
    out.write_text(dump_json(doc))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["tokenize", "cases", "f32check", "speed", "all"])
    ap.add_argument("--tmp", default=None, help="folder for f32check's temporary F32 copy (~0.6 GB)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--reps", type=int, default=3, help="timed speed runs after the warm-up")
    ap.add_argument("--threads", type=int, nargs="+", default=[N_THREADS, 1], help="thread counts for speed")
    args = ap.parse_args()
    if args.cmd in ("tokenize", "all"):
        cmd_tokenize(args)
    if args.cmd in ("cases", "all"):
        cmd_cases(args)
    if args.cmd in ("f32check", "all"):
        cmd_f32check(args)
    if args.cmd in ("speed", "all"):
        cmd_speed(args)


if __name__ == "__main__":
    main()
