//! Bad input gives one clear error line naming the file, tensor or value, and a non-zero exit:
//! never a panic, never output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn wgpt(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgpt"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run wgpt");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Asserts a clean failure whose error line mentions every `needle`.
fn assert_fails(r: &Run, needles: &[&str]) {
    assert_ne!(r.code, 0, "expected failure, stderr: {}", r.stderr);
    assert!(r.code > 0 && r.code < 100, "exit code {} looks like a crash: {}", r.code, r.stderr);
    assert!(!r.stderr.contains("panicked"), "panic: {}", r.stderr);
    assert!(r.stdout.trim().is_empty(), "no output expected, got {}", r.stdout);
    let line = r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {}", r.stderr));
    for n in needles {
        assert!(line.contains(n), "error line {line:?} should mention {n:?}");
    }
}

fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    (tmp, dst)
}

fn logits(dir: &Path, tokens: &str) -> Run {
    let out = dir.parent().unwrap().join("out.npy");
    wgpt(&["logits", "--model", dir.to_str().unwrap(), "--tokens", tokens, "--npy", out.to_str().unwrap()], &[])
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Rewrites model.safetensors with `f` applied to the (name, dtype, shape, bytes) list.
fn rewrite_tensors(dir: &Path, f: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut list: Vec<_> =
        st.tensors().into_iter().map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec())).collect();
    f(&mut list);
    let views: Vec<(String, safetensors::tensor::TensorView)> = list
        .iter()
        .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn missing_model_directory() {
    let r = logits(Path::new("/nonexistent/model-dir"), "1,2");
    assert_fails(&r, &["/nonexistent/model-dir"]);
}

#[test]
fn directory_without_weights() {
    let (_t, dir) = copy_fixture("tiny");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["no model.safetensors"]);
}

#[test]
fn truncated_safetensors_file() {
    let (_t, dir) = copy_fixture("tiny");
    let p = dir.join("model.safetensors");
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 1000).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors", "invalid safetensors"]);
}

#[test]
fn corrupt_header() {
    let (_t, dir) = copy_fixture("tiny");
    let p = dir.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    b[8..20].copy_from_slice(b"not json at ");
    std::fs::write(&p, &b).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors"]);
    // A header length larger than the file.
    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors"]);
}

#[test]
fn header_offsets_past_the_end_of_the_file() {
    let (_t, dir) = copy_fixture("tiny");
    let p = dir.join("model.safetensors");
    let header = r#"{"model.norm.weight":{"dtype":"BF16","shape":[96],"data_offsets":[0,1000000]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(&[0u8; 192]);
    std::fs::write(&p, &b).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors"]);
}

#[test]
fn shard_named_in_index_is_missing() {
    let (_t, dir) = copy_fixture("tiny-sharded");
    std::fs::remove_file(dir.join("model-00001-of-00002.safetensors")).unwrap();
    assert_fails(&logits(&dir, "1,2"), &["model-00001-of-00002.safetensors", "missing"]);
}

#[test]
fn tensor_with_wrong_dtype() {
    let (_t, dir) = copy_fixture("tiny");
    rewrite_tensors(&dir, |list| {
        let t = list.iter_mut().find(|t| t.0 == "model.layers.1.self_attn.sinks").unwrap();
        t.1 = safetensors::Dtype::F32;
        t.3 = vec![0u8; t.3.len() * 2];
    });
    assert_fails(&logits(&dir, "1,2"), &["model.layers.1.self_attn.sinks", "dtype"]);
}

#[test]
fn tensor_with_wrong_shape_for_config() {
    let (_t, dir) = copy_fixture("tiny");
    edit_config(&dir, |c| c["intermediate_size"] = 96.into());
    assert_fails(&logits(&dir, "1,2"), &["gate_up_proj_blocks", "shape"]);
}

#[test]
fn missing_tensor() {
    let (_t, dir) = copy_fixture("tiny");
    rewrite_tensors(&dir, |list| list.retain(|t| t.0 != "lm_head.weight"));
    assert_fails(&logits(&dir, "1,2"), &["lm_head.weight", "missing"]);
}

#[test]
fn config_that_is_not_gpt_oss() {
    let (_t, dir) = copy_fixture("tiny");
    edit_config(&dir, |c| c["model_type"] = "llama".into());
    assert_fails(&logits(&dir, "1,2"), &["config.json", "llama"]);
}

#[test]
fn config_with_inconsistent_sizes() {
    let (_t, dir) = copy_fixture("tiny");
    edit_config(&dir, |c| c["num_attention_heads"] = 5.into());
    assert_fails(&logits(&dir, "1,2"), &["config.json", "num_attention_heads"]);
    let (_t2, dir2) = copy_fixture("tiny");
    edit_config(&dir2, |c| c["layer_types"] = serde_json::json!(["sliding_attention"]));
    assert_fails(&logits(&dir2, "1,2"), &["config.json", "layer_types"]);
    let (_t3, dir3) = copy_fixture("tiny");
    std::fs::write(dir3.join("config.json"), "{ not json").unwrap();
    assert_fails(&logits(&dir3, "1,2"), &["config.json"]);
    // A value of the wrong JSON type is named, not read as "no end-of-sequence token".
    let (_t4, dir4) = copy_fixture("tiny");
    edit_config(&dir4, |c| c["eos_token_id"] = "200002".into());
    assert_fails(&logits(&dir4, "1,2"), &["config.json", "eos_token_id"]);
}

#[test]
fn token_ids_out_of_vocab() {
    assert_fails(&logits(&fixture("tiny"), "1,512"), &["512", "vocab_size 512"]);
    assert_fails(&logits(&fixture("tiny"), "1,x"), &["--tokens", "\"x\""]);
}

#[test]
fn context_larger_than_ctx() {
    let dir = fixture("tiny");
    let d = dir.to_str().unwrap();
    let r = wgpt(&["logits", "--model", d, "--tokens", "1,2,3,4,5", "--ctx", "4", "--npy", "/dev/null"], &[]);
    assert_fails(&r, &["context of 4"]);
    let r = wgpt(&["generate", "--model", d, "--tokens", "1,2,3", "--ctx", "8", "--max-tokens", "10", "--greedy", "--ids"], &[]);
    assert_fails(&r, &["context of 8"]);
    let r = wgpt(&["generate", "--model", d, "--tokens", "1", "--ctx", "999999", "--max-tokens", "1"], &[]);
    assert_fails(&r, &["999999"]);
}

#[test]
fn bad_binding_limit_variable() {
    let r = wgpt(&["info"], &[("WGPT_MAX_BINDING_BYTES", "12abc")]);
    assert_fails(&r, &["WGPT_MAX_BINDING_BYTES"]);
}

#[test]
fn smallest_binding_limit_gives_the_same_logits() {
    // 256 bytes per binding: every tensor of the tiny model is cut into slices of one or two rows.
    let dir = fixture("tiny");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    let args = |out: &Path| {
        ["logits", "--model", dir.to_str().unwrap(), "--tokens", "5,6,7,8,9,10,11,12,13,14", "--ctx", "32", "--npy", out.to_str().unwrap()]
            .map(String::from)
    };
    let (args_a, args_b) = (args(&a), args(&b));
    let r = wgpt(&args_a.iter().map(|s| s.as_str()).collect::<Vec<_>>(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = wgpt(&args_b.iter().map(|s| s.as_str()).collect::<Vec<_>>(), &[("WGPT_MAX_BINDING_BYTES", "256")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (sa, la) = common::read_npy(&a);
    let (sb, lb) = common::read_npy(&b);
    assert_eq!(sa, vec![10, 512]);
    assert_eq!(sa, sb);
    assert!(common::max_abs_diff(&la, &lb) < common::budget::SAME_MODEL_REORDERED);
}

#[test]
fn generate_prints_ids_space_separated_with_ids_and_as_json_without() {
    let dir = fixture("tiny");
    let d = dir.to_str().unwrap();
    let args = ["generate", "--model", d, "--tokens", "1,2,3", "--max-tokens", "4", "--greedy"];
    let plain = wgpt(&[&args[..], &["--ids"]].concat(), &[]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let spaced: Vec<u32> = plain.stdout.split_whitespace().map(|t| t.parse().expect("an id")).collect();
    assert_eq!(spaced.len(), 4, "{}", plain.stdout);
    assert_eq!(plain.stdout.trim().lines().count(), 1);
    let json = wgpt(&args, &[]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let listed: Vec<u32> = serde_json::from_str(json.stdout.trim()).expect("a JSON array of ids");
    assert_eq!(listed, spaced);
}

#[test]
fn absurd_config_numbers_are_refused_before_anything_is_sized_from_them() {
    // A layer count of 2^31 - 1 must not build a name for every layer (tens of GB) before the
    // first tensor is checked.
    let t0 = std::time::Instant::now();
    for (field, value) in [
        ("num_hidden_layers", serde_json::json!(2147483647u32)),
        ("vocab_size", serde_json::json!(4000000000u32)),
        ("hidden_size", serde_json::json!(1u32 << 31)),
        ("max_position_embeddings", serde_json::json!(0)),
        ("rms_norm_eps", serde_json::json!(1.5)),
        ("rms_norm_eps", serde_json::json!(0.0)),
        ("rms_norm_eps", serde_json::json!(-1e-5)),
        ("rope_theta", serde_json::json!(-1.0)),
        ("eos_token_id", serde_json::json!("</s>")),
        ("eos_token_id", serde_json::json!([1, "x"])),
        ("eos_token_id", serde_json::json!(-3)),
    ] {
        let (_t, dir) = copy_fixture("tiny");
        edit_config(&dir, |c| c[field] = value.clone());
        assert_fails(&logits(&dir, "1,2"), &["config.json", field]);
    }
    for factor in [serde_json::json!(0.0), serde_json::json!(-4.0)] {
        let (_t, dir) = copy_fixture("tiny");
        edit_config(&dir, |c| c["rope_scaling"]["factor"] = factor.clone());
        assert_fails(&logits(&dir, "1,2"), &["config.json", "rope_scaling.factor"]);
    }
    // Wrong JSON types name the field too.
    let (_t, dir) = copy_fixture("tiny");
    edit_config(&dir, |c| c["num_hidden_layers"] = "four".into());
    assert_fails(&logits(&dir, "1,2"), &["config.json", "num_hidden_layers"]);
    assert!(t0.elapsed().as_secs() < 120, "refusing absurd configs took {:?}", t0.elapsed());
}

#[test]
fn layer_count_is_checked_against_the_tensors_present() {
    // More layers than the checkpoint holds (within the bounds): refused before planning.
    for (layers, needle) in [(1000, "holds only 79 tensors"), (5, "no model.layers.4.")] {
        let (_t, dir) = copy_fixture("tiny");
        edit_config(&dir, |c| {
            c["num_hidden_layers"] = layers.into();
            c.as_object_mut().unwrap().remove("layer_types");
        });
        assert_fails(&logits(&dir, "1,2"), &[&format!("num_hidden_layers is {layers}"), needle]);
    }
    // Fewer: the tensors of the layers left over are named.
    let (_t, dir) = copy_fixture("tiny");
    edit_config(&dir, |c| {
        c["num_hidden_layers"] = 3.into();
        c.as_object_mut().unwrap().remove("layer_types");
    });
    assert_fails(&logits(&dir, "1,2"), &["model.layers.3.", "unused tensors"]);
}

/// Rewrites the JSON header of model.safetensors with `f` (data offsets are relative to the
/// end of the header, so the data stays valid).
fn replace_header(dir: &Path, f: impl FnOnce(&str) -> String) {
    let p = dir.join("model.safetensors");
    let b = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header = f(std::str::from_utf8(&b[8..8 + n]).unwrap());
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&b[8 + n..]);
    std::fs::write(&p, &out).unwrap();
}

#[test]
fn safetensors_headers_must_be_one_plain_json_object() {
    // The unchanged rewrite loads (the helper itself is sound).
    let (_t, dir) = copy_fixture("tiny");
    replace_header(&dir, |h| h.to_string());
    let r = logits(&dir, "1,2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A duplicated key, at the top or inside an entry: serde would keep the last silently.
    let (_t, dir) = copy_fixture("tiny");
    replace_header(&dir, |h| {
        let at = h.find("\"lm_head.weight\":").unwrap();
        let end = at + h[at..].find('}').unwrap() + 1;
        let entry = h[at..end].to_string();
        h.replacen(&entry, &format!("{entry},{entry}"), 1)
    });
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors", "\"lm_head.weight\" more than once"]);
    let (_t, dir) = copy_fixture("tiny");
    replace_header(&dir, |h| h.replacen("\"dtype\":\"BF16\",", "\"dtype\":\"F32\",\"dtype\":\"BF16\",", 1));
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors", "\"dtype\" more than once"]);
    // A header that does not start with '{'.
    let (_t, dir) = copy_fixture("tiny");
    replace_header(&dir, |h| format!(" {h}"));
    assert_fails(&logits(&dir, "1,2"), &["model.safetensors", "does not start with"]);
}

/// Sets the u32 metadata value of `key` in a GGUF file in place.
fn patch_gguf_u32(path: &Path, key: &str, value: u32) {
    let mut b = std::fs::read(path).unwrap();
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = b.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    assert_eq!(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()), 4, "{key} is not a u32");
    b[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, &b).unwrap();
}

#[test]
fn gguf_with_tensors_the_architecture_does_not_use_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, arch) in [("llama-q8.gguf", "llama"), ("gpt-oss.gguf", "gpt-oss")] {
        let p = tmp.path().join(file);
        std::fs::copy(fixture("gguf-tiny").join(file), &p).unwrap();
        patch_gguf_u32(&p, &format!("{arch}.block_count"), 1);
        assert_fails(&logits(&p, "1,2"), &["blk.1.", "not used", "block_count 1"]);
        patch_gguf_u32(&p, &format!("{arch}.block_count"), 9);
        assert_fails(&logits(&p, "1,2"), &["block_count is 9", "blk.8."]);
        patch_gguf_u32(&p, &format!("{arch}.block_count"), 100000);
        assert_fails(&logits(&p, "1,2"), &[&format!("{arch}.block_count 100000"), "out of range"]);
    }
}

#[test]
fn misleading_paths_get_errors_about_what_is_wrong() {
    // An empty directory lacks config.json first of all.
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = wgpt(&["run", empty.to_str().unwrap(), "hi"], &[]);
    assert_fails(&r, &["config.json", "missing"]);
    assert!(!r.stderr.contains("tokenizer.json: missing"), "{}", r.stderr);
    // A directory named like a GGUF file.
    let dir = tmp.path().join("x.gguf");
    std::fs::create_dir(&dir).unwrap();
    for r in [wgpt(&["run", dir.to_str().unwrap(), "hi"], &[]), logits(&dir, "1,2")] {
        assert_fails(&r, &["x.gguf", "is a directory"]);
        assert!(!r.stderr.contains("No such device"), "{}", r.stderr);
    }
}

#[test]
fn argument_ranges_are_checked() {
    let d = fixture("tiny");
    let d = d.to_str().unwrap();
    for (flag, v) in [("--ctx", "0"), ("--chunk", "0")] {
        let r = wgpt(&["logits", "--model", d, "--tokens", "1,2", flag, v, "--npy", "/dev/null"], &[]);
        assert_fails(&r, &[flag]);
    }
    for (flag, v) in [("--parallel", "0"), ("--chunk", "0"), ("--ctx", "0"), ("--timeout", "0"), ("--max-connections", "0"), ("--timeout", "nan")] {
        assert_fails(&wgpt(&["serve", d, flag, v], &[]), &[flag]);
    }
}
