//! The OpenAI API's JSON: request fields (read with their exact parameter names, so a bad value
//! is reported against the right `param`), responses, stream chunks and errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::chat::ReasoningEffort;
use crate::sampling::SamplingParams;

/// An error answered as `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 invalid_request_error about one parameter.
    pub fn param(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.to_string()),
            code: Some("invalid_value"),
        }
    }

    /// 400 invalid_request_error about the request as a whole.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), kind: "invalid_request_error", param: None, code: None }
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// An error of the library as the OpenAI error a client expects, by its variant: a bad field
    /// names it as `param`, a full context is `context_length_exceeded`, other bad input is a
    /// 400, failures of the device or the files are 500s.
    pub fn from_error(e: &crate::Error) -> ApiError {
        use crate::Error as E;
        match e {
            E::Request { param, message } => ApiError::param(param, message.clone()),
            E::ContextFull { message, .. } => ApiError::invalid(message.clone()).with_code("context_length_exceeded"),
            E::Input(m) | E::Tokenizer(m) | E::Config(m) => ApiError::invalid(m.clone()),
            E::ConfigField { .. } => ApiError::invalid(e.to_string()),
            E::Io { .. }
            | E::Checkpoint { .. }
            | E::Tensor { .. }
            | E::Download(_)
            | E::NoAdapter(_)
            | E::Gpu(_)
            | E::DeviceLost(_)
            | E::OutOfMemory(_)
            | E::Startup(_) => ApiError::server(e.to_string()),
        }
    }

    pub fn body(&self) -> Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// Reads the request's fields by their OpenAI names, checking types and ranges.
pub struct Fields<'a>(pub &'a Value);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn f32_in(&self, key: &str, lo: f32, hi: f32) -> Result<Option<f32>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x >= lo as f64 && x <= hi as f64 => Ok(Some(x as f32)),
                Some(x) => Err(ApiError::param(key, format!("{key} = {x} is out of range: expected a number in [{lo}, {hi}]"))),
                None => Err(ApiError::param(key, format!("{key} must be a number"))),
            },
        }
    }

    pub fn uint(&self, key: &str, lo: u64, hi: u64) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(x) if x >= lo && x <= hi => Ok(Some(x)),
                _ => Err(ApiError::param(key, format!("{key} = {v} is out of range: expected an integer in [{lo}, {hi}]"))),
            },
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| ApiError::param(key, format!("{key} must be an integer"))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::param(key, format!("{key} must be true or false"))),
        }
    }

    pub fn str(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::param(key, format!("{key} must be a string"))),
        }
    }

    /// `stop`: a string or a list of up to 4 non-empty strings.
    pub fn stop(&self) -> Result<Vec<String>, ApiError> {
        let bad = || ApiError::param("stop", "stop must be a non-empty string or a list of at most 4 non-empty strings");
        match self.get("stop") {
            None => Ok(Vec::new()),
            Some(Value::String(s)) if !s.is_empty() => Ok(vec![s.clone()]),
            Some(Value::Array(list)) if list.len() <= 4 => list
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(bad))
                .collect(),
            Some(_) => Err(bad()),
        }
    }

    /// The requested model; it must be the one this server runs.
    pub fn model(&self, served: &str) -> Result<(), ApiError> {
        match self.str("model")? {
            None => Err(ApiError::param("model", "model is required").with_code("missing_required_parameter")),
            Some(m) if m == served => Ok(()),
            Some(m) => Err(ApiError {
                status: StatusCode::NOT_FOUND,
                message: format!("The model `{m}` does not exist: this server runs `{served}` (see GET /v1/models)"),
                kind: "invalid_request_error",
                param: Some("model".into()),
                code: Some("model_not_found"),
            }),
        }
    }

    /// Only one choice per request is generated.
    pub fn n(&self) -> Result<(), ApiError> {
        match self.uint("n", 1, 1) {
            Ok(_) => Ok(()),
            Err(_) => Err(ApiError::param("n", "n must be 1 (one choice per request)")),
        }
    }

    pub fn reasoning_effort(&self) -> Result<ReasoningEffort, ApiError> {
        match self.str("reasoning_effort")? {
            None | Some("medium") => Ok(ReasoningEffort::Medium),
            Some("low") | Some("minimal") => Ok(ReasoningEffort::Low),
            Some("high") => Ok(ReasoningEffort::High),
            Some(other) => Err(ApiError::param(
                "reasoning_effort",
                format!("reasoning_effort {other:?} is not one of low, medium, high"),
            )),
        }
    }

    /// Sampling settings: `temperature` [0, 2] (1 by default), `top_p` [0, 1] (0 means greedy),
    /// `presence_penalty` and `frequency_penalty` [-2, 2], `seed` (random when absent), and the
    /// common extensions `top_k`, `min_p`, `repetition_penalty`.
    pub fn sampling(&self) -> Result<SamplingParams, ApiError> {
        let mut p = SamplingParams::default();
        if let Some(t) = self.f32_in("temperature", 0.0, 2.0)? {
            p.temperature = t;
        }
        if let Some(t) = self.f32_in("top_p", 0.0, 1.0)? {
            if t == 0.0 {
                p.top_k = 1;
            } else {
                p.top_p = t;
            }
        }
        if let Some(k) = self.uint("top_k", 0, u32::MAX as u64)? {
            p.top_k = k as u32;
        }
        if let Some(m) = self.f32_in("min_p", 0.0, 1.0)? {
            p.min_p = m;
        }
        if let Some(r) = self.f32_in("repetition_penalty", 0.01, 100.0)? {
            p.repetition_penalty = r;
        }
        if let Some(x) = self.f32_in("presence_penalty", -2.0, 2.0)? {
            p.presence_penalty = x;
        }
        if let Some(x) = self.f32_in("frequency_penalty", -2.0, 2.0)? {
            p.frequency_penalty = x;
        }
        p.seed = match self.int("seed")? {
            Some(s) => s as u64,
            None => {
                use std::hash::{BuildHasher, RandomState};
                RandomState::new().hash_one(std::time::SystemTime::now())
            }
        };
        p.validate().map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(p)
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: usize,
}

/// Token counts of a request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
}

impl Usage {
    pub fn new(prompt: usize, completion: usize, cached: usize) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: cached },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall,
}

/// A tool call inside a stream chunk: the whole call arrives in one delta.
#[derive(Clone, Debug, Serialize)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(flatten)]
    pub call: ToolCall,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: Option<String>,
    /// The analysis channel, as vLLM and Ollama report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: ChatMessage,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: Delta,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        ApiError::from_error(&e)
    }
}
