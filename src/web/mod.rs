//! The browser build: wasm-bindgen bindings that run the same engine on the browser's WebGPU.
//! `Engine.create()` opens the adapter, `engine.load(source)` streams a model directory (a base
//! URL or `File` objects) or a GGUF file (its URL or `File`) chunk by chunk into GPU buffers
//! through the shared upload plan,
//! `engine.chat()` streams a harmony chat turn, and `generateIds` / `logits` are raw entry points
//! for checks. Fetching and caching live in `source.js`, bundled into the package.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::chat::{Conversation, Event, Message, ReasoningEffort, Role};
use crate::engine::{generate, ChatOptions, ChatTurn, Finish, GenerateOptions};
use crate::gpu::{Gpu, GpuOptions};
use crate::loader::gguf::{Gguf, Parse};
use crate::loader::{header_len, parse_index, Header, INDEX_FILE, SINGLE_FILE};
use crate::models::{KvCache, Model, ModelHeader, Output, Session, Upload, Want};
use crate::sampling::SamplingParams;

mod types;

#[wasm_bindgen(module = "/src/web/source.js")]
extern "C" {
    #[wasm_bindgen(js_name = openSource, catch)]
    async fn open_source(source: &JsValue, options: &JsValue, notify: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = cacheInfo, catch)]
    async fn js_cache_info() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = clearCache, catch)]
    async fn js_clear_cache() -> Result<JsValue, JsValue>;
}

fn err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// The message of a JS exception, with `context` in front of it.
fn js_message(context: &str, e: &JsValue) -> String {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|x| String::from(x.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    if context.is_empty() {
        msg
    } else {
        format!("{context}: {msg}")
    }
}

/// An `Error` from a JS exception, with `context` in front of its message.
fn js_err(context: &str, e: JsValue) -> JsValue {
    err(js_message(context, &e))
}

fn obj(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn get(o: &JsValue, key: &str) -> JsValue {
    if o.is_object() {
        Reflect::get(o, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

async fn call_async(o: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(o, method).dyn_into().map_err(|_| err(format!("source has no {method}()")))?;
    let arr = Array::new();
    for a in args {
        arr.push(a);
    }
    let p = f.apply(o, &arr)?;
    JsFuture::from(js_sys::Promise::resolve(&p)).await
}

/// The JSON value of a JS value (plain objects, arrays, strings, numbers).
fn to_json<T: serde::de::DeserializeOwned>(what: &str, v: &JsValue) -> Result<T, JsValue> {
    if v.is_undefined() || v.is_null() {
        return serde_json::from_str("{}").map_err(|e| err(format!("{what}: {e}")));
    }
    let text: String = js_sys::JSON::stringify(v).map_err(|e| js_err(what, e))?.into();
    serde_json::from_str(&text).map_err(|e| err(format!("{what}: {e}")))
}

fn report(v: impl serde::Serialize) -> JsValue {
    let text = serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
    js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
}

struct Loaded {
    model: Arc<Model>,
    /// The model with its tokenizer, when the directory has one (chat needs it).
    engine: Option<crate::engine::Engine>,
    /// Session of the raw entry points (`generateIds`, `logits`).
    raw: Option<Session>,
    /// Session of `chat`, which keeps its cache between turns.
    chat: Option<Session>,
    /// How the sessions' KV caches store keys and values.
    kv: KvCache,
}

struct Inner {
    gpu: RefCell<Arc<Gpu>>,
    /// What the browser says about the adapter (wgpu's web backend leaves the name empty).
    browser_info: types::BrowserAdapter,
    loaded: RefCell<Option<Loaded>>,
    busy: RefCell<Option<&'static str>>,
    cancel: Arc<AtomicBool>,
}

/// Marks the engine busy for the lifetime of the guard.
struct Busy(Rc<Inner>);

impl Busy {
    fn take(inner: &Rc<Inner>, what: &'static str) -> Result<Busy, JsValue> {
        let mut b = inner.busy.borrow_mut();
        if let Some(other) = *b {
            return Err(err(format!("the engine is busy ({other}); wait for it or call abort()")));
        }
        *b = Some(what);
        Ok(Busy(inner.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.busy.borrow_mut() = None;
    }
}

/// A GPU device with (optionally) a model loaded on it.
#[wasm_bindgen]
pub struct Engine {
    inner: Rc<Inner>,
}

fn webgpu_options(max_binding_bytes: Option<u64>) -> GpuOptions {
    GpuOptions { adapter: None, backend: Some("webgpu".into()), max_binding_bytes, features: None }
}

async fn open_gpu(max_binding_bytes: Option<u64>) -> Result<Gpu, JsValue> {
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    if get(&nav, "gpu").is_undefined() {
        return Err(err(
            "WebGPU is not available here (navigator.gpu is missing): use a browser with WebGPU enabled \
             (Chrome or Edge 113+, Safari 26, Firefox 141+ on Windows), on a page served over https or from localhost",
        ));
    }
    if let Some(n) = max_binding_bytes {
        if n < 256 {
            return Err(err(format!("maxBindingBytes {n}: expected a byte count of at least 256")));
        }
    }
    Gpu::new(&webgpu_options(max_binding_bytes)).await.map_err(|e| {
        err(match e {
            crate::Error::NoAdapter(_) => {
                "WebGPU found no GPU adapter: the GPU may be blocklisted or disabled (see chrome://gpu)".to_string()
            }
            other => other.to_string(),
        })
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreateOptions {
    max_binding_bytes: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LoadOptions {
    /// Split tensors into storage bindings of at most this many bytes (a fresh device is made
    /// when it differs from the engine's).
    max_binding_bytes: Option<u64>,
    /// Bytes of a GGUF file asked for first when reading its header (it grows as needed).
    head_bytes: Option<u64>,
    /// `"f32"` (default) or `"f16"`: how the KV cache stores keys and values.
    kv_cache: Option<String>,
}

impl LoadOptions {
    fn kv(&self) -> Result<KvCache, JsValue> {
        self.kv_cache.as_deref().map_or(Ok(KvCache::F32), |s| s.parse::<KvCache>().map_err(|e| err(format!("kvCache: {e}"))))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GenOptions {
    max_tokens: u32,
    greedy: bool,
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
    repetition_penalty: f32,
    presence_penalty: f32,
    frequency_penalty: f32,
    penalty_last_n: u32,
    seed: Option<u64>,
    stop: Vec<u32>,
}

impl Default for GenOptions {
    fn default() -> Self {
        let d = SamplingParams::default();
        GenOptions {
            max_tokens: 256,
            greedy: false,
            temperature: d.temperature,
            top_k: d.top_k,
            top_p: d.top_p,
            min_p: d.min_p,
            repetition_penalty: d.repetition_penalty,
            presence_penalty: d.presence_penalty,
            frequency_penalty: d.frequency_penalty,
            penalty_last_n: d.penalty_last_n,
            seed: None,
            stop: Vec::new(),
        }
    }
}

impl GenOptions {
    fn sampling(&self) -> Result<SamplingParams, JsValue> {
        let seed = self.seed.unwrap_or_else(|| (js_sys::Math::random() * 9.007_199_254_740_991e15) as u64);
        let p = SamplingParams {
            temperature: if self.greedy { 0.0 } else { self.temperature },
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_last_n: self.penalty_last_n,
            seed,
        };
        p.validate().map_err(err)?;
        Ok(p)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatMessage {
    role: String,
    content: String,
    #[serde(default)]
    channel: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    reasoning_effort: Option<String>,
    instructions: Option<String>,
    #[serde(flatten)]
    gen: GenOptions,
}

const DEFAULT_CTX: u32 = 4096;

#[wasm_bindgen]
impl Engine {
    /// Opens the browser's WebGPU adapter and device. Fails with a clear message when WebGPU is
    /// missing or no adapter is available.
    #[wasm_bindgen(unchecked_return_type = "Engine")]
    pub async fn create(#[wasm_bindgen(unchecked_param_type = "CreateOptions | undefined")] options: JsValue) -> Result<Engine, JsValue> {
        let opts: CreateOptions = to_json("Engine.create options", &options)?;
        let gpu = open_gpu(opts.max_binding_bytes).await?;
        let browser_info = browser_adapter().await;
        Ok(Engine {
            inner: Rc::new(Inner {
                gpu: RefCell::new(Arc::new(gpu)),
                browser_info,
                loaded: RefCell::new(None),
                busy: RefCell::new(None),
                cancel: Arc::new(AtomicBool::new(false)),
            }),
        })
    }

    /// The adapter: name, backend, features and the limits that decide how tensors are split.
    #[wasm_bindgen(unchecked_return_type = "AdapterReport")]
    pub fn adapter(&self) -> JsValue {
        let gpu = self.inner.gpu.borrow().clone();
        report(types::adapter_report(&gpu, &self.inner.browser_info))
    }

    /// Loads a model: `source` is the base URL of a directory in the Hugging Face hub layout, the
    /// URL of a `.gguf` file, or a list of `File`s (a directory's files or one `.gguf` file).
    /// Weights stream in chunks straight into GPU buffers.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelReport>")]
    pub fn load(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | File[] | FileList")] source: JsValue,
        #[wasm_bindgen(unchecked_param_type = "((p: LoadProgress) => void) | undefined")] on_progress: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&inner, "loading a model")?;
            load(&inner, source, on_progress, options).await
        })
    }

    /// Generates up to `maxTokens` ids after `ids` (from an empty cache); greedy or sampled.
    #[wasm_bindgen(js_name = generateIds, unchecked_return_type = "Promise<Uint32Array>")]
    pub fn generate_ids(
        &self,
        ids: js_sys::Uint32Array,
        #[wasm_bindgen(unchecked_param_type = "GenerateOptions | undefined")] options: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&inner, "generating")?;
            let opts: GenOptions = to_json("generateIds options", &options)?;
            let prompt = ids.to_vec();
            let mut session = take_session(&inner, false)?;
            session.reset();
            inner.cancel.store(false, Ordering::SeqCst);
            let gopts = GenerateOptions { max_tokens: opts.max_tokens, sampling: opts.sampling()?, stop: opts.stop.clone() };
            let mut out = Vec::new();
            let r = generate(&mut session, &prompt, &gopts, &inner.cancel, &mut |id| {
                out.push(id);
                Ok(true)
            })
            .await;
            put_session(&inner, session, false);
            r.map_err(err)?;
            Ok(js_sys::Uint32Array::from(&out[..]).into())
        })
    }

    /// Logits at every position of `ids` (from an empty cache): a Float32Array [n × vocab].
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn logits(&self, ids: js_sys::Uint32Array) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&inner, "computing logits")?;
            let prompt = ids.to_vec();
            let mut session = take_session(&inner, false)?;
            session.reset();
            let r = session.forward(&prompt, Want::AllLogits).await;
            put_session(&inner, session, false);
            match r.map_err(err)? {
                Output::Logits(l) => Ok(js_sys::Float32Array::from(&l[..]).into()),
                Output::Token(_) => Err(err("expected logits")),
            }
        })
    }

    /// One assistant turn of a chat (in the model's chat format), streamed to `onEvent` per channel;
    /// resolves to the usage record. The cache is kept between turns of a growing conversation.
    #[wasm_bindgen(unchecked_return_type = "Promise<ChatUsage>")]
    pub fn chat(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatRequest")] request: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(e: ChatEvent) => void")] on_event: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&inner, "answering")?;
            chat(&inner, request, on_event).await
        })
    }

    /// Stops the running generation after the current token (its promise resolves normally,
    /// with `finish: "aborted"`).
    pub fn abort(&self) {
        self.inner.cancel.store(true, Ordering::SeqCst);
    }

    /// What the browser's cache holds (bytes per file) and the storage estimate.
    #[wasm_bindgen(js_name = cacheInfo, unchecked_return_type = "CacheInfo")]
    pub async fn cache_info() -> Result<JsValue, JsValue> {
        js_cache_info().await.map_err(|e| js_err("cache", e))
    }

    /// Deletes every cached model file.
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "boolean")]
    pub async fn clear_cache() -> Result<JsValue, JsValue> {
        js_clear_cache().await.map_err(|e| js_err("cache", e))
    }
}

/// `navigator.gpu.requestAdapter()`'s `info` and fallback flag (empty when unavailable).
async fn browser_adapter() -> types::BrowserAdapter {
    let mut out = types::BrowserAdapter::default();
    let nav = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&nav, "gpu");
    let Ok(adapter) = call_async(&gpu, "requestAdapter", &[]).await else { return out };
    let info = get(&adapter, "info");
    let s = |k: &str| get(&info, k).as_string().unwrap_or_default();
    out.vendor = s("vendor");
    out.architecture = s("architecture");
    out.description = s("description");
    out.is_fallback = get(&info, "isFallbackAdapter").as_bool().or_else(|| get(&adapter, "isFallbackAdapter").as_bool()).unwrap_or(false);
    out
}

fn take_session(inner: &Inner, chat: bool) -> Result<Session, JsValue> {
    let mut l = inner.loaded.borrow_mut();
    let l = l.as_mut().ok_or_else(|| err("no model loaded: call load() first"))?;
    let slot = if chat { &mut l.chat } else { &mut l.raw };
    match slot.take() {
        Some(s) => Ok(s),
        None => {
            let ctx = DEFAULT_CTX.min(l.model.cfg.max_position_embeddings);
            l.model.session_with(ctx, crate::models::DEFAULT_CHUNK, l.kv).map_err(err)
        }
    }
}

fn put_session(inner: &Inner, s: Session, chat: bool) {
    if let Some(l) = inner.loaded.borrow_mut().as_mut() {
        if chat {
            l.chat = Some(s);
        } else {
            l.raw = Some(s);
        }
    }
}

fn progress(on_progress: &JsValue, phase: &str, loaded: f64, total: f64, file: &str) {
    if let Some(f) = on_progress.dyn_ref::<Function>() {
        let p = obj(&[
            ("phase", phase.into()),
            ("loaded", loaded.into()),
            ("total", total.into()),
            ("file", file.into()),
        ]);
        let _ = f.call1(&JsValue::NULL, &p);
    }
}

async fn read_chunk(stream: &JsValue, name: &str) -> Result<Option<Vec<u8>>, JsValue> {
    let v = call_async(stream, "read", &[]).await.map_err(|e| js_err(name, e))?;
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    let arr: Uint8Array = v.dyn_into().map_err(|_| err(format!("{name}: read() gave something other than bytes")))?;
    Ok(Some(arr.to_vec()))
}

fn as_f64(v: &JsValue) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

async fn load(inner: &Rc<Inner>, source: JsValue, on_progress: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let opts: LoadOptions = to_json("load options", &options)?;
    let kv = opts.kv()?;
    let t0 = web_time::Instant::now();
    // The previous model (and its GPU memory) goes first.
    *inner.loaded.borrow_mut() = None;
    if opts.max_binding_bytes.is_some() || inner.gpu.borrow().max_binding != default_binding(&inner.gpu.borrow()) {
        let gpu = open_gpu(opts.max_binding_bytes).await?;
        *inner.gpu.borrow_mut() = Arc::new(gpu);
    }
    let gpu = inner.gpu.borrow().clone();
    let notify = on_progress.clone();
    let src = open_source(&source, &options, &notify).await.map_err(|e| js_err("", e))?;
    let where_ = get(&src, "describe").dyn_ref::<Function>().and_then(|f| f.call0(&src).ok()).and_then(|v| v.as_string()).unwrap_or_default();
    let (header, tokenizer_json, header_bytes) = match get(&src, "gguf").as_string() {
        Some(name) => {
            progress(&on_progress, "config", 0.0, 0.0, &name);
            let (g, header_bytes) = gguf_header(&src, &name, &opts).await?;
            (ModelHeader::gguf(g).map_err(|e| err(format!("{name}: {e}")))?, None, Some(header_bytes))
        }
        None => {
            progress(&on_progress, "config", 0.0, 0.0, "config.json");
            let (header, tokenizer_json) = checkpoint_header(&src, &where_).await?;
            (header, tokenizer_json, None)
        }
    };
    let files: Vec<String> = header.files().into_iter().map(|(name, _)| name).collect();
    let (mut from_cache, mut downloaded) = (0f64, 0f64);
    let mut total = 0u64;
    // The shared loading path: tokenizer and chat format first, then every file's bytes in order
    // through the upload plan, straight into GPU buffers.
    let feed = async |up: &mut Upload, gpu: &Gpu| -> crate::Result<()> {
        total = up.progress().1;
        progress(&on_progress, "weights", 0.0, total as f64, &files[0]);
        let mut last_report = 0u64;
        for (i, name) in files.iter().enumerate() {
            let stream = call_async(&src, "open", &[name.into()]).await.map_err(|e| source_error(name, e))?;
            while let Some(chunk) = read_chunk(&stream, name).await.map_err(|e| source_error("", e))? {
                up.feed(gpu, i, &chunk)?;
                let (done, _) = up.progress();
                if done - last_report >= 1 << 20 || done == total {
                    progress(&on_progress, "weights", done as f64, total as f64, name);
                    last_report = done;
                }
            }
            from_cache += as_f64(&get(&stream, "fromCache"));
            downloaded += as_f64(&get(&stream, "downloaded"));
        }
        Ok(())
    };
    let loaded = crate::engine::load(gpu.clone(), &header, tokenizer_json.as_deref(), feed).await.map_err(|e| {
        let what = match (&header, &e) {
            (_, crate::Error::Tokenizer(_)) if tokenizer_json.is_some() => "tokenizer.json",
            (ModelHeader::Gguf { gguf, .. }, _) => gguf.file.as_str(),
            _ => "",
        };
        err(if what.is_empty() { e.to_string() } else { format!("{what}: {e}") })
    })?;
    let crate::engine::Loaded { model, engine } = loaded;
    let cfg = &model.cfg;
    let out = types::ModelReport {
        source: where_,
        files,
        bytes: total,
        bytes_from_cache: from_cache as u64,
        bytes_downloaded: downloaded as u64,
        seconds: t0.elapsed().as_secs_f64(),
        vocab_size: cfg.vocab_size,
        layers: cfg.num_hidden_layers,
        hidden_size: cfg.hidden_size,
        experts: cfg.num_local_experts,
        has_tokenizer: engine.is_some(),
        max_binding_bytes: gpu.max_binding,
        format: header.format(),
        architecture: cfg.arch.name().to_string(),
        header_bytes,
    };
    *inner.loaded.borrow_mut() = Some(Loaded { model, engine, raw: None, chat: None, kv });
    progress(&on_progress, "done", total as f64, total as f64, "");
    Ok(report(out))
}

/// A failure of the JS source (a download, a `File` read) as an error of the load.
fn source_error(context: &str, e: JsValue) -> crate::Error {
    crate::Error::Download(js_message(context, &e))
}

/// The headers of a checkpoint directory's files (`config.json`, the safetensors headers, read
/// from each file's first bytes) and its `tokenizer.json` when it has one. Everything is
/// validated before any weight is read.
async fn checkpoint_header(src: &JsValue, where_: &str) -> Result<(ModelHeader, Option<Vec<u8>>), JsValue> {
    let bytes = |name: &'static str| {
        let src = src.clone();
        async move {
            let v = call_async(&src, "bytes", &[name.into()]).await.map_err(|e| js_err(name, e))?;
            if v.is_null() || v.is_undefined() {
                return Ok::<_, JsValue>(None);
            }
            Ok(Some(v.dyn_into::<Uint8Array>().map_err(|_| err(format!("{name}: not bytes")))?.to_vec()))
        }
    };
    let config = bytes("config.json").await?.ok_or_else(|| err(format!("{where_}: config.json is missing (is this a model directory?)")))?;
    let cfg = crate::models::gpt_oss::config::from_json(&String::from_utf8_lossy(&config)).map_err(|e| err(format!("config.json: {e}")))?;
    let tokenizer_json = bytes("tokenizer.json").await?;
    let (names, shards) = match bytes(INDEX_FILE).await? {
        Some(b) => {
            let shards = parse_index(&String::from_utf8_lossy(&b)).map_err(err)?;
            (shards.keys().cloned().collect::<Vec<_>>(), Some(shards))
        }
        None => (vec![SINGLE_FILE.to_string()], None),
    };
    let mut header = Header::default();
    for name in &names {
        let (size, mut head) = head_bytes(src, name, 65536).await?;
        let n = header_len(name, &head, size).map_err(err)?;
        if (head.len() as u64) < 8 + n {
            head = head_bytes(src, name, 8 + n).await?.1;
        }
        if (head.len() as u64) < 8 + n {
            return Err(err(format!("{name}: invalid safetensors file ({size} bytes): the header is cut off")));
        }
        header.add_file(name, &head[8..8 + n as usize], size).map_err(err)?;
    }
    if let Some(shards) = &shards {
        header.check_index(shards).map_err(err)?;
    }
    Ok((ModelHeader::Safetensors { cfg, header }, tokenizer_json))
}

/// The first bytes asked for when reading a GGUF header; it grows while the parser asks for more.
const GGUF_HEAD: u64 = 1 << 20;

async fn head_bytes(src: &JsValue, name: &str, n: u64) -> Result<(u64, Vec<u8>), JsValue> {
    let first = call_async(src, "head", &[name.into(), (n as f64).into()]).await.map_err(|e| js_err(name, e))?;
    let size = as_f64(&get(&first, "size")) as u64;
    let head = get(&first, "head").dyn_into::<Uint8Array>().map_err(|_| err(format!("{name}: no header bytes")))?.to_vec();
    Ok((size, head))
}

/// A GGUF file's header, read with growing prefixes, and how many bytes that took.
async fn gguf_header(src: &JsValue, name: &str, opts: &LoadOptions) -> Result<(Gguf, u64), JsValue> {
    let mut want = opts.head_bytes.unwrap_or(GGUF_HEAD).max(64);
    loop {
        let (size, head) = head_bytes(src, name, want).await?;
        let asked = want.min(size);
        if (head.len() as u64) < asked {
            return Err(err(format!("{name}: got {} bytes of the first {asked} ({size} bytes in all)", head.len())));
        }
        match Gguf::parse(name, &head, size).map_err(err)? {
            Parse::Done(g) => {
                let read = want.min(g.file_size);
                return Ok((g, read));
            }
            Parse::NeedMore(n) => {
                if asked >= size || n > size {
                    return Err(err(format!("{name}: invalid GGUF file ({size} bytes): the header is cut off")));
                }
                // Doubling keeps the number of requests small for headers with large vocabularies.
                want = n.max(want.saturating_mul(2)).min(size);
            }
        }
    }
}

fn default_binding(gpu: &Gpu) -> u64 {
    gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) & !3
}

fn effort(s: Option<&str>) -> Result<ReasoningEffort, JsValue> {
    match s.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("medium") => Ok(ReasoningEffort::Medium),
        Some("low") => Ok(ReasoningEffort::Low),
        Some("high") => Ok(ReasoningEffort::High),
        Some(other) => Err(err(format!("reasoningEffort {other:?}: expected low, medium or high"))),
    }
}

fn emit(on_event: &JsValue, ev: JsValue) {
    if let Some(f) = on_event.dyn_ref::<Function>() {
        let _ = f.call1(&JsValue::NULL, &ev);
    }
}

async fn chat(inner: &Rc<Inner>, request: JsValue, on_event: JsValue) -> Result<JsValue, JsValue> {
    let req: ChatRequest = to_json("chat request", &request)?;
    let mut conv = Conversation::default();
    conv.system.reasoning = effort(req.reasoning_effort.as_deref())?;
    conv.instructions = req.instructions.clone().filter(|s| !s.trim().is_empty());
    for m in &req.messages {
        let role = Role::parse(&m.role).ok_or_else(|| err(format!("message role {:?}: expected user, assistant, developer, system or tool", m.role)))?;
        match role {
            // A system or developer message sets the instructions (harmony has one developer message).
            Role::System | Role::Developer => conv.instructions = Some(m.content.clone()),
            _ => {
                let mut msg = Message::new(role, m.content.clone());
                if role == Role::Assistant {
                    msg = msg.with_channel(m.channel.clone().unwrap_or_else(|| "final".into()));
                }
                conv.messages.push(msg);
            }
        }
    }
    if conv.messages.is_empty() {
        return Err(err("chat: the request has no messages"));
    }
    let opts = ChatOptions { max_tokens: req.gen.max_tokens, sampling: req.gen.sampling()? };
    let engine = {
        let l = inner.loaded.borrow();
        let loaded = l.as_ref().ok_or_else(|| err("no model loaded: call load() first"))?;
        loaded.engine.clone().ok_or_else(|| {
            err("this model directory has no tokenizer.json: chat needs it (generateIds and logits work without)")
        })?
    };
    let mut session = take_session(inner, true)?;
    inner.cancel.store(false, Ordering::SeqCst);
    let result = async {
        let mut turn = ChatTurn::new(&engine, &session, &conv, &opts).map_err(err)?;
        while !turn.is_done() {
            if inner.cancel.load(Ordering::SeqCst) {
                turn.cancel();
            }
            for ev in turn.step(&mut session, 1).await.map_err(err)? {
                let js = match &ev {
                    Event::Delta { channel, text } => obj(&[
                        ("type", "delta".into()),
                        ("channel", channel.as_deref().unwrap_or("final").into()),
                        ("text", text.into()),
                    ]),
                    Event::ToolCall { recipient, arguments, .. } => {
                        obj(&[("type", "toolCall".into()), ("recipient", recipient.into()), ("arguments", arguments.into())])
                    }
                    Event::Error(m) => obj(&[("type", "warning".into()), ("message", m.into())]),
                    _ => continue,
                };
                emit(&on_event, js);
            }
        }
        let stats = turn.stats();
        let usage = types::ChatUsage {
            prompt_tokens: stats.prompt_tokens,
            cached_tokens: stats.cached_tokens,
            generated_tokens: stats.generated,
            time_to_first_token: stats.time_to_first_token.as_secs_f64(),
            decode_seconds: stats.decode_time.as_secs_f64(),
            tokens_per_second: stats.decode_tok_s(),
            prefill_tokens_per_second: stats.prefill_tok_s(),
            finish: match turn.finish() {
                Some(Finish::Stop(_)) => "stop",
                Some(Finish::Cancelled) => "aborted",
                Some(Finish::MaxTokens) | None => "length",
            },
        };
        emit(&on_event, obj(&[("type", "usage".into()), ("usage", report(&usage))]));
        Ok(report(usage))
    }
    .await;
    put_session(inner, session, true);
    result
}
