//! Weights kept as GGUF tensors: each row holds the file's raw bytes (blocks of a quantization
//! type) and the kernels of `shaders/matmul_quant.wgsl` dequantize them in registers.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, Recorder, RowSlice};

use super::params::QuantMatmulParams;
use super::{cpu, MatmulIo};

/// Everything the code knows of one GGUF tensor type the kernels read.
pub struct TypeInfo {
    pub qtype: QType,
    /// ggml's type id.
    pub ggml_id: u32,
    /// ggml's name of the type.
    pub name: &'static str,
    /// Values and bytes per block (ggml's block structs).
    pub block_values: u32,
    pub block_bytes: u32,
    /// [matvec, matmat, embed] entry points of matmul_quant.wgsl.
    pub kernels: [Kernel; 3],
    /// Appends the `block_values` values of one block of `block_bytes` bytes (src/ops/cpu.rs).
    pub dequantize: fn(&[u8], &mut Vec<f32>),
}

/// The type table: one row per type, in the order of `QType` (whose position is the type id
/// in matmul_quant.wgsl, checked by the quant kernel tests), with the kernels' entry-point
/// suffix. `QType`, `TYPES` and `QType::ALL` all come from these rows.
macro_rules! qtypes {
    ($($v:ident: $id:literal, $name:literal, $entry:literal, $bv:literal, $bb:literal, $deq:path;)*) => {
        /// The tensor types of GGUF files that the quantized kernels read (named as in ggml).
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum QType {
            $($v),*
        }

        /// One row per type, in `QType` order.
        pub const TYPES: &[TypeInfo] = &[$(TypeInfo {
            qtype: QType::$v,
            ggml_id: $id,
            name: $name,
            block_values: $bv,
            block_bytes: $bb,
            kernels: [
                Kernel { name: concat!("matvec_", $entry), file: "matmul_quant.wgsl", source: SOURCE, entry: concat!("matvec_", $entry), params: PARAMS },
                Kernel { name: concat!("matmat_", $entry), file: "matmul_quant.wgsl", source: SOURCE, entry: concat!("matmat_", $entry), params: PARAMS },
                Kernel { name: concat!("embed_", $entry), file: "matmul_quant.wgsl", source: SOURCE, entry: concat!("embed_", $entry), params: PARAMS },
            ],
            dequantize: $deq,
        }),*];

        impl QType {
            pub const ALL: [QType; [$($name),*].len()] = [$(QType::$v),*];
        }
    };
}

qtypes! {
    F32: 0, "F32", "f32", 1, 4, cpu::dequantize_f32;
    F16: 1, "F16", "f16", 1, 2, cpu::dequantize_f16;
    BF16: 30, "BF16", "bf16", 1, 2, cpu::dequantize_bf16;
    Q8_0: 8, "Q8_0", "q8_0", 32, 34, cpu::dequantize_q8_0;
    Q4_0: 2, "Q4_0", "q4_0", 32, 18, cpu::dequantize_q4_0;
    Q4_1: 3, "Q4_1", "q4_1", 32, 20, cpu::dequantize_q4_1;
    Q4_K: 12, "Q4_K", "q4_k", 256, 144, cpu::dequantize_q4_k;
    Q5_K: 13, "Q5_K", "q5_k", 256, 176, cpu::dequantize_q5_k;
    Q6_K: 14, "Q6_K", "q6_k", 256, 210, cpu::dequantize_q6_k;
    Mxfp4: 39, "MXFP4", "mxfp4", 32, 17, cpu::dequantize_mxfp4;
    Q5_0: 6, "Q5_0", "q5_0", 32, 22, cpu::dequantize_q5_0;
    Q5_1: 7, "Q5_1", "q5_1", 32, 24, cpu::dequantize_q5_1;
    Q2_K: 10, "Q2_K", "q2_k", 256, 84, cpu::dequantize_q2_k;
    Q3_K: 11, "Q3_K", "q3_k", 256, 110, cpu::dequantize_q3_k;
    IQ4_NL: 20, "IQ4_NL", "iq4_nl", 32, 18, cpu::dequantize_iq4_nl;
    IQ4_XS: 23, "IQ4_XS", "iq4_xs", 256, 136, cpu::dequantize_iq4_xs;
}

impl QType {
    /// The type's row of the table.
    pub fn info(self) -> &'static TypeInfo {
        &TYPES[self as usize]
    }

    /// The type of a GGUF tensor by its ggml type id; None for types not supported here.
    pub fn from_ggml_id(id: u32) -> Option<QType> {
        TYPES.iter().find(|t| t.ggml_id == id).map(|t| t.qtype)
    }

    /// The names of every supported type, for error messages: "F32, F16, ...".
    pub fn supported() -> String {
        TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
    }

    /// ggml's name of the type.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Values per block.
    pub fn block_values(self) -> u32 {
        self.info().block_values
    }

    /// Bytes per block (ggml's block structs).
    pub fn block_bytes(self) -> u32 {
        self.info().block_bytes
    }

    /// Bytes of a row of `cols` values.
    pub fn row_bytes(self, cols: u32) -> Result<u64> {
        self.check_cols(cols).map_err(Error::Input)
    }

    fn check_cols(self, cols: u32) -> Result<u64, String> {
        let bv = self.block_values();
        if !cols.is_multiple_of(bv) {
            return Err(format!("{cols} columns are not a multiple of the {bv}-value blocks of {}", self.name()));
        }
        Ok((cols / bv) as u64 * self.block_bytes() as u64)
    }
}

/// A weight matrix [rows, cols] of a GGUF type, split by rows. Slice buffers: [the rows' raw
/// bytes exactly as in the file (row r at (r - row_start) * row_bytes, padded to 4 bytes at the
/// end), f32 bias (optional)]. `write` fills them from the tensor's bytes.
pub struct QMatrix {
    pub qtype: QType,
    pub rows: u32,
    pub cols: u32,
    pub slices: Vec<RowSlice>,
}

impl QMatrix {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> u64 {
        self.qtype.check_cols(self.cols).expect("checked at allocation")
    }

    /// A zeroed matrix split by rows into slices that each fit one binding.
    pub fn allocate(gpu: &Gpu, name: &str, qtype: QType, rows: u32, cols: u32, bias: bool) -> Result<QMatrix> {
        let row_bytes = qtype.check_cols(cols).map_err(|m| Error::tensor(name, m))?;
        Ok(QMatrix { qtype, rows, cols, slices: super::tensors::weight_slices(gpu, name, rows, row_bytes, bias)? })
    }

    /// Uploads a matrix from its raw row-major bytes, with an optional f32 bias per row.
    pub fn upload(gpu: &Gpu, name: &str, qtype: QType, cols: u32, bytes: &[u8], bias: Option<&[f32]>) -> Result<QMatrix> {
        let row_bytes = qtype.check_cols(cols).map_err(|m| Error::tensor(name, m))? as usize;
        if row_bytes == 0 || !bytes.len().is_multiple_of(row_bytes) {
            return Err(Error::tensor(name, format!("{} bytes are not whole rows of {row_bytes} bytes", bytes.len())));
        }
        let rows = bytes.len() / row_bytes;
        if let Some(b) = bias {
            if b.len() != rows {
                return Err(Error::tensor(name, format!("{} bias values for {rows} rows", b.len())));
            }
        }
        let m = Self::allocate(gpu, name, qtype, rows as u32, cols, bias.is_some())?;
        m.write(gpu, name, bytes)?;
        if let Some(bias) = bias {
            for s in &m.slices {
                gpu.write(&s.buffers[1], 0, bytemuck::cast_slice(&bias[s.row_start as usize..s.row_end as usize]));
            }
        }
        Ok(m)
    }

    /// Writes the whole tensor's raw bytes (all rows, as in the file) into the slices. Each
    /// slice takes its rows in one piece: rows of most types are not 4-byte aligned, and
    /// buffer writes are.
    pub fn write(&self, gpu: &Gpu, name: &str, bytes: &[u8]) -> Result<()> {
        let row_bytes = self.row_bytes() as usize;
        if bytes.len() != self.rows as usize * row_bytes {
            return Err(Error::tensor(name, format!("{} bytes for {} rows of {row_bytes} bytes", bytes.len(), self.rows)));
        }
        for s in &self.slices {
            gpu.upload(&s.buffers[0], 0, &bytes[s.row_start as usize * row_bytes..s.row_end as usize * row_bytes]);
        }
        Ok(())
    }
}

const SOURCE: &str = include_str!("../../shaders/matmul_quant.wgsl");
const PARAMS: &[crate::gpu::ParamField] = <QuantMatmulParams as crate::gpu::KernelParams>::FIELDS;

/// Every kernel of this module, for the shader tests.
pub(crate) fn kernels() -> impl Iterator<Item = Kernel> {
    TYPES.iter().flat_map(|t| t.kernels)
}

/// Up to this many tokens take the mat-vec (`MV_TOKENS` in matmul_quant.wgsl).
const MATVEC_MAX_TOKENS: u32 = 4;
/// Invocations per mat-vec workgroup and rows per invocation (`MV_WG`, `MV_R`).
const MATVEC_WG: u32 = 64;
const MATVEC_ROWS_PER_LANE: u32 = 4;

/// Invocations that share a row in the mat-vec: a power of two with at least two 32-value
/// units each (fewer idle lanes on short rows, more rows per workgroup), at most 32 (a warp
/// reads 32 adjacent blocks of a long row), and no more than the smallest subgroup where
/// rows are reduced by subgroup shuffles.
fn matvec_lanes(gpu: &Gpu, cols: u32) -> u32 {
    let units = cols.div_ceil(32);
    let lanes = (units / 2).clamp(1, 32);
    let mut lanes = 1 << (31 - lanes.leading_zeros());
    if gpu.shader.subgroups {
        lanes = lanes.min(gpu.info.subgroup_min_size.max(1));
    }
    lanes
}
/// Rows and tokens per mat-mat tile (`MM_ROWS`, `MM_TOKENS`).
const TILE_ROWS: u32 = 64;
const TILE_TOKENS: u32 = 64;

/// y[t, y_offset + r] (+)= x[t] . W[r] + bias[r] with W dequantized on the fly, one dispatch per slice.
pub fn qmatmul(rec: &mut Recorder, x: &wgpu::Buffer, w: &QMatrix, y: &wgpu::Buffer, io: MatmulIo) {
    let [matvec, matmat, _] = &w.qtype.info().kernels;
    let row_bytes = w.row_bytes();
    for s in &w.slices {
        let rows = s.row_end - s.row_start;
        let bias = s.buffers.get(1);
        let flags = bias.is_some() as u32 | ((io.accumulate as u32) << 1);
        let lanes = matvec_lanes(rec.gpu, w.cols);
        let params = QuantMatmulParams {
            n_tokens: io.n_tokens, rows, cols: w.cols, x_offset: io.x_offset, x_stride: io.x_stride,
            y_stride: io.y_stride, y_offset: io.y_offset + s.row_start, flags, row_bytes: row_bytes as u32,
            row_start: 0, row_end: 0, lanes,
        };
        let bufs = [x, &s.buffers[0], bias.unwrap_or(&rec.gpu.dummy), y];
        rec.reads(rows as u64 * row_bytes + io.n_tokens as u64 * w.cols as u64 * 4);
        if io.n_tokens <= MATVEC_MAX_TOKENS {
            let rows_per_group = MATVEC_WG / lanes * MATVEC_ROWS_PER_LANE;
            let (gx, gy) = rec.gpu.grid_2d(rows.div_ceil(rows_per_group));
            rec.dispatch(matvec, &params, &bufs, [gx, gy, 1]);
        } else {
            rec.dispatch(matmat, &params, &bufs, [rows.div_ceil(TILE_ROWS), io.n_tokens.div_ceil(TILE_TOKENS), 1]);
        }
    }
}

/// out[t] = W[tokens[t]] dequantized to f32, one dispatch per slice (each writes the tokens
/// whose rows it holds).
pub fn qembed(rec: &mut Recorder, tokens: &wgpu::Buffer, n_tokens: u32, table: &QMatrix, out: &wgpu::Buffer) {
    let [_, _, embed] = &table.qtype.info().kernels;
    let row_bytes = table.row_bytes();
    for (i, s) in table.slices.iter().enumerate() {
        if i == 0 {
            rec.reads(n_tokens as u64 * row_bytes);
        }
        rec.dispatch(embed,
            &QuantMatmulParams {
                n_tokens,
                cols: table.cols,
                row_bytes: row_bytes as u32,
                row_start: s.row_start,
                row_end: s.row_end,
                ..Default::default()
            },
            &[tokens, &s.buffers[0], out],
            [table.cols.div_ceil(16).div_ceil(64), n_tokens, 1],
        );
    }
}
