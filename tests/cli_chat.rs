//! End to end through the CLI with the real 201,088-token vocabulary: render → generate (GPU
//! sampling) → harmony parse → streamed output. A "scripted" checkpoint, whose greedy path is a
//! fixed harmony answer, makes the printed text checkable; a random one checks reproducibility.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::synth::{write_checkpoint, Fill, Shape};
use wgpt::tokenizer::Tokenizer;

const ANSWER: &str = "Hello from wgpt!";

fn tokenizer_json() -> Vec<u8> {
    use std::io::Read;
    let gz = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chat/o200k_harmony.tokenizer.json.gz")).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

/// A checkpoint that answers every prompt with `<|channel|>final<|message|>ANSWER<|return|>`.
fn scripted_model(dir: &Path) {
    let tok = Tokenizer::o200k_harmony().unwrap();
    let mut seq = vec![tok.encode("assistant").unwrap()[0], tok.special("<|channel|>").unwrap()];
    seq.extend(tok.encode("final").unwrap());
    seq.push(tok.special("<|message|>").unwrap());
    seq.extend(tok.encode(ANSWER).unwrap());
    seq.push(tok.special("<|return|>").unwrap());
    let next: HashMap<u32, u32> = seq.windows(2).map(|w| (w[0], w[1])).collect();
    assert_eq!(next.len(), seq.len() - 1, "the script needs distinct tokens");
    write_checkpoint(dir, &Shape::tiny_real_vocab(), Fill::Script { next: &next }, Some(&tokenizer_json()));
}

fn wgpt(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn temp_model(fill: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    match fill {
        "script" => scripted_model(&dir),
        _ => write_checkpoint(&dir, &Shape::tiny_real_vocab(), Fill::Random { seed: 11 }, Some(&tokenizer_json())),
    }
    (tmp, dir)
}

#[test]
fn run_streams_the_final_answer() {
    let (_t, dir) = temp_model("script");
    let d = dir.to_str().unwrap();
    // Sampled (temperature 1) and greedy give the scripted answer: its logits lead by 32.
    for extra in [&["--seed", "5"][..], &["--greedy"][..], &["--temperature", "0.7", "--top-p", "0.9", "--top-k", "40"][..]] {
        let mut args = vec!["run", d, "What is wgpt?", "--max-tokens", "32", "--ctx", "512"];
        args.extend_from_slice(extra);
        let (code, out, err) = wgpt(&args, None);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, format!("{ANSWER}\n"), "stderr: {err}");
        assert!(err.contains("tok/s") && err.contains("time to first token"), "{err}");
    }
}

#[test]
fn run_reads_the_prompt_from_stdin_and_takes_reasoning_and_system() {
    let (_t, dir) = temp_model("script");
    let args = ["run", dir.to_str().unwrap(), "-", "--reasoning", "high", "--system", "Be brief.", "--ctx", "512"];
    let (code, out, err) = wgpt(&args, Some("A question from stdin"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), ANSWER);
}

#[test]
fn chat_keeps_history_and_handles_commands() {
    let (_t, dir) = temp_model("script");
    let input = "first question\n/reasoning low\nsecond question\n/system Talk like a pirate.\n/bogus\n/reset\nthird\n/quit\n";
    let (code, out, err) = wgpt(&["chat", dir.to_str().unwrap(), "--ctx", "1024"], Some(input));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches(ANSWER).count(), 3, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("reasoning effort: low"), "{err}");
    assert!(err.contains("unknown command /bogus"), "{err}");
    assert!(err.contains("conversation cleared"), "{err}");
    // The second turn reuses the cached prefix of the first.
    let cached: Vec<usize> = err
        .lines()
        .filter_map(|l| l.split(" prompt tokens (").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(cached.len(), 3, "{err}");
    assert_eq!(cached[0], 0);
    assert!(cached[1] > 0, "second turn should reuse the cache: {err}");
}

#[test]
fn random_model_is_reproducible_by_seed() {
    let (_t, dir) = temp_model("random");
    let d = dir.to_str().unwrap();
    let run = |seed: &str| wgpt(&["run", d, "Tell me a story", "--max-tokens", "24", "--seed", seed, "--ctx", "512"], None);
    let (c1, o1, e1) = run("1");
    let (c2, o2, _) = run("1");
    assert_eq!(c1, 0, "{e1}");
    assert_eq!(c2, 0);
    assert_eq!(o1, o2, "same seed, same output");
    assert!(e1.contains("24 tokens at") || e1.contains("tokens at"), "{e1}");
    assert!(!e1.contains("panicked"));
}

#[test]
fn bad_sampling_flags_and_missing_tokenizer_are_clear_errors() {
    let (_t, dir) = temp_model("script");
    let d = dir.to_str().unwrap();
    let (code, _, err) = wgpt(&["run", d, "hi", "--top-p", "1.5"], None);
    assert_ne!(code, 0);
    assert!(err.starts_with("error: ") && err.contains("top_p"), "the flags are checked before loading: {err}");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let (code, _, err) = wgpt(&["run", d, "hi"], None);
    assert_ne!(code, 0);
    assert!(err.contains("tokenizer.json"), "{err}");
}

/// Drives `wgpt chat` through a pseudo-terminal, as a person would: Ctrl-C at the prompt does
/// not quit, answers stream, /quit leaves.
#[cfg(unix)]
#[test]
fn chat_in_a_terminal() {
    use expectrl::{Eof, Expect, Session};
    let (_t, dir) = temp_model("script");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgpt"));
    cmd.args(["chat", dir.to_str().unwrap(), "--ctx", "1024", "--seed", "3"]);
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(120)));
    p.expect(">>> ").unwrap();
    p.send("\x03").unwrap(); // Ctrl-C at the prompt: a fresh prompt, not an exit
    p.expect(">>> ").unwrap();
    p.send("hello there\r").unwrap();
    p.expect(ANSWER).unwrap();
    p.expect(">>> ").unwrap();
    p.send("/quit\r").unwrap();
    p.expect(Eof).unwrap();
}

/// `wgpt run ORG/NAME` downloads the repo from the hub endpoint into the HF cache, then answers;
/// the second run starts from the cache without downloading.
#[test]
fn run_downloads_a_repo_from_the_hub() {
    #[path = "hub_server/mod.rs"]
    #[allow(dead_code)]
    mod hub_server;
    let (_t, dir) = temp_model("script");
    let mut files = std::collections::BTreeMap::new();
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        files.insert(name.to_string(), std::fs::read(dir.join(name)).unwrap());
    }
    let server = hub_server::HubServer::start(hub_server::FixtureRepo {
        id: "wgpt-test/scripted".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        files,
    });
    let home = tempfile::tempdir().unwrap();
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_wgpt"))
            .args(["run", "wgpt-test/scripted", "hi", "--ctx", "512", "--seed", "1"])
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HOME", home.path())
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, out, err) = run();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), ANSWER);
    let downloads = server.seen().len();
    assert!(downloads > 0);
    let (code, out, err) = run();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), ANSWER);
    assert!(server.seen().len() <= downloads + 1, "the second run should only check the revision");
}
