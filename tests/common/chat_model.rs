//! A scripted gpt-oss checkpoint that behaves like a small chat model with the real o200k
//! vocabulary: it reasons on the analysis channel, then answers on the final channel; when a
//! `get_weather` function is offered and has not been called yet, it calls it instead of
//! answering; once the tool result is in the conversation, it answers.

use std::collections::HashMap;
use std::path::Path;

use super::synth::{write_checkpoint, Fill, Rule, Shape};
use wgpt::tokenizer::Tokenizer;

/// The reasoning (analysis channel) of every turn.
pub const THINK: &str = "Musing: the user greets me.";
/// The final answer.
pub const ANSWER: &str = "Hello from wgpt!";
/// The tool the model calls, and its arguments.
pub const TOOL: &str = "get_weather";
pub const TOOL_ARGS: &str = r#"{"city":"Paris"}"#;
/// A prompt ending in this token continues with it for ever (until max_tokens).
pub const HUM: &str = " la";

pub fn tokenizer_json() -> Vec<u8> {
    use std::io::Read;
    let gz = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chat/o200k_harmony.tokenizer.json.gz")).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

/// Writes the model (config.json, model.safetensors, tokenizer.json) into `dir`.
pub fn write_chat_model(dir: &Path) {
    let tok = Tokenizer::o200k_harmony().unwrap();
    let sp = |s: &str| tok.special(s).unwrap();
    let enc = |s: &str| tok.encode(s).unwrap();
    let one = |s: &str| {
        let ids = enc(s);
        assert_eq!(ids.len(), 1, "{s:?} is one token");
        ids[0]
    };
    let (channel, message, end, start, call) =
        (sp("<|channel|>"), sp("<|message|>"), sp("<|end|>"), sp("<|start|>"), sp("<|call|>"));
    let mut next: HashMap<u32, u32> = HashMap::new();
    let mut chain = |seq: &[u32]| {
        for w in seq.windows(2) {
            let old = next.insert(w[0], w[1]);
            assert!(old.is_none() || old == Some(w[1]), "token {} has two successors", w[0]);
        }
    };
    let think = enc(THINK);
    let answer = enc(ANSWER);
    let args = enc(TOOL_ARGS);
    // After the prompt's `<|start|>assistant`: `<|channel|>` (a branching token) comes next.
    chain(&[one("assistant"), channel]);
    // analysis: <|channel|>analysis<|message|>THINK<|end|><|start|>assistant
    chain(&[one("analysis"), message]);
    chain(&[think.clone(), vec![end, start, one("assistant")]].concat());
    // final: <|channel|>final<|message|>ANSWER<|return|>
    chain(&[one("final"), message]);
    chain(&[answer.clone(), vec![sp("<|return|>")]].concat());
    // tool call: <|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>ARGS<|call|>
    let header = [enc("commentary"), enc(" to=functions.get_weather"), vec![sp("<|constrain|>")], enc("json"), vec![message]].concat();
    chain(&header);
    chain(&[args.clone(), vec![call]].concat());
    // A hum that never ends: after " la" comes " la" (long generations for tests).
    chain(&[one(HUM), one(HUM)]);

    // Cues: 0 = the reasoning was written (a token of THINK), 1 = the tool is known (offered or
    // in the history), 2 = a tool call is already in the history.
    let thought = enc(" gre")[0];
    assert!(think.contains(&thought));
    let cues = [thought, one("_weather"), call];
    // Scores (in units of the normalised hidden value): reasoning 16 first; then, once the
    // reasoning is written, the answer 8+24=32, or the tool call 4+24+8=36 when the tool is
    // known; a tool call already made (-48) rules out another. Every choice wins by >= 4.
    let branch = |at: u32, analysis: u32, fin: u32, tool: u32| {
        vec![
            Rule { at, next: analysis, base: 16.0, cues: vec![] },
            Rule { at, next: fin, base: 8.0, cues: vec![(0, 24.0)] },
            Rule { at, next: tool, base: 4.0, cues: vec![(0, 24.0), (1, 8.0), (2, -48.0)] },
        ]
    };
    let mut rules = branch(channel, one("analysis"), one("final"), header[0]);
    rules.extend(branch(message, think[0], answer[0], args[0]));
    write_checkpoint(dir, &Shape::tiny_real_vocab(), Fill::Cued { next: &next, rules: &rules, cues: &cues }, Some(&tokenizer_json()));
}
