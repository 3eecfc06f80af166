//! GGUF files (llama.cpp's single-file checkpoints), versions 2 and 3, little-endian.
//!
//! Layout: magic `GGUF`, u32 version, u64 tensor count, u64 metadata count, the metadata
//! key/value pairs, the tensor infos, padding to `general.alignment`, then the tensor data.
//! The header is parsed from a byte slice holding the start of the file, so the browser can
//! read it with Range requests of growing length ([`Parse::NeedMore`]). Everything read is
//! checked against the bytes that remain: a hostile file gives an error, never a panic or a
//! huge allocation.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::ops::QType;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(MetaArray),
}

/// A metadata array, stored as one vector of its element kind (vocabularies hold 250k strings).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// Value type ids of the format, in id order (9 is array).
const VALUE_TYPES: [&str; 13] = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

/// Runs `$e` on the vector inside any [`MetaArray`], bound to `$v`, along with its element type id.
macro_rules! each_array {
    ($a:expr, $v:ident, $id:ident => $e:expr) => {
        match $a {
            MetaArray::U8($v) => { let $id = 0; $e }
            MetaArray::I8($v) => { let $id = 1; $e }
            MetaArray::U16($v) => { let $id = 2; $e }
            MetaArray::I16($v) => { let $id = 3; $e }
            MetaArray::U32($v) => { let $id = 4; $e }
            MetaArray::I32($v) => { let $id = 5; $e }
            MetaArray::F32($v) => { let $id = 6; $e }
            MetaArray::Bool($v) => { let $id = 7; $e }
            MetaArray::Str($v) => { let $id = 8; $e }
            MetaArray::U64($v) => { let $id = 10; $e }
            MetaArray::I64($v) => { let $id = 11; $e }
            MetaArray::F64($v) => { let $id = 12; $e }
        }
    };
}

impl MetaArray {
    pub fn len(&self) -> usize {
        each_array!(self, v, _id => v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The element type name, as in error messages ("string", "i32", ...).
    pub fn elem_type_name(&self) -> &'static str {
        each_array!(self, _v, id => VALUE_TYPES[id])
    }
}

impl MetaValue {
    /// The type name, as in error messages ("u32", "string", "array of string", ...).
    pub fn type_name(&self) -> String {
        let id = match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::Str(_) => 8,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
            MetaValue::Array(a) => return format!("array of {}", a.elem_type_name()),
        };
        VALUE_TYPES[id].to_string()
    }

    /// The value as an integer, for any integer kind.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }
}

/// A raw ggml tensor type id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType(pub u32);

/// ggml's types that the kernels do not read: id, name, values per block, bytes per block (the
/// others come from the type table of `ops::quant`). Ids missing from both were removed from
/// ggml (4, 5, 31-33, 36-38) and have no size. Sizes follow ggml's block structs (Q8_1 is 36
/// bytes: two halves and 32 quants; the gguf Python package still says 40).
const OTHER_GGML_TYPES: &[(u32, &str, u64, u64)] = &[
    (9, "Q8_1", 32, 36),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    pub const F32: GgmlType = GgmlType(0);
    pub const F16: GgmlType = GgmlType(1);
    pub const Q8_0: GgmlType = GgmlType(8);
    pub const Q4_K: GgmlType = GgmlType(12);
    pub const MXFP4: GgmlType = GgmlType(39);

    /// (name, values per block, bytes per block).
    fn entry(&self) -> Option<(&'static str, u64, u64)> {
        if let Some(t) = QType::from_ggml_id(self.0) {
            return Some((t.name(), t.block_values() as u64, t.block_bytes() as u64));
        }
        OTHER_GGML_TYPES.iter().find(|e| e.0 == self.0).map(|e| (e.1, e.2, e.3))
    }
    /// ggml's name for the type ("Q4_K"), or "type N" for an id neither table knows.
    pub fn name(&self) -> String {
        self.entry().map_or_else(|| format!("type {}", self.0), |e| e.0.to_string())
    }
    /// (values per block, bytes per block), for every type whose size is known.
    pub fn block(&self) -> Option<(u64, u64)> {
        self.entry().map(|e| (e.1, e.2))
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// One tensor of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    pub ggml_type: GgmlType,
    /// Dimensions, ne0 (the contiguous one) first.
    pub dims: Vec<u64>,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Size of the data in bytes.
    pub bytes: u64,
}

impl GgufTensor {
    /// Values per row (ne0).
    pub fn cols(&self) -> u64 {
        self.dims[0]
    }
    /// Number of rows: the product of every dimension after the first.
    pub fn rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
    pub fn n_values(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Its absolute byte range in the file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.bytes
    }
}

/// A parsed GGUF header.
#[derive(Clone, Debug)]
pub struct Gguf {
    /// The file name errors mention.
    pub file: String,
    pub version: u32,
    pub alignment: u64,
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensors in file order.
    pub tensors: Vec<GgufTensor>,
    /// Absolute offset of the data section.
    pub data_start: u64,
    pub file_size: u64,
}

/// The result of parsing a prefix of a file.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Parse {
    Done(Gguf),
    /// The header goes on past the prefix: try again with at least this many bytes.
    NeedMore(u64),
}

const MAX_DIMS: u32 = 4;
const DEFAULT_ALIGNMENT: u64 = 32;
/// Smallest encodings, to bound counts by the bytes left: a key/value pair (empty key, u32
/// type, one byte of value) and a tensor info (empty name, n_dims, type, offset).
const MIN_KV: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO: u64 = 8 + 4 + 4 + 8;

/// Why reading stopped: the prefix ended (with the length needed), or the file is invalid.
enum Stop {
    More(u64),
    Bad(Error),
}
type R<T> = std::result::Result<T, Stop>;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    file_size: u64,
    file: &'a str,
    /// What is being read, for error messages ("key general.name").
    ctx: String,
}

impl<'a> Reader<'a> {
    fn bad(&self, msg: impl std::fmt::Display) -> Stop {
        Stop::Bad(Error::checkpoint(self.file, format!("invalid GGUF file: {}: {msg}", self.ctx)))
    }
    fn remaining(&self) -> u64 {
        self.file_size - self.pos as u64
    }
    /// Checks that `n` bytes follow (in the file, then in the prefix) before anything is read.
    fn need(&self, n: u64, what: &str) -> R<()> {
        let end = (self.pos as u64).checked_add(n).filter(|&e| e <= self.file_size);
        match end {
            None => Err(self.bad(format!(
                "{what} at offset {} needs {n} bytes, past the end of the file at {}",
                self.pos, self.file_size
            ))),
            Some(end) if end > self.buf.len() as u64 => Err(Stop::More(end)),
            Some(_) => Ok(()),
        }
    }
    fn take(&mut self, n: u64, what: &str) -> R<&'a [u8]> {
        self.need(n, what)?;
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> R<[u8; N]> {
        Ok(self.take(N as u64, what)?.try_into().expect("N bytes"))
    }
    fn u32(&mut self, what: &str) -> R<u32> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &str) -> R<u64> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    fn string(&mut self, what: &str) -> R<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| self.bad(format!("{what} at offset {at} is not valid UTF-8 ({e})")))
    }
    fn bool(&mut self) -> R<bool> {
        let at = self.pos;
        match self.arr::<1>("bool")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.bad(format!("bool at offset {at} has byte {b}, expected 0 or 1"))),
        }
    }
    /// `count` fixed-size numbers, checked as one span before the vector is made.
    fn nums<T, const N: usize>(&mut self, count: u64, f: fn([u8; N]) -> T) -> R<Vec<T>> {
        let Some(n) = count.checked_mul(N as u64) else {
            return Err(self.bad(format!("array of {count} elements at offset {} is past the end of the file", self.pos)));
        };
        let bytes = self.take(n, "array")?;
        Ok(bytes.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect())
    }

    fn value(&mut self, ty: u32) -> R<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U8(self.arr::<1>("u8")?[0]),
            1 => MetaValue::I8(self.arr::<1>("i8")?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.arr("u16")?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.arr("i16")?)),
            4 => MetaValue::U32(self.u32("u32")?),
            5 => MetaValue::I32(i32::from_le_bytes(self.arr("i32")?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.arr("f32")?)),
            7 => MetaValue::Bool(self.bool()?),
            8 => MetaValue::Str(self.string("string")?),
            9 => MetaValue::Array(self.array()?),
            10 => MetaValue::U64(self.u64("u64")?),
            11 => MetaValue::I64(i64::from_le_bytes(self.arr("i64")?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.arr("f64")?)),
            t => return Err(self.bad(format!("unknown value type {t} at offset {}", self.pos - 4))),
        })
    }

    fn array(&mut self) -> R<MetaArray> {
        let ty_at = self.pos;
        let ty = self.u32("array element type")?;
        let count = self.u64("array length")?;
        Ok(match ty {
            0 => MetaArray::U8(self.nums(count, |b: [u8; 1]| b[0])?),
            1 => MetaArray::I8(self.nums(count, |b: [u8; 1]| b[0] as i8)?),
            2 => MetaArray::U16(self.nums(count, u16::from_le_bytes)?),
            3 => MetaArray::I16(self.nums(count, i16::from_le_bytes)?),
            4 => MetaArray::U32(self.nums(count, u32::from_le_bytes)?),
            5 => MetaArray::I32(self.nums(count, i32::from_le_bytes)?),
            6 => MetaArray::F32(self.nums(count, f32::from_le_bytes)?),
            7 => {
                self.need(count, "bool array")?;
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.bool()?);
                }
                MetaArray::Bool(v)
            }
            8 => {
                // Each string takes at least its 8-byte length.
                let min = count.saturating_mul(8);
                if min > self.remaining() {
                    return Err(self.bad(format!(
                        "array of {count} strings at offset {} is past the end of the file ({} bytes)",
                        self.pos, self.file_size
                    )));
                }
                let fits = (self.buf.len() - self.pos) as u64 / 8;
                let mut v = Vec::with_capacity(count.min(fits) as usize);
                for _ in 0..count {
                    v.push(self.string("string")?);
                }
                MetaArray::Str(v)
            }
            10 => MetaArray::U64(self.nums(count, u64::from_le_bytes)?),
            11 => MetaArray::I64(self.nums(count, i64::from_le_bytes)?),
            12 => MetaArray::F64(self.nums(count, f64::from_le_bytes)?),
            9 => return Err(self.bad(format!("nested arrays are not supported (offset {ty_at})"))),
            t => return Err(self.bad(format!("unknown array element type {t} at offset {ty_at}"))),
        })
    }
}

impl Gguf {
    /// Parses the header from the first bytes of a file of `file_size` bytes. When `prefix`
    /// ends inside the header, returns [`Parse::NeedMore`] with a longer prefix length to try.
    pub fn parse(file_name: &str, prefix: &[u8], file_size: u64) -> Result<Parse> {
        if prefix.len() as u64 > file_size {
            return Err(Error::checkpoint(
                file_name,
                format!("GGUF prefix of {} bytes is longer than the file ({file_size} bytes)", prefix.len()),
            ));
        }
        let mut r = Reader { buf: prefix, pos: 0, file_size, file: file_name, ctx: "header".into() };
        match Self::read(&mut r) {
            Ok(g) => Ok(Parse::Done(g)),
            // Doubling keeps the number of Range requests logarithmic in the header size.
            Err(Stop::More(n)) => Ok(Parse::NeedMore(n.max(prefix.len() as u64 * 2).min(file_size))),
            Err(Stop::Bad(e)) => Err(e),
        }
    }

    fn read(r: &mut Reader) -> R<Gguf> {
        let magic = r.arr::<4>("magic")?;
        if &magic != b"GGUF" {
            return Err(r.bad(format!("bad magic {magic:02x?}, expected \"GGUF\"")));
        }
        let version = r.u32("version")?;
        match version {
            2 | 3 => {}
            // A big-endian writer stores the small version number byte-swapped.
            v if (1..=3).contains(&v.swap_bytes()) => {
                return Err(r.bad(format!("big-endian GGUF files are not supported (version {})", v.swap_bytes())))
            }
            v => return Err(r.bad(format!("GGUF version {v} is not supported (only versions 2 and 3)"))),
        }
        let tensor_count = r.u64("tensor count")?;
        let kv_count = r.u64("metadata count")?;
        let min = tensor_count
            .checked_mul(MIN_TENSOR_INFO)
            .and_then(|t| kv_count.checked_mul(MIN_KV).and_then(|k| k.checked_add(t)));
        if min.is_none_or(|m| m > r.remaining()) {
            return Err(r.bad(format!(
                "{tensor_count} tensors and {kv_count} metadata entries cannot fit in a file of {} bytes",
                r.file_size
            )));
        }

        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            r.ctx = format!("metadata entry {i}");
            let key = r.string("key")?;
            r.ctx = format!("key {key}");
            let ty = r.u32("value type")?;
            let value = r.value(ty)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(r.bad("duplicate key"));
            }
        }

        r.ctx = "general.alignment".into();
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_i128() {
                Some(a) if a > 0 && a <= u32::MAX as i128 && (a as u64).is_power_of_two() => a as u64,
                _ => return Err(r.bad(format!("alignment {v:?} is not a non-zero power of two"))),
            },
        };

        let mut infos = Vec::with_capacity(tensor_count.min((r.buf.len() - r.pos) as u64 / MIN_TENSOR_INFO) as usize);
        let mut names = BTreeSet::new();
        for i in 0..tensor_count {
            r.ctx = format!("tensor info {i}");
            let name = r.string("tensor name")?;
            r.ctx = format!("tensor {name}");
            if !names.insert(name.clone()) {
                return Err(r.bad("duplicate tensor name"));
            }
            let n_dims = r.u32("n_dims")?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(r.bad(format!("n_dims is {n_dims}, expected 1 to {MAX_DIMS}")));
            }
            let dims = (0..n_dims).map(|_| r.u64("dimension")).collect::<R<Vec<u64>>>()?;
            let ty = GgmlType(r.u32("ggml type")?);
            let offset = r.u64("data offset")?;
            infos.push((name, dims, ty, offset));
        }

        r.ctx = "data section".into();
        let end = r.pos as u64;
        let data_start = end
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| r.bad("header end overflows after alignment"))?;
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, ggml_type, rel) in infos {
            r.ctx = format!("tensor {name}");
            let t = check_tensor(r, name, dims, ggml_type, rel, data_start, alignment)?;
            tensors.push(t);
        }
        let mut order: Vec<&GgufTensor> = tensors.iter().collect();
        order.sort_by_key(|t| t.offset);
        for w in order.windows(2) {
            if w[0].offset + w[0].bytes > w[1].offset {
                r.ctx = format!("tensor {}", w[1].name);
                return Err(r.bad(format!(
                    "data at offset {} overlaps tensor {} (offsets {}..{})",
                    w[1].offset,
                    w[0].name,
                    w[0].offset,
                    w[0].offset + w[0].bytes
                )));
            }
        }
        Ok(Gguf {
            file: r.file.to_string(),
            version,
            alignment,
            metadata,
            tensors,
            data_start,
            file_size: r.file_size,
        })
    }

    /// Opens and maps a file, then parses its header.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<(Gguf, memmap2::Mmap)> {
        if path.is_dir() {
            return Err(Error::checkpoint(path, "is a directory, but a GGUF file was expected here"));
        }
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file changed underneath it is the caller's problem,
        // as with every memory-mapped checkpoint.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
        let name = path.display().to_string();
        match Gguf::parse(&name, &map, map.len() as u64)? {
            Parse::Done(g) => Ok((g, map)),
            // The whole file was given, so the parser reports a truncation as an error instead.
            Parse::NeedMore(_) => Err(Error::checkpoint(path, "invalid GGUF file: header is truncated")),
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of a tensor, from the whole file's bytes (a map, or a buffer).
    pub fn tensor_data<'a>(&self, t: &GgufTensor, file: &'a [u8]) -> Result<&'a [u8]> {
        let r = t.range();
        file.get(r.start as usize..r.end as usize).ok_or_else(|| {
            Error::checkpoint(&self.file, format!("tensor {}: bytes {}..{} are past the end of the given data ({} bytes)", t.name, r.start, r.end, file.len()))
        })
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    fn wrong(&self, key: &str, expected: &str, v: &MetaValue) -> Error {
        Error::checkpoint(&self.file, format!("metadata key {key}: expected {expected}, found {} ({v:?})", v.type_name()))
    }

    fn int<T: TryFrom<i128>>(&self, key: &str, expected: &str) -> Result<Option<T>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_i128().and_then(|i| T::try_from(i).ok()).map(Some).ok_or_else(|| self.wrong(key, expected, v))
    }
    /// Any integer kind whose value fits in a u32.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>> {
        self.int(key, "an integer that fits in u32")
    }
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        self.int(key, "an integer that fits in u64")
    }
    pub fn get_i32(&self, key: &str) -> Result<Option<i32>> {
        self.int(key, "an integer that fits in i32")
    }
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>> {
        self.int(key, "an integer that fits in i64")
    }
    /// An f32 or f64 value.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::F32(f)) => Ok(Some(*f)),
            Some(MetaValue::F64(f)) => Ok(Some(*f as f32)),
            Some(v) => Err(self.wrong(key, "f32", v)),
        }
    }
    pub fn get_array(&self, key: &str) -> Result<Option<&MetaArray>> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.wrong(key, "array", v)),
        }
    }
    /// `general.architecture`, which every GGUF model has.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")?
            .ok_or_else(|| Error::checkpoint(&self.file, "metadata key general.architecture is missing"))
    }
}

/// Getters for one exact kind of value.
macro_rules! getters {
    ($($name:ident: $pat:pat => $out:expr, $t:ty, $expected:literal;)*) => {
        impl Gguf {
            $(
                #[doc = concat!("The value of `key` when it is ", $expected, "; an error naming the key when it is another type.")]
                pub fn $name(&self, key: &str) -> Result<Option<$t>> {
                    match self.get(key) {
                        None => Ok(None),
                        Some($pat) => Ok(Some($out)),
                        Some(v) => Err(self.wrong(key, $expected, v)),
                    }
                }
            )*
        }
    };
}

getters! {
    get_bool: MetaValue::Bool(b) => *b, bool, "bool";
    get_str: MetaValue::Str(s) => s.as_str(), &str, "string";
    get_str_array: MetaValue::Array(MetaArray::Str(a)) => a.as_slice(), &[String], "array of string";
    get_i32_array: MetaValue::Array(MetaArray::I32(a)) => a.as_slice(), &[i32], "array of i32";
    get_u32_array: MetaValue::Array(MetaArray::U32(a)) => a.as_slice(), &[u32], "array of u32";
    get_f32_array: MetaValue::Array(MetaArray::F32(a)) => a.as_slice(), &[f32], "array of f32";
    get_u8_array: MetaValue::Array(MetaArray::U8(a)) => a.as_slice(), &[u8], "array of u8";
}

/// Validates one tensor info against its type, the alignment and the file size.
fn check_tensor(r: &Reader, name: String, dims: Vec<u64>, ty: GgmlType, rel: u64, data_start: u64, align: u64) -> R<GgufTensor> {
    let Some((blck, size)) = ty.block() else {
        return Err(r.bad(format!("unknown ggml type id {} for tensor {name}", ty.0)));
    };
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(r.bad(format!("dimension {i} is zero (dims {dims:?})")));
    }
    // ggml counts elements in i64.
    let n = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d).filter(|&p| p <= i64::MAX as u64));
    let Some(n) = n else {
        return Err(r.bad(format!("the element count of dims {dims:?} overflows")));
    };
    if !dims[0].is_multiple_of(blck) {
        return Err(r.bad(format!("ne0 = {} is not a multiple of the {} block size {blck}", dims[0], ty.name())));
    }
    let bytes = (n / blck).checked_mul(size).ok_or_else(|| r.bad(format!("the byte size of dims {dims:?} overflows")))?;
    if !rel.is_multiple_of(align) {
        return Err(r.bad(format!("data offset {rel} is not a multiple of the alignment {align}")));
    }
    let offset = data_start.checked_add(rel);
    match offset.and_then(|o| o.checked_add(bytes)) {
        Some(end) if end <= r.file_size => {}
        _ => {
            return Err(r.bad(format!(
                "data at offset {data_start} + {rel} ({bytes} bytes) is past the end of the file ({} bytes)",
                r.file_size
            )))
        }
    }
    Ok(GgufTensor { name, ggml_type: ty, dims, offset: data_start + rel, bytes })
}
