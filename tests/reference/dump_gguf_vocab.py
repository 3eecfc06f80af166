"""Writes the tokenizer fields of a GGUF file as a GgufVocab JSON (for local tokenizer tests).

    python tests/reference/dump_gguf_vocab.py MODEL.gguf OUT.json
"""
import json
import sys

import gguf


def field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def main():
    reader = gguf.GGUFReader(sys.argv[1])
    vocab = {
        "model": field(reader, "tokenizer.ggml.model"),
        "pre": field(reader, "tokenizer.ggml.pre"),
        "tokens": field(reader, "tokenizer.ggml.tokens"),
        "token_types": field(reader, "tokenizer.ggml.token_type", []),
        "merges": field(reader, "tokenizer.ggml.merges", []),
        "scores": field(reader, "tokenizer.ggml.scores", []),
        "bos": field(reader, "tokenizer.ggml.bos_token_id"),
        "eos": field(reader, "tokenizer.ggml.eos_token_id"),
        "unk": field(reader, "tokenizer.ggml.unknown_token_id"),
        "add_bos": field(reader, "tokenizer.ggml.add_bos_token", False),
        "add_space_prefix": field(reader, "tokenizer.ggml.add_space_prefix"),
        "chat_template": field(reader, "tokenizer.chat_template"),
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
