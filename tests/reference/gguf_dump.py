"""Dumps the header of a GGUF file, as read by the `gguf` package (llama.cpp's Python reader),
to JSON: version, alignment, data section offset, a few metadata values and every tensor's
name, type, dims (ne0 first) and absolute data offset, and the package's table of ggml
block sizes. tests/gguf_loader.rs compares wgpt's
parser against this output.

    /work/venv-ref/bin/python tests/reference/gguf_dump.py FILE.gguf > tests/fixtures/gguf/NAME.json
"""

import importlib.metadata
import json
import os
import sys

import gguf


def scalar(field):
    # A scalar field keeps its value in the last part.
    v = field.parts[-1]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(v).decode("utf-8")
    return v.tolist()[0]


def main(path):
    r = gguf.GGUFReader(path)
    meta = {}
    lengths = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            lengths[name] = len(field.data)
        else:
            meta[name] = scalar(field)
    out = {
        "file": os.path.basename(path),
        "file_size": os.path.getsize(path),
        "gguf_package": importlib.metadata.version("gguf"),
        "version": int(r.fields["GGUF.version"].parts[-1][0]),
        "alignment": int(r.alignment),
        "data_start": int(r.data_offset),
        "metadata": meta,
        "array_lengths": lengths,
        "tensors": [
            {
                "name": t.name,
                "type": int(t.tensor_type),
                "type_name": t.tensor_type.name,
                "dims": [int(d) for d in t.shape],
                "offset": int(t.data_offset),
                "bytes": int(t.n_bytes),
            }
            for t in r.tensors
        ],
    }
    # ggml's type table as the package knows it: id -> [name, values per block, bytes per block].
    out["ggml_types"] = {
        str(int(t)): [t.name, *gguf.GGML_QUANT_SIZES[t]] for t in gguf.GGMLQuantizationType if t in gguf.GGML_QUANT_SIZES
    }
    # One tensor (and one type) a line keeps the fixture short and its diffs readable.
    tensors = out.pop("tensors")
    types = out.pop("ggml_types")
    text = json.dumps(out, indent=1, ensure_ascii=False)[:-2]
    text += ',\n "ggml_types": {\n' + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in types.items()) + "\n }"
    text += ',\n "tensors": [\n' + ",\n".join("  " + json.dumps(t) for t in tensors) + "\n ]\n}\n"
    json.loads(text)
    sys.stdout.write(text)

if __name__ == "__main__":
    main(sys.argv[1])
