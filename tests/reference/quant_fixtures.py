"""Writes tests/fixtures/quant/: for every GGUF tensor type the quantized kernels read, a small
matrix of raw blocks (<type>.bin) and the `gguf` package's dequantization of it (<type>.f32,
little-endian f32), the reference tests/quant_kernels.rs checks `cpu::dequantize` against.

Types the `gguf` package can quantize are quantized from random values; for the others (the
K-quants, IQ4_NL, IQ4_XS) the blocks are random bytes with their f16 scales overwritten by sane
values, which makes every block valid. Types added later draw from their own generator, so the
files of the earlier ones stay byte for byte the same.

    /work/venv-quant/bin/python tests/reference/quant_fixtures.py   # gguf==0.19.0, numpy
"""

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROWS, COLS = 5, 512
OUT = Path(__file__).resolve().parent.parent / "fixtures" / "quant"

QUANTIZED = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1, "mxfp4": T.MXFP4}
# K-quants: (type, bytes per 256-value block, byte offsets of f16 scales)
RANDOM_BLOCKS = {"q4_k": (T.Q4_K, 144, [0, 2]), "q5_k": (T.Q5_K, 176, [0, 2]), "q6_k": (T.Q6_K, 210, [208])}
# Added later, with a generator of their own.
QUANTIZED_2 = {"q5_0": T.Q5_0, "q5_1": T.Q5_1}
# (type, values per block, bytes per block, byte offsets of f16 scales)
RANDOM_BLOCKS_2 = {
    "q2_k": (T.Q2_K, 256, 84, [80, 82]),
    "q3_k": (T.Q3_K, 256, 110, [108]),
    "iq4_nl": (T.IQ4_NL, 32, 18, [0]),
    "iq4_xs": (T.IQ4_XS, 256, 136, [0]),
}


def sane_f16(rng: np.random.Generator, n: int) -> np.ndarray:
    """Positive f16 scales between 1e-4 and 1e-1 (log-uniform), as little-endian bytes."""
    return np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), n)).astype(np.float16)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    quantized(rng, QUANTIZED)
    random_blocks(rng, {k: (t, 256, b, o) for k, (t, b, o) in RANDOM_BLOCKS.items()})
    rng = np.random.default_rng(8)
    quantized(rng, QUANTIZED_2)
    random_blocks(rng, RANDOM_BLOCKS_2)


def quantized(rng: np.random.Generator, types: dict) -> None:
    for name, qtype in types.items():
        values = rng.standard_normal((ROWS, COLS)).astype(np.float32) * np.float32(0.5)
        # One row of larger magnitude and one with an offset (exercises mins and scales).
        values[1] *= 40.0
        values[2] += 3.0
        data = np.ascontiguousarray(quantize(values, qtype)).view(np.uint8)
        write(name, data, qtype)


def random_blocks(rng: np.random.Generator, types: dict) -> None:
    for name, (qtype, block_values, block_bytes, scale_offsets) in types.items():
        n_blocks = ROWS * COLS // block_values
        blocks = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
        for off in scale_offsets:
            blocks[:, off : off + 2] = sane_f16(rng, n_blocks).reshape(-1, 1).view(np.uint8)
        write(name, blocks.reshape(ROWS, -1), qtype)


def write(name: str, data: np.ndarray, qtype: T) -> None:
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(ROWS, -1)
    values = dequantize(data, qtype).astype("<f4").reshape(-1)
    assert values.size == ROWS * COLS and np.isfinite(values).all(), name
    (OUT / f"{name}.bin").write_bytes(data.tobytes())
    (OUT / f"{name}.f32").write_bytes(values.tobytes())
    print(f"{name}: {data.size} bytes, max |value| {np.abs(values).max():.4g}")


if __name__ == "__main__":
    main()
