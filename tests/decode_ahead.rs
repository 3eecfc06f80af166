//! Decoding with the next pass queued before the previous token is read back
//! (`Session::decode_next`): the GPU gets token N+1's work before the host waits for token N,
//! the tokens are those of one-pass-at-a-time decoding, and a pass queued for a token that is
//! not wanted after all (a stop) leaves the session as if it had never run.

mod common;

use common::*;
use wgpt::models::{Model, Output, PassEvent, Want};
use wgpt::sampling::SamplingParams;

fn tiny() -> std::sync::Arc<Model> {
    Model::load(gpu(None), &fixture("tiny"), &mut |_, _| {}).expect("load")
}

#[test]
fn next_pass_is_submitted_before_the_previous_token_is_read() {
    let model = tiny();
    let mut s = model.session(256, 64).unwrap();
    let prompt = [3u32, 14, 15, 92, 65];
    let Output::Token(mut id) = pollster::block_on(s.forward(&prompt, Want::Argmax)).unwrap() else { panic!() };
    s.trace();
    for _ in 0..6 {
        id = pollster::block_on(s.decode_next(id, Want::Argmax, true)).unwrap();
    }
    let trace = s.take_trace();
    // Position 5 feeds the first generated token; each read of position p comes after the
    // submission of position p + 1.
    for p in 5..11u32 {
        let read = trace.iter().position(|e| *e == PassEvent::Read { position: p }).unwrap_or_else(|| panic!("{trace:?}"));
        let next = trace.iter().position(|e| *e == PassEvent::Submitted { position: p + 1 }).unwrap_or_else(|| panic!("{trace:?}"));
        assert!(next < read, "position {}: submitted after position {p} was read: {trace:?}", p + 1);
    }
    // One pass per token, plus the one queued ahead; 4 bytes read back per token.
    assert_eq!(trace.iter().filter(|e| matches!(e, PassEvent::Submitted { .. })).count(), 7);
}

#[test]
fn a_pass_queued_for_an_unwanted_token_is_undone() {
    let model = tiny();
    let prompt = [7u32, 1, 8, 2, 8, 1, 8];
    let mut s = model.session(256, 64).unwrap();
    let ids = greedy_ahead(&mut s, &prompt, 4);
    // Stop here as if ids[3] were a stop token, after a pass for it was queued.
    s.reset();
    let Output::Token(mut id) = pollster::block_on(s.forward(&prompt, Want::Argmax)).unwrap() else { panic!() };
    for _ in 0..3 {
        id = pollster::block_on(s.decode_next(id, Want::Argmax, true)).unwrap();
    }
    assert_eq!(id, ids[3]);
    // The cache holds the prompt and the first three generated tokens; the fourth is pending.
    assert_eq!(s.position() as usize, prompt.len() + 3);
    assert_eq!(s.tokens(), [&prompt[..], &ids[..3]].concat());
    // Feeding something else continues from there, exactly as a session fed the same tokens
    // one pass at a time (the queued pass's cache entry is overwritten).
    let other = [42u32, 43];
    let Output::Logits(after) = pollster::block_on(s.forward(&other, Want::AllLogits)).unwrap() else { panic!() };
    let mut fresh = model.session(256, 64).unwrap();
    pollster::block_on(fresh.forward(&prompt, Want::Argmax)).unwrap();
    for &t in &ids[..3] {
        pollster::block_on(fresh.forward(&[t], Want::Argmax)).unwrap();
    }
    let Output::Logits(want) = pollster::block_on(fresh.forward(&other, Want::AllLogits)).unwrap() else { panic!() };
    assert_eq!(after, want);
}

#[test]
fn sampled_tokens_equal_one_pass_at_a_time() {
    let model = tiny();
    let params = SamplingParams { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 11, ..Default::default() };
    let prompt = [5u32, 9, 2, 6];
    let mut s = model.session(256, 64).unwrap();
    let run = |s: &mut wgpt::models::Session, ahead: bool| {
        s.reset();
        let Output::Token(mut id) = pollster::block_on(s.forward(&prompt, Want::Sample(&params))).unwrap() else { panic!() };
        let mut ids = vec![id];
        for _ in 0..12 {
            id = if ahead {
                pollster::block_on(s.decode_next(id, Want::Sample(&params), true)).unwrap()
            } else {
                let Output::Token(t) = pollster::block_on(s.forward(&[id], Want::Sample(&params))).unwrap() else { panic!() };
                t
            };
            ids.push(id);
        }
        ids
    };
    assert_eq!(run(&mut s, true), run(&mut s, false));
}

#[test]
fn decoding_ahead_stops_at_the_context_end() {
    let model = tiny();
    let mut s = model.session(12, 64).unwrap();
    let prompt = [1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let Output::Token(id) = pollster::block_on(s.forward(&prompt, Want::Argmax)).unwrap() else { panic!() };
    // Position 10 is the last that fits (context 12 holds positions 0..12): no pass is queued
    // past the context, and the next call is an error naming it.
    let id = pollster::block_on(s.decode_next(id, Want::Argmax, true)).unwrap();
    let id = pollster::block_on(s.decode_next(id, Want::Argmax, true)).unwrap();
    let err = pollster::block_on(s.decode_next(id, Want::Argmax, true)).unwrap_err().to_string();
    assert!(err.contains("context of 12 tokens"), "{err}");
}
