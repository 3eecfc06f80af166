"""SentencePiece fixture for the GGUF `llama` tokenizer: `tests/fixtures/tokenizer/spm_bpe.json`.

Trains a small SentencePiece BPE model (byte fallback, no normalization, whitespace kept as
written: what llama.cpp's SPM tokenizer assumes) on the repository README plus a few lines written
here, and writes its pieces, scores and types in the shape of `wgpt::tokenizer::GgufVocab`, with
SentencePiece's own encodings of a corpus (unicode, emoji through byte fallback, runs of spaces,
newlines). `tests/tokenizer_gguf.rs` checks that `Tokenizer::from_gguf_vocab` gives exactly these
ids. Deterministic (one thread, fixed seed).

    /work/venv-ref/bin/pip install sentencepiece==0.2.3
    /work/venv-ref/bin/python tests/reference/spm_vocab.py
"""

import io
import json
from pathlib import Path

import sentencepiece as spm

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizer" / "spm_bpe.json"
USER_DEFINED = ["<tool>"]

EXTRA = """\
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 42 1234 3.14159
naïve café résumé — Ünïcödé Straße déjà vu
日本語のテキスト、中文文本，한국어 텍스트
Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم
def main():
    print("hello, world")
    return 0
"""

CORPUS = [
    "Hello world",
    "hello world",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple   spaces   inside",
    "line one\nline two\n\nline four",
    "tabs\tand\ttabs",
    "naïve café résumé",
    "Straße déjà vu — Ünïcödé",
    "日本語のテキスト",
    "中文文本，한국어 텍스트",
    "Привет, мир!",
    "emoji 🦀🎉 and 👩‍👩‍👧 family",
    "rare letters ǅ ẞ ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "def main():\n    print(\"hello, world\")\n    return 0\n",
    "Numbers: 0 1 2 3 42 1234 3.14159",
    "<s> and </s> and <unk> typed as text",
    "▁ the block character itself",
    "",
    " ",
    "\n",
    "a",
    "WebGPU runs large language models on any GPU.",
]


def main():
    text = (ROOT / "README.md").read_text(encoding="utf-8") + "\n" + EXTRA
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=700,
        byte_fallback=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        user_defined_symbols=USER_DEFINED,
        num_threads=1,
        seed_sentencepiece_size=100000,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    tokens, types, scores = [], [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        tokens.append(piece)
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif piece in USER_DEFINED:
            types.append(4)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.is_byte(i):
            types.append(6)
        else:
            types.append(1)
    cases = [{"text": t, "ids": sp.encode(t)} for t in CORPUS]
    fixture = {
        "sentencepiece": spm.__version__,
        "vocab": {
            "model": "llama",
            "tokens": tokens,
            "token_types": types,
            "scores": scores,
            "bos": sp.bos_id(),
            "eos": sp.eos_id(),
            "unk": sp.unk_id(),
            "add_bos": True,
            "add_space_prefix": True,
        },
        "cases": cases,
    }
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(tokens)} pieces, {len(cases)} cases")


if __name__ == "__main__":
    main()
