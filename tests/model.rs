//! Whole-model checks against Hugging Face transformers (float32, eager attention) on tiny
//! random gpt-oss checkpoints in the hub layout (tests/reference/generate.py wrote them):
//! logits at every prompt position, logits of every decode step through the KV cache, and
//! greedy continuations — with tensors whole, and split across bindings of a few KiB with
//! the prompt processed in small chunks.

mod common;

use common::*;
use wgpt::models::{KvCache, Model, Output, Want};

const TOL: f32 = common::budget::MODEL_LOGITS;

fn check_fixture(name: &str, max_binding: Option<u64>, ctx: u32, chunk: u32) {
    check_fixture_on(gpu(max_binding), name, max_binding, ctx, chunk);
}

fn check_fixture_on(gpu: std::sync::Arc<wgpt::gpu::Gpu>, name: &str, max_binding: Option<u64>, ctx: u32, chunk: u32) {
    let dir = fixture(name);
    let features = gpu.shader.name();
    let model = Model::load(gpu, &dir, &mut |_, _| {}).expect("load");
    let worst = check_against_cases(name, &model, &dir, ctx, chunk, TOL);
    eprintln!("{name} (binding limit {max_binding:?}, ctx {ctx}, chunk {chunk}, features {features}): max |dlogit| {worst:.3e}");
}

#[test]
fn tiny_matches_transformers() {
    // With the device's optional shader features, and with the portable paths only.
    for gpu in gpu_modes(None) {
        check_fixture_on(gpu, "tiny", None, 4096, 128);
    }
}

#[test]
fn tiny_sharded_odd_layers_matches_transformers() {
    check_fixture("tiny-sharded", None, 4096, 128);
}

#[test]
fn tiny_matches_transformers_with_tensors_split_and_chunked_prefill() {
    // 2 KiB per binding: embedding, LM head, experts and KV cache all split into many slices.
    check_fixture("tiny", Some(2048), 64, 5);
}

#[test]
fn tiny_sharded_matches_transformers_with_tensors_split_and_chunked_prefill() {
    check_fixture("tiny-sharded", Some(3000), 48, 4);
}

/// Largest |Δlogit| against transformers allowed with the f16 KV cache (keys and values rounded
/// to f16; the f32 cache stays within `TOL`).
const F16_KV_TOL: f32 = common::budget::F16_KV_MOE_LOGITS;

#[test]
fn tiny_with_f16_kv_cache_stays_close_to_transformers() {
    for (name, max_binding, ctx, chunk) in [("tiny", None, 4096, 128), ("tiny-sharded", Some(3000), 48, 4)] {
        let dir = fixture(name);
        let model = Model::load(gpu(max_binding), &dir, &mut |_, _| {}).expect("load");
        let mut f32_session = model.session(ctx, chunk).unwrap();
        let (f32_worst, f32_greedy) = check_session_against_cases(name, &model, &mut f32_session, &dir, TOL, true);
        let mut session = model.session_with(ctx, chunk, KvCache::F16).unwrap();
        assert_eq!(session.kv_cache(), KvCache::F16);
        let (worst, greedy_same) = check_session_against_cases(name, &model, &mut session, &dir, F16_KV_TOL, false);
        eprintln!(
            "{name} (binding limit {max_binding:?}, chunk {chunk}): max |dlogit| f32 cache {f32_worst:.3e}, f16 cache {worst:.3e}; \
             greedy continuations identical: f32 {f32_greedy}, f16 {greedy_same}"
        );
        // The tiny models' greedy continuations survive f16 keys and values.
        assert!(greedy_same, "{name}: greedy continuation changed with the f16 cache");
        // f16 rounding shows up in the logits: the cache is really f16.
        assert!(worst > f32_worst, "{name}: the f16 cache changed nothing");
    }
}

#[test]
fn long_prompt_in_one_pass_equals_chunked() {
    let dir = fixture("tiny");
    let model = Model::load(gpu(None), &dir, &mut |_, _| {}).unwrap();
    let prompt: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 512).collect();
    let run = |chunk| {
        let mut s = model.session(256, chunk).unwrap();
        let Output::Logits(l) = pollster::block_on(s.forward(&prompt, Want::AllLogits)).unwrap() else { panic!() };
        l
    };
    let (one, chunked) = (run(64), run(7));
    assert!(max_abs_diff(&one, &chunked) < common::budget::SAME_MODEL_REORDERED);
}

#[test]
fn runs_on_a_device_the_application_already_owns() {
    // An application (a game, a tool) creates its own device; wgpt uses it instead of making one.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .unwrap();
    let gpu = std::sync::Arc::new(wgpt::gpu::Gpu::from_device(device.clone(), queue, adapter.get_info(), &Default::default()));
    let dir = fixture("tiny");
    let model = Model::load(gpu.clone(), &dir, &mut |_, _| {}).unwrap();
    let case = &cases(&dir).cases[0];
    let mut session = model.session(256, 128).unwrap();
    let Output::Logits(got) = pollster::block_on(session.forward(&case.prompt, Want::LastLogits)).unwrap() else { panic!() };
    let (_, want) = read_npy(&dir.join("reference").join(&case.logits));
    let vocab = model.cfg.vocab_size as usize;
    let row = case.prompt.len() - 1;
    assert!(max_abs_diff(&got, &want[row * vocab..][..vocab]) <= TOL);
    // The very same device: buffers made by the application and by wgpt interoperate.
    assert!(gpu.device == device);
}

#[test]
fn decode_steps_allocate_nothing_and_stay_within_the_dispatch_budget() {
    let dir = fixture("tiny");
    let model = Model::load(gpu(None), &dir, &mut |_, _| {}).unwrap();
    let layers = model.cfg.num_hidden_layers as u64;
    let params = wgpt::sampling::SamplingParams { temperature: 0.8, top_p: 0.9, seed: 3, ..Default::default() };
    for want in [Want::Argmax, Want::Sample(&params)] {
        let mut session = model.session(256, 128).unwrap();
        let mut out = pollster::block_on(session.forward(&[1, 2, 3, 4, 5], want)).unwrap();
        // The first decode steps build their bind groups; later ones reuse them.
        let mut per_token = Vec::new();
        for _ in 0..6 {
            let Output::Token(id) = out else { panic!("expected a token") };
            let before = session.record_stats();
            out = pollster::block_on(session.forward(&[id], want)).unwrap();
            let after = session.record_stats();
            per_token.push((
                after.dispatches - before.dispatches,
                after.submits - before.submits,
                after.buffers_created - before.buffers_created,
                after.bind_groups_created - before.bind_groups_created,
            ));
        }
        for &(dispatches, submits, buffers, bind_groups) in &per_token[2..] {
            assert_eq!((submits, buffers, bind_groups), (1, 0, 0), "{want:?}: {per_token:?}");
            // 7 per layer (the attention norm inside the q/k/v kernel), plus embed, the LM head
            // (with the final norm inside) and two for the token choice.
            assert_eq!(dispatches, 7 * layers + 4, "{want:?}");
        }
    }
}
