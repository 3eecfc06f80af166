//! Records handed to JavaScript, and their TypeScript declarations.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::gpu::Gpu;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface CreateOptions {
  /** Split tensors into storage bindings of at most this many bytes (default: the adapter's limit). */
  maxBindingBytes?: number;
}
export interface AdapterReport {
  name: string; browser: { vendor: string; architecture: string; description: string; isFallback: boolean };
  vendor: number; device: number; backend: string; driver: string; driverInfo: string;
  features: string[];
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeInvocationsPerWorkgroup: number;
            maxStorageBuffersPerShaderStage: number; minStorageBufferOffsetAlignment: number;
            maxComputeWorkgroupsPerDimension: number };
  /** The binding size tensors are split to. */
  maxBindingBytes: number;
}
export interface LoadOptions {
  maxBindingBytes?: number;
  /** Keep downloaded files in Cache Storage (default true; URL sources only). */
  cache?: boolean;
  /** Size of the cached pieces of a file in bytes (default 32 MiB). */
  pieceBytes?: number;
  /** GGUF: bytes asked for first when reading the header (default 1 MiB; grows as needed). */
  headBytes?: number;
  /** How the KV cache stores keys and values: "f32" (default) or "f16" (half the memory). */
  kvCache?: "f32" | "f16";
}
export interface LoadProgress {
  phase: "config" | "weights" | "done" | "warning";
  loaded?: number; total?: number; file?: string; message?: string;
}
export interface ModelReport {
  source: string; files: string[]; bytes: number; bytesFromCache: number; bytesDownloaded: number;
  seconds: number; vocabSize: number; layers: number; hiddenSize: number; experts: number;
  hasTokenizer: boolean; maxBindingBytes: number;
  /** "safetensors" (a model directory) or "gguf" (one file); the model family. */
  format: "safetensors" | "gguf"; architecture: string;
  /** GGUF: the bytes read to parse the header. */
  headerBytes?: number;
}
export interface GenerateOptions {
  maxTokens?: number; greedy?: boolean; temperature?: number; topK?: number; topP?: number; minP?: number;
  repetitionPenalty?: number; presencePenalty?: number; frequencyPenalty?: number; penaltyLastN?: number;
  seed?: number; stop?: number[];
}
export interface ChatMessage { role: "user" | "assistant" | "system" | "developer" | "tool"; content: string; channel?: string }
export interface ChatRequest extends GenerateOptions {
  messages: ChatMessage[];
  reasoningEffort?: "low" | "medium" | "high";
  instructions?: string;
}
export interface ChatUsage {
  promptTokens: number; cachedTokens: number; generatedTokens: number; timeToFirstToken: number;
  decodeSeconds: number; tokensPerSecond: number; prefillTokensPerSecond: number;
  finish: "stop" | "length" | "aborted";
}
export type ChatEvent =
  | { type: "delta"; channel: "analysis" | "final" | "commentary" | string; text: string }
  | { type: "toolCall"; recipient: string; arguments: string }
  | { type: "warning"; message: string }
  | { type: "usage"; usage: ChatUsage };
export interface CacheInfo {
  bytes: number; usage: number | null; quota: number | null; persisted: boolean | null;
  files: { url: string; size: number | null; cachedBytes: number }[];
}
"#;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    max_storage_buffer_binding_size: u64,
    max_buffer_size: u64,
    max_compute_invocations_per_workgroup: u32,
    max_storage_buffers_per_shader_stage: u32,
    min_storage_buffer_offset_alignment: u32,
    max_compute_workgroups_per_dimension: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterReport {
    name: String,
    browser: BrowserAdapter,
    vendor: u32,
    device: u32,
    backend: String,
    driver: String,
    driver_info: String,
    features: Vec<String>,
    limits: Limits,
    max_binding_bytes: u64,
}

/// The browser's own description of the adapter.
#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct BrowserAdapter {
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub is_fallback: bool,
}

pub fn adapter_report(gpu: &Gpu, browser: &BrowserAdapter) -> AdapterReport {
    let l = &gpu.limits;
    let name = [&gpu.info.name, &browser.description, &format!("{} {}", browser.vendor, browser.architecture)]
        .into_iter()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "WebGPU adapter".into());
    AdapterReport {
        name,
        browser: browser.clone(),
        vendor: gpu.info.vendor,
        device: gpu.info.device,
        backend: format!("{:?}", gpu.info.backend),
        driver: gpu.info.driver.clone(),
        driver_info: gpu.info.driver_info.clone(),
        features: gpu.features.iter_names().map(|(n, _)| n.to_string()).collect(),
        limits: Limits {
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_buffer_size: l.max_buffer_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            min_storage_buffer_offset_alignment: l.min_storage_buffer_offset_alignment,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        },
        max_binding_bytes: gpu.max_binding,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelReport {
    pub source: String,
    pub files: Vec<String>,
    pub bytes: u64,
    pub bytes_from_cache: u64,
    pub bytes_downloaded: u64,
    pub seconds: f64,
    pub vocab_size: u32,
    pub layers: u32,
    pub hidden_size: u32,
    pub experts: u32,
    pub has_tokenizer: bool,
    pub max_binding_bytes: u64,
    pub format: &'static str,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_bytes: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatUsage {
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    pub time_to_first_token: f64,
    pub decode_seconds: f64,
    pub tokens_per_second: f64,
    pub prefill_tokens_per_second: f64,
    pub finish: &'static str,
}
