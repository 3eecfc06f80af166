//! HTTP routes: request checking, submission to the scheduler, and the JSON or server-sent-event
//! answers.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::chat::Conversation;
use crate::engine::Engine;

use super::guard::{guard, Origins};
use super::openai::*;
use super::scheduler::{Job, Out, Scheduler, Work};

/// What every handler sees.
pub struct AppState {
    pub engine: Engine,
    pub model_id: String,
    pub ctx: u32,
    pub scheduler: Scheduler,
    pub created: u64,
    /// Longest time a request may take (`--timeout`).
    pub timeout: Option<Duration>,
}

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>, max_body_bytes: usize, origins: Arc<Origins>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(origins, guard))
        .with_state(state)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn request_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:016x}{n:x}", RandomState::new().hash_one((n, SystemTime::now())))
}

async fn not_found() -> ApiError {
    ApiError::invalid("no such route (see /v1/chat/completions, /v1/completions, /v1/models, /health)")
        .with_status(StatusCode::NOT_FOUND)
        .with_code("not_found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::invalid("method not allowed on this route").with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// The request body as JSON, with OpenAI-style errors for an oversized or malformed body.
fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_body" };
        ApiError::invalid(format!("could not read the request body: {}", rejection.body_text()))
            .with_status(status)
            .with_code(code)
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")).with_code("invalid_json"))?;
    if !value.is_object() {
        return Err(ApiError::invalid("the request body must be a JSON object").with_code("invalid_json"));
    }
    Ok(value)
}

async fn health(State(s): Shared) -> Json<Value> {
    let l = &s.scheduler.load;
    Json(serde_json::json!({
        "status": "ok",
        "model": s.model_id,
        "slots": l.slots,
        "slots_busy": l.busy.load(Ordering::SeqCst),
        "queued": l.queued.load(Ordering::SeqCst),
        "served": l.served.load(Ordering::SeqCst),
        "cancelled": l.cancelled.load(Ordering::SeqCst),
    }))
}

fn card(s: &AppState) -> ModelCard {
    ModelCard { id: s.model_id.clone(), object: "model", created: s.created, owned_by: "wgpt" }
}

async fn models(State(s): Shared) -> Json<ModelList> {
    Json(ModelList { object: "list", data: vec![card(&s)] })
}

async fn model(State(s): Shared, Path(id): Path<String>) -> Result<Json<ModelCard>, ApiError> {
    if id == s.model_id {
        Ok(Json(card(&s)))
    } else {
        Err(ApiError::param("model", format!("The model `{id}` does not exist"))
            .with_status(StatusCode::NOT_FOUND)
            .with_code("model_not_found"))
    }
}

/// `max_tokens` or `max_completion_tokens`, at least 1.
fn max_tokens(f: &Fields, default: u32) -> Result<u32, ApiError> {
    let a = f.uint("max_completion_tokens", 1, u32::MAX as u64)?;
    let b = f.uint("max_tokens", 1, u32::MAX as u64)?;
    Ok(a.or(b).map(|n| n as u32).unwrap_or(default))
}

fn too_long(param: &str, prompt: usize, ctx: u32) -> ApiError {
    ApiError::param(
        param,
        format!("This model's maximum context length is {ctx} tokens, but the request has {prompt} prompt tokens"),
    )
    .with_code("context_length_exceeded")
}

fn stream_options(f: &Fields) -> Result<bool, ApiError> {
    match f.0.get("stream_options").filter(|v| !v.is_null()) {
        None => Ok(false),
        Some(o) if o.is_object() => Fields(o).bool("include_usage"),
        Some(_) => Err(ApiError::param("stream_options", "stream_options must be an object")),
    }
}

async fn chat_completions(State(s): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    match chat_inner(s, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(s: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req = parse_body(body)?;
    let f = Fields(&req);
    f.model(&s.model_id)?;
    f.n()?;
    if f.bool("logprobs")? {
        return Err(ApiError::param("logprobs", "logprobs are not supported"));
    }
    let stream = f.bool("stream")?;
    let include_usage = stream_options(&f)?;
    let effort = f.reasoning_effort()?;
    let sampling = f.sampling()?;
    let stop = f.stop()?;
    let max_tokens = max_tokens(&f, u32::MAX)?;
    let conv = Conversation::from_openai_chat(&req, effort, None)?;
    if conv.messages.is_empty() {
        return Err(ApiError::param(
            "messages",
            "messages must contain a user message (system or developer messages alone leave nothing to answer)",
        ));
    }
    let deadline = s.timeout.map(|t| tokio::time::Instant::now() + t);
    // A chat template is code from the model file: it renders on a blocking thread, so that a
    // slow one never holds up the runtime's threads (and with them every other request).
    let engine = s.engine.clone();
    let (prompt, conv) = tokio::task::spawn_blocking(move || engine.render(&conv).map(|p| (p, conv)))
        .await
        .map_err(|_| ApiError::server("rendering the prompt failed"))?
        .map_err(ApiError::from)?;
    if prompt.len() >= s.ctx as usize {
        return Err(too_long("messages", prompt.len(), s.ctx));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    s.scheduler.submit(Job { work: Work::Chat(conv), prompt, max_tokens, sampling, stop, out: tx })?;
    let id = request_id("chatcmpl");
    let created = now();
    if stream {
        Ok(sse(chat_stream(s.model_id.clone(), id, created, include_usage, rx, deadline)))
    } else {
        within(deadline, s.timeout, chat_whole(&s, id, created, rx)).await.map(|c| Json(c).into_response())
    }
}

/// The request's error when its deadline passed.
fn timed_out(timeout: Option<Duration>) -> ApiError {
    let limit = timeout.map(|t| format!(" of {} seconds", t.as_secs_f64())).unwrap_or_default();
    ApiError::server(format!("the request took longer than the server's limit{limit} (--timeout)"))
        .with_status(StatusCode::REQUEST_TIMEOUT)
        .with_code("timeout")
}

/// Runs `work` until `deadline`, if there is one.
async fn within<T>(
    deadline: Option<tokio::time::Instant>,
    timeout: Option<Duration>,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, work).await.unwrap_or_else(|_| Err(timed_out(timeout))),
        None => work.await,
    }
}

/// Collects a whole chat answer.
async fn chat_whole(s: &AppState, id: String, created: u64, mut rx: mpsc::UnboundedReceiver<Out>) -> Result<ChatCompletion, ApiError> {
    let (mut content, mut reasoning, mut calls) = (String::new(), String::new(), Vec::new());
    while let Some(out) = rx.recv().await {
        match out {
            Out::Reasoning(t) => reasoning.push_str(&t),
            Out::Content(t) => content.push_str(&t),
            Out::ToolCall { name, arguments } => calls.push(ToolCall {
                id: request_id("call"),
                kind: "function",
                function: FunctionCall { name, arguments },
            }),
            Out::Error(e) => return Err(e),
            Out::Done { finish_reason, usage } => {
                let message = ChatMessage {
                    role: "assistant",
                    content: if content.is_empty() && !calls.is_empty() { None } else { Some(content) },
                    reasoning_content: if reasoning.is_empty() { None } else { Some(reasoning) },
                    tool_calls: calls,
                };
                return Ok(ChatCompletion {
                    id,
                    object: "chat.completion",
                    created,
                    model: s.model_id.clone(),
                    choices: vec![ChatChoice { index: 0, message, logprobs: None, finish_reason }],
                    usage,
                });
            }
        }
    }
    Err(ApiError::server("the generation ended without a result"))
}

fn data<T: Serialize>(v: &T) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(v).unwrap_or_else(|_| "{}".into()))
}

/// Turns the scheduler's output into SSE events on a task; the task (and with it the request)
/// ends as soon as the client is gone.
fn sse(events: impl FnOnce(mpsc::Sender<SseEvent>) -> tokio::task::JoinHandle<()>) -> Response {
    let (tx, rx) = mpsc::channel::<SseEvent>(64);
    events(tx);
    let stream = tokio_stream::StreamExt::map(ReceiverStream::new(rx), Ok::<_, Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// How long a streamed event may wait for the client to read the ones before it; a client that
/// stops reading for longer is dropped, and its slot freed.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Receives the next output unless the client disconnects or the deadline passes first (then
/// the request's error).
async fn next_out(rx: &mut mpsc::UnboundedReceiver<Out>, tx: &mpsc::Sender<SseEvent>, deadline: Option<tokio::time::Instant>) -> Option<Out> {
    let expiry = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        out = rx.recv() => out,
        _ = tx.closed() => None,
        _ = expiry => Some(Out::Error(timed_out(None))),
    }
}

/// Sends one event, unless the client has gone or stopped reading; false then.
async fn push(tx: &mpsc::Sender<SseEvent>, ev: SseEvent) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, tx.send(ev)).await, Ok(Ok(())))
}

fn chat_stream(
    model: String,
    id: String,
    created: u64,
    include_usage: bool,
    mut rx: mpsc::UnboundedReceiver<Out>,
    deadline: Option<tokio::time::Instant>,
) -> impl FnOnce(mpsc::Sender<SseEvent>) -> tokio::task::JoinHandle<()> {
    move |tx| {
        tokio::spawn(async move {
            let chunk = |delta: Delta, finish_reason: Option<&'static str>, usage: Option<Usage>| ChatChunk {
                id: id.clone(),
                object: "chat.completion.chunk",
                created,
                model: model.clone(),
                choices: if usage.is_some() {
                    vec![]
                } else {
                    vec![ChunkChoice { index: 0, delta, logprobs: None, finish_reason }]
                },
                usage,
            };
            let first = Delta { role: Some("assistant"), content: Some(String::new()), ..Default::default() };
            if !push(&tx, data(&chunk(first, None, None))).await {
                return;
            }
            let mut n_calls = 0;
            while let Some(out) = next_out(&mut rx, &tx, deadline).await {
                let ev = match out {
                    Out::Reasoning(t) => data(&chunk(Delta { reasoning_content: Some(t), ..Default::default() }, None, None)),
                    Out::Content(t) => data(&chunk(Delta { content: Some(t), ..Default::default() }, None, None)),
                    Out::ToolCall { name, arguments } => {
                        let call = ToolCall { id: request_id("call"), kind: "function", function: FunctionCall { name, arguments } };
                        n_calls += 1;
                        let d = Delta { tool_calls: vec![ToolCallDelta { index: n_calls - 1, call }], ..Default::default() };
                        data(&chunk(d, None, None))
                    }
                    Out::Error(e) => {
                        let _ = tx.send(data(&e.body())).await;
                        return;
                    }
                    Out::Done { finish_reason, usage } => {
                        let _ = tx.send(data(&chunk(Delta::default(), Some(finish_reason), None))).await;
                        if include_usage {
                            let _ = tx.send(data(&chunk(Delta::default(), None, Some(usage)))).await;
                        }
                        let _ = tx.send(SseEvent::default().data("[DONE]")).await;
                        return;
                    }
                };
                if !push(&tx, ev).await {
                    return;
                }
            }
        })
    }
}

/// The prompt of `/v1/completions`: a string, a list with one string, or a list of token ids.
fn completion_prompt(s: &AppState, f: &Fields) -> Result<Vec<u32>, ApiError> {
    let bad = || ApiError::param("prompt", "prompt must be a string, a list of one string, or a list of token ids");
    let vocab = s.engine.model.cfg.vocab_size;
    let ids = match f.0.get("prompt") {
        None | Some(Value::Null) => return Err(ApiError::param("prompt", "prompt is required").with_code("missing_required_parameter")),
        Some(Value::String(t)) => s.engine.tokenizer.encode(t)?,
        Some(Value::Array(list)) if list.len() == 1 && list[0].is_string() => {
            s.engine.tokenizer.encode(list[0].as_str().unwrap_or_default())?
        }
        Some(Value::Array(list)) if !list.is_empty() && list.iter().all(Value::is_u64) => list
            .iter()
            .map(|v| v.as_u64().filter(|&t| t < vocab as u64).map(|t| t as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| ApiError::param("prompt", format!("token ids must be below the vocabulary size {vocab}")))?,
        Some(_) => return Err(bad()),
    };
    if ids.is_empty() {
        return Err(ApiError::param("prompt", "the prompt is empty"));
    }
    Ok(ids)
}

async fn completions(State(s): Shared, body: Result<Bytes, BytesRejection>) -> Response {
    match completions_inner(s, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn completions_inner(s: Arc<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req = parse_body(body)?;
    let f = Fields(&req);
    f.model(&s.model_id)?;
    f.n()?;
    if f.0.get("logprobs").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::param("logprobs", "logprobs are not supported"));
    }
    if f.bool("echo")? {
        return Err(ApiError::param("echo", "echo is not supported"));
    }
    let stream = f.bool("stream")?;
    let include_usage = stream_options(&f)?;
    let sampling = f.sampling()?;
    let stop = f.stop()?;
    let deadline = s.timeout.map(|t| tokio::time::Instant::now() + t);
    let prompt = completion_prompt(&s, &f)?;
    if prompt.len() >= s.ctx as usize {
        return Err(too_long("prompt", prompt.len(), s.ctx));
    }
    // OpenAI's default for completions is 16 tokens; never more than the context holds.
    let room = s.ctx as usize - prompt.len();
    let max_tokens = max_tokens(&f, 16)?.min(room as u32);
    let tok = &s.engine.tokenizer;
    let mut stop_ids = s.engine.model.cfg.eos_ids.clone();
    if let crate::chat::ChatFormat::Template { stop, .. } = &s.engine.format {
        stop_ids.extend(stop.iter().filter(|id| !stop_ids.contains(id)).copied().collect::<Vec<_>>());
    }
    for special in ["<|return|>", "<|call|>", "<|endoftext|>"] {
        if let Ok(id) = tok.special(special) {
            if !stop_ids.contains(&id) {
                stop_ids.push(id);
            }
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    s.scheduler.submit(Job { work: Work::Completion { stop_ids }, prompt, max_tokens, sampling, stop, out: tx })?;
    let id = request_id("cmpl");
    let created = now();
    let model = s.model_id.clone();
    let make = move |text: String, finish_reason: Option<&'static str>, usage: Option<Usage>| Completion {
        id: id.clone(),
        object: "text_completion",
        created,
        model: model.clone(),
        choices: if usage.is_some() && finish_reason.is_none() {
            vec![]
        } else {
            vec![CompletionChoice { index: 0, text, logprobs: None, finish_reason }]
        },
        usage,
    };
    if stream {
        let mut rx = rx;
        Ok(sse(move |tx| {
            tokio::spawn(async move {
                while let Some(out) = next_out(&mut rx, &tx, deadline).await {
                    let ev = match out {
                        Out::Content(t) | Out::Reasoning(t) => data(&make(t, None, None)),
                        Out::ToolCall { .. } => continue,
                        Out::Error(e) => {
                            let _ = tx.send(data(&e.body())).await;
                            return;
                        }
                        Out::Done { finish_reason, usage } => {
                            let _ = tx.send(data(&make(String::new(), Some(finish_reason), None))).await;
                            if include_usage {
                                let _ = tx.send(data(&make(String::new(), None, Some(usage)))).await;
                            }
                            let _ = tx.send(SseEvent::default().data("[DONE]")).await;
                            return;
                        }
                    };
                    if !push(&tx, ev).await {
                        return;
                    }
                }
            })
        }))
    } else {
        let mut rx = rx;
        within(deadline, s.timeout, async move {
            let mut text = String::new();
            while let Some(out) = rx.recv().await {
                match out {
                    Out::Content(t) | Out::Reasoning(t) => text.push_str(&t),
                    Out::ToolCall { .. } => {}
                    Out::Error(e) => return Err(e),
                    Out::Done { finish_reason, usage } => return Ok(Json(make(text, Some(finish_reason), Some(usage))).into_response()),
                }
            }
            Err(ApiError::server("the generation ended without a result"))
        })
        .await
    }
}
