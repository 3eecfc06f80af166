//! GGUF header parsing: files written here byte by byte (valid, then corrupted one way at a
//! time), and a real llama.cpp file checked against the `gguf` Python package's reading of it
//! (tests/reference/gguf_dump.py, output in tests/fixtures/gguf/).

use std::path::PathBuf;

use wgpt::loader::gguf::{GgmlType, Gguf, MetaArray, MetaValue, Parse};

/// A metadata value to write: typed ones, or a raw value type id and payload for corruptions.
#[derive(Clone)]
enum V {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(&'static str),
    U64(u64),
    I64(i64),
    F64(f64),
    StrArr(Vec<&'static str>),
    I32Arr(Vec<i32>),
    F32Arr(Vec<f32>),
    Raw(u32, Vec<u8>),
}

#[derive(Clone)]
struct T {
    name: &'static str,
    ty: u32,
    dims: Vec<u64>,
    /// Relative data offset; None places it after the previous tensor, aligned.
    offset: Option<u64>,
}

#[derive(Clone)]
struct File {
    magic: [u8; 4],
    version: u32,
    kvs: Vec<(&'static str, V)>,
    tensors: Vec<T>,
    /// The alignment the writer pads with (general.alignment must be written as a kv too).
    align: u64,
    tensor_count: Option<u64>,
    kv_count: Option<u64>,
}

/// Values per block and bytes per block, for the types written here (from ggml's block structs).
fn block(ty: u32) -> (u64, u64) {
    match ty {
        0 => (1, 4),
        1 => (1, 2),
        8 => (32, 2 + 32),
        12 => (256, 2 + 2 + 12 + 128),
        _ => (1, 1),
    }
}

fn tensor_bytes(t: &T) -> u64 {
    let (b, s) = block(t.ty);
    (t.dims.iter().fold(1u64, |a, &d| a.wrapping_mul(d)) / b).wrapping_mul(s)
}

/// Test data: byte i of the data section is (i * 7 + 3) as u8.
fn data_byte(i: u64) -> u8 {
    (i.wrapping_mul(7) + 3) as u8
}

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn value(out: &mut Vec<u8>, v: &V) {
    let (ty, bytes): (u32, Vec<u8>) = match v {
        V::U8(x) => (0, vec![*x]),
        V::I8(x) => (1, x.to_le_bytes().to_vec()),
        V::U16(x) => (2, x.to_le_bytes().to_vec()),
        V::I16(x) => (3, x.to_le_bytes().to_vec()),
        V::U32(x) => (4, x.to_le_bytes().to_vec()),
        V::I32(x) => (5, x.to_le_bytes().to_vec()),
        V::F32(x) => (6, x.to_le_bytes().to_vec()),
        V::Bool(x) => (7, vec![*x as u8]),
        V::Str(s) => {
            let mut b = vec![];
            gstr(&mut b, s);
            (8, b)
        }
        V::U64(x) => (10, x.to_le_bytes().to_vec()),
        V::I64(x) => (11, x.to_le_bytes().to_vec()),
        V::F64(x) => (12, x.to_le_bytes().to_vec()),
        V::StrArr(a) => {
            let mut b = 8u32.to_le_bytes().to_vec();
            b.extend((a.len() as u64).to_le_bytes());
            a.iter().for_each(|s| gstr(&mut b, s));
            (9, b)
        }
        V::I32Arr(a) => {
            let mut b = 5u32.to_le_bytes().to_vec();
            b.extend((a.len() as u64).to_le_bytes());
            a.iter().for_each(|x| b.extend(x.to_le_bytes()));
            (9, b)
        }
        V::F32Arr(a) => {
            let mut b = 6u32.to_le_bytes().to_vec();
            b.extend((a.len() as u64).to_le_bytes());
            a.iter().for_each(|x| b.extend(x.to_le_bytes()));
            (9, b)
        }
        V::Raw(t, b) => (*t, b.clone()),
    };
    out.extend(ty.to_le_bytes());
    out.extend(bytes);
}

struct Written {
    bytes: Vec<u8>,
    /// End of the tensor infos: the shortest prefix that holds the whole header.
    header_end: u64,
    data_start: u64,
    /// Relative offsets as written.
    offsets: Vec<u64>,
}

impl File {
    fn write(&self) -> Written {
        let mut out = self.magic.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.tensor_count.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        out.extend(self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            gstr(&mut out, k);
            value(&mut out, v);
        }
        let mut offsets = vec![];
        let mut next = 0u64;
        for t in &self.tensors {
            let off = t.offset.unwrap_or(next);
            offsets.push(off);
            next = off.wrapping_add(tensor_bytes(t)).checked_next_multiple_of(self.align).unwrap_or(0);
            gstr(&mut out, t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(t.ty.to_le_bytes());
            out.extend(off.to_le_bytes());
        }
        let header_end = out.len() as u64;
        let data_start = header_end.next_multiple_of(self.align);
        out.resize(data_start as usize, 0);
        // Data up to the end of the last tensor placed by the writer (not those given an offset),
        // with no padding after it, so any cut breaks the file.
        let end = self
            .tensors
            .iter()
            .zip(&offsets)
            .filter(|(t, _)| t.offset.is_none())
            .map(|(t, o)| o.saturating_add(tensor_bytes(t)))
            .max()
            .unwrap_or(0);
        out.extend((0..end.min(1 << 24)).map(data_byte));
        Written { bytes: out, header_end, data_start, offsets }
    }
}

fn sample() -> File {
    File {
        magic: *b"GGUF",
        version: 3,
        kvs: vec![
            ("general.architecture", V::Str("llama")),
            ("general.alignment", V::U32(64)),
            ("llama.block_count", V::U32(2)),
            ("t.u8", V::U8(200)),
            ("t.i8", V::I8(-7)),
            ("t.u16", V::U16(65000)),
            ("t.i16", V::I16(-300)),
            ("t.i32", V::I32(-5)),
            ("t.f32", V::F32(1.5)),
            ("t.bool", V::Bool(true)),
            ("t.u64", V::U64(1 << 40)),
            ("t.i64", V::I64(-(1 << 40))),
            ("t.f64", V::F64(0.25)),
            ("tokenizer.ggml.tokens", V::StrArr(vec!["a", "bb", "ünï", ""])),
            ("tokenizer.ggml.scores", V::F32Arr(vec![0.5, -1.0, 2.0, 0.0])),
            ("tokenizer.ggml.token_type", V::I32Arr(vec![1, 2, 3, 6])),
            ("t.empty", V::StrArr(vec![])),
        ],
        tensors: vec![
            T { name: "a.f32", ty: 0, dims: vec![8, 3], offset: None },
            T { name: "b.f16", ty: 1, dims: vec![16], offset: None },
            T { name: "c.q8_0", ty: 8, dims: vec![64, 3, 2], offset: None },
            T { name: "d.q4_k", ty: 12, dims: vec![256, 2], offset: None },
        ],
        align: 64,
        tensor_count: None,
        kv_count: None,
    }
}

fn parse_all(bytes: &[u8]) -> wgpt::Result<Gguf> {
    match Gguf::parse("t.gguf", bytes, bytes.len() as u64)? {
        Parse::Done(g) => Ok(g),
        Parse::NeedMore(n) => panic!("the whole file was given, yet the parser asks for {n} bytes"),
    }
}

/// The error message of parsing a broken file, which must mention `expect`.
fn error_of(f: &File, expect: &str) -> String {
    let w = f.write();
    let msg = match parse_all(&w.bytes) {
        Ok(_) => panic!("a file that should fail with {expect:?} parsed"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains(expect), "error {msg:?} does not mention {expect:?}");
    assert!(msg.starts_with("t.gguf: "), "error {msg:?} does not name the file");
    msg
}

#[test]
fn parses_every_field_of_a_v3_file() {
    let f = sample();
    let w = f.write();
    let g = parse_all(&w.bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 64);
    assert_eq!(g.file_size, w.bytes.len() as u64);
    assert_eq!(g.data_start, w.data_start);
    assert_eq!(g.data_start % 64, 0);
    assert!(g.data_start > w.header_end, "the padding is skipped");
    assert_eq!(g.metadata.len(), f.kvs.len());
    let m = |k: &str| g.metadata.get(k).unwrap().clone();
    assert_eq!(m("general.architecture"), MetaValue::Str("llama".into()));
    assert_eq!(m("general.alignment"), MetaValue::U32(64));
    assert_eq!(m("t.u8"), MetaValue::U8(200));
    assert_eq!(m("t.i8"), MetaValue::I8(-7));
    assert_eq!(m("t.u16"), MetaValue::U16(65000));
    assert_eq!(m("t.i16"), MetaValue::I16(-300));
    assert_eq!(m("t.i32"), MetaValue::I32(-5));
    assert_eq!(m("t.f32"), MetaValue::F32(1.5));
    assert_eq!(m("t.bool"), MetaValue::Bool(true));
    assert_eq!(m("t.u64"), MetaValue::U64(1 << 40));
    assert_eq!(m("t.i64"), MetaValue::I64(-(1 << 40)));
    assert_eq!(m("t.f64"), MetaValue::F64(0.25));
    assert_eq!(m("t.empty"), MetaValue::Array(MetaArray::Str(vec![])));

    // Typed getters.
    assert_eq!(g.architecture().unwrap(), "llama");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), Some(2));
    assert_eq!(g.get_u32("t.u8").unwrap(), Some(200));
    assert!(g.get_u32("t.u64").unwrap_err().to_string().contains("t.u64"));
    assert_eq!(g.get_u64("t.u64").unwrap(), Some(1 << 40));
    assert_eq!(g.get_i32("t.i16").unwrap(), Some(-300));
    assert_eq!(g.get_u32("missing.key").unwrap(), None);
    let e = g.get_u32("t.i32").unwrap_err().to_string();
    assert!(e.contains("t.i32") && e.contains("u32") && e.contains("found i32"), "{e}");
    assert_eq!(g.get_f32("t.f32").unwrap(), Some(1.5));
    assert_eq!(g.get_f32("t.f64").unwrap(), Some(0.25));
    let e = g.get_f32("general.architecture").unwrap_err().to_string();
    assert!(e.contains("general.architecture") && e.contains("expected f32") && e.contains("found string"), "{e}");
    assert_eq!(g.get_bool("t.bool").unwrap(), Some(true));
    assert!(g.get_bool("t.u8").is_err());
    assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
    let e = g.get_str("tokenizer.ggml.tokens").unwrap_err().to_string();
    assert!(e.contains("found array of string"), "{e}");
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap(), ["a", "bb", "ünï", ""]);
    assert_eq!(g.get_f32_array("tokenizer.ggml.scores").unwrap().unwrap(), [0.5, -1.0, 2.0, 0.0]);
    assert_eq!(g.get_i32_array("tokenizer.ggml.token_type").unwrap().unwrap(), [1, 2, 3, 6]);
    let e = g.get_i32_array("tokenizer.ggml.scores").unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.scores") && e.contains("array of f32"), "{e}");

    // Tensors, in file order, with absolute offsets and sizes from the block table.
    let expect = [
        ("a.f32", GgmlType::F32, vec![8, 3], 8 * 3 * 4),
        ("b.f16", GgmlType::F16, vec![16], 16 * 2),
        ("c.q8_0", GgmlType::Q8_0, vec![64, 3, 2], 2 * 3 * 2 * 34),
        ("d.q4_k", GgmlType::Q4_K, vec![256, 2], 2 * 144),
    ];
    assert_eq!(g.tensors.len(), expect.len());
    for ((t, (name, ty, dims, bytes)), rel) in g.tensors.iter().zip(expect).zip(&w.offsets) {
        assert_eq!(t.name, name);
        assert_eq!(t.ggml_type, ty);
        assert_eq!(t.dims, dims);
        assert_eq!(t.bytes, bytes, "{name}");
        assert_eq!(t.offset, w.data_start + rel, "{name}");
        assert_eq!(t.offset % 64, 0);
        assert_eq!(t.cols(), dims[0]);
        assert_eq!(t.rows(), dims[1..].iter().product::<u64>());
        assert_eq!(t.n_values(), dims.iter().product::<u64>());
        assert_eq!(g.tensor(name).unwrap(), t);
        let data = g.tensor_data(t, &w.bytes).unwrap();
        assert_eq!(data.len() as u64, bytes);
        assert!(data.iter().enumerate().all(|(i, &b)| b == data_byte(rel + i as u64)), "{name} data");
    }
    assert_eq!(g.tensors[2].rows(), 6);
    assert!(g.tensor("nope").is_none());
    assert!(g.tensor_data(&g.tensors[3], &w.bytes[..w.bytes.len() - 1]).is_err());
}

#[test]
fn default_alignment_is_32_and_version_2_parses() {
    let mut f = sample();
    f.version = 2;
    f.kvs.retain(|(k, _)| *k != "general.alignment");
    f.align = 32;
    let w = f.write();
    let g = parse_all(&w.bytes).unwrap();
    assert_eq!(g.version, 2);
    assert_eq!(g.alignment, 32);
    assert_eq!(g.data_start, w.data_start);
    assert_eq!(g.data_start, w.header_end.next_multiple_of(32));
    assert_eq!(g.tensors.last().unwrap().offset + g.tensors.last().unwrap().bytes, g.file_size);
}

#[test]
fn a_growing_prefix_asks_for_more_then_parses() {
    let w = sample().write();
    let size = w.bytes.len() as u64;
    let full = parse_all(&w.bytes).unwrap();
    // Every prefix shorter than the header asks for more; every longer one parses.
    for len in 0..=size {
        match Gguf::parse("t.gguf", &w.bytes[..len as usize], size).unwrap() {
            Parse::NeedMore(n) => {
                assert!(len < w.header_end, "prefix {len} holds the header ({}) yet asks for more", w.header_end);
                assert!(n > len && n <= size, "prefix {len}: asks for {n}");
            }
            Parse::Done(g) => {
                assert!(len >= w.header_end, "prefix {len} is shorter than the header");
                assert_eq!(g.tensors, full.tensors);
                assert_eq!(g.metadata, full.metadata);
            }
        }
    }
    // Following the requests from a small start reaches the header in a few steps.
    let (mut len, mut steps) = (8u64, 0);
    let g = loop {
        match Gguf::parse("t.gguf", &w.bytes[..len as usize], size).unwrap() {
            Parse::NeedMore(n) => len = n,
            Parse::Done(g) => break g,
        }
        steps += 1;
        assert!(steps < 20);
    };
    assert_eq!(g.data_start, full.data_start);
    assert!(Gguf::parse("t.gguf", &w.bytes, size - 1).is_err(), "a prefix longer than the file is an error");
}

#[test]
fn a_truncated_file_is_an_error_at_every_cut() {
    let w = sample().write();
    for cut in 0..w.bytes.len() {
        match Gguf::parse("t.gguf", &w.bytes[..cut], cut as u64) {
            Err(e) => assert!(e.to_string().contains("invalid GGUF file"), "cut {cut}: {e}"),
            Ok(p) => panic!("a file cut at {cut} of {} bytes gave {p:?}", w.bytes.len()),
        }
    }
}

#[test]
fn rejects_bad_magic_and_versions() {
    let mut f = sample();
    f.magic = *b"GGUG";
    error_of(&f, "bad magic");
    let mut f = sample();
    f.version = 1;
    error_of(&f, "GGUF version 1 is not supported");
    let mut f = sample();
    f.version = 0;
    error_of(&f, "GGUF version 0 is not supported");
    let mut f = sample();
    f.version = 4;
    error_of(&f, "GGUF version 4 is not supported");
    let mut f = sample();
    f.version = 3u32.swap_bytes();
    error_of(&f, "big-endian GGUF files are not supported (version 3)");
}

#[test]
fn rejects_counts_and_lengths_past_the_end() {
    let mut f = sample();
    f.tensor_count = Some(1 << 62);
    error_of(&f, "4611686018427387904 tensors");
    let mut f = sample();
    f.kv_count = Some(u64::MAX);
    error_of(&f, "cannot fit");
    let mut f = sample();
    f.kv_count = Some(f.kvs.len() as u64 + 1);
    error_of(&f, "tensor name");

    // A string of length 2^60.
    let mut f = sample();
    let mut raw = (1u64 << 60).to_le_bytes().to_vec();
    raw.extend(b"abc");
    f.kvs.push(("t.huge", V::Raw(8, raw)));
    let e = error_of(&f, "key t.huge");
    assert!(e.contains("needs 1152921504606846976 bytes"), "{e}");

    // Numeric array counts past the end, and one whose byte size overflows.
    for count in [1000u64, 1 << 62, u64::MAX] {
        let mut f = sample();
        let mut raw = 5u32.to_le_bytes().to_vec();
        raw.extend(count.to_le_bytes());
        raw.extend([0; 8]);
        f.kvs.push(("t.arr", V::Raw(9, raw)));
        error_of(&f, "past the end");
    }
    // A string array of 2^61 strings.
    let mut f = sample();
    let mut raw = 8u32.to_le_bytes().to_vec();
    raw.extend((1u64 << 61).to_le_bytes());
    f.kvs.push(("t.strs", V::Raw(9, raw)));
    error_of(&f, "array of 2305843009213693952 strings");
}

#[test]
fn rejects_bad_metadata() {
    let mut f = sample();
    f.kvs.push(("t.x", V::Raw(13, vec![0; 8])));
    error_of(&f, "unknown value type 13");
    let mut f = sample();
    f.kvs.push(("t.x", V::Raw(9, [14u32.to_le_bytes(), 0u32.to_le_bytes()].concat())));
    error_of(&f, "unknown array element type 14");
    let mut f = sample();
    f.kvs.push(("t.x", V::Raw(9, [9u32.to_le_bytes().to_vec(), 1u64.to_le_bytes().to_vec()].concat())));
    error_of(&f, "nested arrays");
    let mut f = sample();
    f.kvs.push(("t.x", V::Raw(8, [2u64.to_le_bytes().to_vec(), vec![0xff, 0xfe]].concat())));
    error_of(&f, "not valid UTF-8");
    let mut f = sample();
    f.kvs.push(("t.bool", V::Raw(7, vec![2])));
    error_of(&f, "expected 0 or 1");
    let mut f = sample();
    f.kvs.push(("t.u8", V::U8(1)));
    error_of(&f, "key t.u8: duplicate key");
    for a in [48u32, 0] {
        let mut f = sample();
        f.kvs[1].1 = V::U32(a);
        error_of(&f, "not a non-zero power of two");
    }
    let mut f = sample();
    f.kvs[1].1 = V::Str("64");
    error_of(&f, "general.alignment");
}

#[test]
fn rejects_bad_tensor_infos() {
    let with = |i: usize, edit: &dyn Fn(&mut T)| {
        let mut f = sample();
        edit(&mut f.tensors[i]);
        f
    };
    error_of(&with(0, &|t| t.dims = vec![1; 9]), "tensor a.f32: n_dims is 9");
    error_of(&with(0, &|t| t.dims = vec![]), "n_dims is 0");
    error_of(&with(1, &|t| t.dims = vec![16, 0]), "tensor b.f16: dimension 1 is zero");
    error_of(&with(0, &|t| t.dims = vec![1 << 32, 1 << 32, 1 << 2]), "overflows");
    error_of(&with(0, &|t| t.dims = vec![1 << 31, 1 << 31, 1 << 1]), "overflows");
    error_of(&with(2, &|t| t.dims = vec![48, 2]), "not a multiple of the Q8_0 block size 32");
    error_of(&with(3, &|t| t.ty = 999), "unknown ggml type id 999 for tensor d.q4_k");
    error_of(&with(3, &|t| t.ty = 4), "unknown ggml type id 4 for tensor d.q4_k");
    error_of(&with(3, &|t| t.offset = Some(1 << 20)), "tensor d.q4_k: data at offset");
    error_of(&with(3, &|t| t.offset = Some(u64::MAX - 63)), "past the end of the file");
    error_of(&with(1, &|t| t.offset = Some(32)), "data offset 32 is not a multiple of the alignment 64");
    error_of(&with(1, &|t| t.offset = Some(0)), "overlaps tensor a.f32");
    error_of(&with(1, &|t| t.name = "a.f32"), "tensor a.f32: duplicate tensor name");
}

#[test]
fn ggml_type_table_matches_the_gguf_package() {
    assert_eq!(GgmlType(39).name(), "MXFP4");
    assert_eq!(GgmlType(39).block(), Some((32, 17)));
    assert_eq!(GgmlType(12).block(), Some((256, 144)));
    assert_eq!(GgmlType(4).name(), "type 4");
    assert_eq!(GgmlType(4).block(), None);
    assert_eq!(GgmlType(1000).name(), "type 1000");
    let fixture = reference();
    let table = fixture["ggml_types"].as_object().unwrap();
    assert!(table.len() >= 33);
    for id in 0..64u32 {
        let t = GgmlType(id);
        match table.get(&id.to_string()) {
            // gguf 0.19.0 still gives Q8_1 its old 4-byte d and s (40 bytes); ggml's block_q8_1
            // holds two halves and 32 quants, static_assert-ed to 36 bytes (ggml-common.h).
            Some(e) if id == 9 => {
                assert_eq!((t.name().as_str(), e[2].as_u64()), ("Q8_1", Some(40)), "fix this case if gguf-py is fixed");
                assert_eq!(t.block(), Some((32, 36)));
            }
            Some(e) => {
                assert_eq!(t.name(), e[0].as_str().unwrap(), "id {id}");
                assert_eq!(t.block(), Some((e[1].as_u64().unwrap(), e[2].as_u64().unwrap())), "id {id}");
            }
            None => assert_eq!(t.block(), None, "id {id} is not in the package's table"),
        }
    }
}

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gguf/SmolLM2-135M-Instruct.Q4_1.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn model_path() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let path = PathBuf::from(home).join(".cache/wgpt/models").join(MODEL);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh to download the test models", path.display());
    path
}

#[test]
fn real_model_matches_the_gguf_package() {
    let (g, map) = Gguf::open(&model_path()).unwrap();
    assert_eq!(g.tensors.len(), 272);
    assert_eq!(g.architecture().unwrap(), "llama");
    assert_eq!(g.get_u32("llama.block_count").unwrap(), Some(30));
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap().len(), 49152);
    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.ggml_type.name(), "Q8_0");
    assert_eq!(emb.dims, [576, 49152]);
    assert_eq!(g.tensor_data(emb, &map).unwrap().len() as u64, 576 / 32 * 34 * 49152);

    let r = reference();
    assert_eq!(r["file_size"].as_u64().unwrap(), g.file_size);
    assert_eq!(r["version"].as_u64().unwrap(), g.version as u64);
    assert_eq!(r["alignment"].as_u64().unwrap(), g.alignment);
    assert_eq!(r["data_start"].as_u64().unwrap(), g.data_start);
    let tensors = r["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), g.tensors.len());
    for (e, t) in tensors.iter().zip(&g.tensors) {
        assert_eq!(e["name"].as_str().unwrap(), t.name);
        assert_eq!(e["type"].as_u64().unwrap(), t.ggml_type.0 as u64, "{}", t.name);
        assert_eq!(e["type_name"].as_str().unwrap(), t.ggml_type.name(), "{}", t.name);
        let dims: Vec<u64> = e["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(dims, t.dims, "{}", t.name);
        assert_eq!(e["offset"].as_u64().unwrap(), t.offset, "{}", t.name);
        assert_eq!(e["bytes"].as_u64().unwrap(), t.bytes, "{}", t.name);
    }
    // Scalar metadata, value by value; arrays by length.
    let meta = r["metadata"].as_object().unwrap();
    let lengths = r["array_lengths"].as_object().unwrap();
    assert_eq!(meta.len() + lengths.len(), g.metadata.len());
    for (k, e) in meta {
        let v = g.metadata.get(k).unwrap_or_else(|| panic!("key {k} is missing"));
        match v {
            MetaValue::Str(s) => assert_eq!(e.as_str().unwrap(), s, "{k}"),
            MetaValue::Bool(b) => assert_eq!(e.as_bool().unwrap(), *b, "{k}"),
            MetaValue::F32(f) => assert_eq!(e.as_f64().unwrap() as f32, *f, "{k}"),
            MetaValue::F64(f) => assert_eq!(e.as_f64().unwrap(), *f, "{k}"),
            v => assert_eq!(e.as_i64().unwrap() as i128, v.as_i128().unwrap(), "{k}"),
        }
    }
    for (k, n) in lengths {
        match g.metadata.get(k) {
            Some(MetaValue::Array(a)) => assert_eq!(a.len() as u64, n.as_u64().unwrap(), "{k}"),
            v => panic!("key {k}: {v:?}"),
        }
    }
}

#[test]
fn real_model_header_parses_from_growing_prefixes() {
    let bytes = std::fs::read(model_path()).unwrap();
    let size = bytes.len() as u64;
    let (mut len, mut requests) = (64 * 1024u64, 1);
    let g = loop {
        match Gguf::parse(MODEL, &bytes[..len as usize], size).unwrap() {
            Parse::NeedMore(n) => {
                assert!(n > len);
                len = n;
                requests += 1;
            }
            Parse::Done(g) => break g,
        }
    };
    // The header is about 1.8 MB: doubling from 64 KiB takes 6 requests.
    assert!(requests <= 6, "{requests} requests");
    assert!(len >= g.data_start - g.alignment);
    let (full, _) = Gguf::open(&model_path()).unwrap();
    assert_eq!(g.tensors, full.tensors);
    assert_eq!(g.metadata, full.metadata);
}

#[test]
fn mutated_files_never_panic() {
    let w = sample().write();
    let mut checked = 0;
    for i in 0..w.header_end as usize + 8 {
        for flip in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bytes = w.bytes.clone();
            bytes[i] ^= flip;
            // Parsed whole or from the prefix that held the original header: an error, a
            // request for more, or a header whose every tensor lies inside the file.
            for len in [bytes.len(), w.header_end as usize] {
                if let Ok(Parse::Done(g)) = Gguf::parse("t.gguf", &bytes[..len], bytes.len() as u64) {
                    for t in &g.tensors {
                        assert!(t.offset >= g.data_start && t.offset.is_multiple_of(g.alignment), "byte {i} ^ {flip:#x}: {t:?}");
                        assert_eq!(g.tensor_data(t, &bytes).unwrap().len() as u64, t.bytes);
                    }
                    checked += 1;
                }
            }
        }
    }
    // A flip inside a metadata value leaves a valid file, so some must parse.
    assert!(checked > 0);
}
