"""Byte-level BPE fixture for the GGUF `gpt2` tokenizer's pre-tokenizers:
`tests/fixtures/tokenizer/bpe_pre.json`.

Trains a small byte-level BPE (Hugging Face `tokenizers`) on the repository README plus a few lines
written here, and encodes a corpus with Hugging Face `tokenizers` pipelines built from the same
vocabulary and merges, one per `tokenizer.ggml.pre` value, using the pre-tokenizer patterns of the
models' own `tokenizer.json` files (split regexes, byte-level, `ignore_merges` for Llama 3 and
Tekken). `tests/tokenizer_gguf.rs` checks that `Tokenizer::from_gguf_vocab` gives the same ids.
Deterministic.

    /work/venv-ref/bin/python tests/reference/bpe_pretokenizers.py
"""

import json
from pathlib import Path

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizer" / "bpe_pre.json"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
O200K = r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
TEKKEN = r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# pre value -> (split regexes in order, ignore_merges)
PRES = {
    "gpt-2": ([GPT2], False),
    "llama-bpe": ([LLAMA3], True),
    "qwen2": ([QWEN2], False),
    "starcoder": ([r"\p{N}", GPT2], False),
    "gpt-4o": ([O200K], False),
    "tekken": ([TEKKEN], True),
    "deepseek-coder": ([r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"], False),
}

EXTRA = """\
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 42 1234 3.14159 2024-11-25
I'm sure you'll see they've done it, haven't they? We'd go; it's fine.
naïve café résumé — Straße déjà vu; 日本語のテキスト、中文文本，한국어 텍스트
def main():\n    print("hello, world")\n    return 0
"""

CORPUS = [
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple   spaces   inside",
    "line one\nline two\n\n\nline four\r\n",
    "tabs\tand\t\ttabs",
    "I'm sure you'll see they've done it, haven't they? I'M LOUD, YOU'LL SEE, WE'D.",
    "Numbers: 0 1 12 123 1234 12345 3.14159 1,000,000",
    "naïve café résumé — Straße déjà vu",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "Привет, мир! Γειά σου Κόσμε!",
    "emoji 🦀🎉 and 👩‍👩‍👧 family",
    "def main():\n    print(\"hello, world\")\n    return 0\n",
    "camelCaseWords and HTTPServer and getHTTPResponse",
    "path/to/file.rs:12:5 --flag=value",
    "<|im_start|> typed as text",
    "",
    " ",
    "\n\n",
    "a\n\nb  \n  c\t\n",
    "(hello) [world] {x}; x=1;y=22;z=333;",
    "HELLO'S it's IT'S 'quoted'",
    "ÀB ÉTÉ été Ünïcödé ÜBER",
]


def main():
    text = (ROOT / "README.md").read_text(encoding="utf-8") + "\n" + EXTRA
    base = Tokenizer(models.BPE())
    # Trained on whole lines (no word splitting), so that merges cross word, number and space
    # boundaries and each pre-tokenizer's splits show in the ids.
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1500, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    base.train_from_iterator(text.splitlines(keepends=True), trainer)
    state = json.loads(base.to_str())
    vocab = state["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [" ".join(m) if isinstance(m, list) else m for m in state["model"]["merges"]]
    types = [3 if t in SPECIAL else 1 for t in tokens]

    cases = {}
    for pre, (regexes, ignore_merges) in PRES.items():
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], ignore_merges=ignore_merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
        tok.decoder = decoders.ByteLevel()
        cases[pre] = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in CORPUS]
    fixture = {
        "tokenizers": tokenizers.__version__,
        "vocab": {"model": "gpt2", "tokens": tokens, "token_types": types, "merges": merges,
                  "bos": 0, "eos": 0, "add_bos": False},
        "cases": cases,
    }
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(tokens)} tokens, {len(merges)} merges, {len(PRES)} pre-tokenizers x {len(CORPUS)} texts")


if __name__ == "__main__":
    main()
