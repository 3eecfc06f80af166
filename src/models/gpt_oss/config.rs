//! The `config.json` of a gpt-oss checkpoint in the Hugging Face layout, read into the runtime
//! hyperparameters ([`Config`]). Only this reader knows the file's field names and the values it
//! must hold for the published layout (model type, MXFP4 experts, untied embeddings, YaRN).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::config::{Arch, Config, Yarn};

#[derive(Deserialize)]
struct RopeScaling {
    #[serde(default)]
    rope_type: Option<String>,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    beta_fast: Option<f64>,
    #[serde(default)]
    beta_slow: Option<f64>,
    #[serde(default)]
    original_max_position_embeddings: Option<u64>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    attention_factor: Option<f64>,
    #[serde(default)]
    rope_theta: Option<f64>,
}

#[derive(Deserialize)]
struct QuantizationConfig {
    quant_method: String,
}

/// The fields of `config.json` this runtime reads (others are ignored, as transformers does).
#[derive(Deserialize)]
struct HubConfig {
    vocab_size: u32,
    hidden_size: u32,
    intermediate_size: u32,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    num_key_value_heads: u32,
    head_dim: u32,
    num_local_experts: u32,
    #[serde(default)]
    num_experts_per_tok: u32,
    /// OpenAI's name for `num_experts_per_tok`; the hub config carries both.
    #[serde(default)]
    experts_per_token: Option<u32>,
    sliding_window: u32,
    #[serde(default)]
    layer_types: Option<Vec<String>>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f32,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default, alias = "rope_parameters")]
    rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: u32,
    #[serde(default = "default_limit")]
    swiglu_limit: f32,
    #[serde(default = "default_alpha")]
    swiglu_alpha: f32,
    #[serde(default)]
    quantization_config: Option<QuantizationConfig>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    eos_token_id: Option<serde_json::Value>,
}

/// The JSON type of every field that is read, checked before the configuration is decoded, so
/// that a wrong one is an error naming the field (serde's own names only the expected type).
fn check_types(raw: &serde_json::Value) -> Result<()> {
    use serde_json::Value;
    const COUNTS: &[&str] = &[
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "num_local_experts",
        "num_experts_per_tok",
        "experts_per_token",
        "sliding_window",
        "max_position_embeddings",
    ];
    const NUMBERS: &[&str] = &["rms_norm_eps", "rope_theta", "swiglu_limit", "swiglu_alpha"];
    const SCALING_NUMBERS: &[&str] = &["factor", "beta_fast", "beta_slow", "attention_factor", "rope_theta"];
    let Some(obj) = raw.as_object() else {
        return Err(Error::Config("the configuration must be a JSON object".into()));
    };
    let bad = |k: &str, what: &str, v: &Value| {
        Err(Error::ConfigField { field: k.to_string(), message: format!("must be {what}, not {}", short_json(v)) })
    };
    let count = |v: &Value| v.as_u64().is_some_and(|n| n <= u32::MAX as u64);
    for k in COUNTS {
        match obj.get(*k) {
            None => {}
            Some(v) if count(v) => {}
            // Optional counts may be null.
            Some(Value::Null) if *k == "experts_per_token" => {}
            Some(v) => return bad(k, "a non-negative integer (at most 4294967295)", v),
        }
    }
    for k in NUMBERS {
        match obj.get(*k) {
            None | Some(Value::Number(_)) => {}
            Some(v) => return bad(k, "a number", v),
        }
    }
    match obj.get("tie_word_embeddings") {
        None | Some(Value::Bool(_)) => {}
        Some(v) => return bad("tie_word_embeddings", "true or false", v),
    }
    match obj.get("layer_types") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(v) => return bad("layer_types", "a list of strings", v),
    }
    for k in ["rope_scaling", "rope_parameters"] {
        match obj.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Object(rs)) => {
                for f in SCALING_NUMBERS {
                    match rs.get(*f) {
                        None | Some(Value::Null) | Some(Value::Number(_)) => {}
                        Some(v) => return bad(&format!("{k}.{f}"), "a number", v),
                    }
                }
                match rs.get("original_max_position_embeddings") {
                    None | Some(Value::Null) => {}
                    Some(v) if v.as_u64().is_some() => {}
                    Some(v) => return bad(&format!("{k}.original_max_position_embeddings"), "a non-negative integer", v),
                }
                match rs.get("rope_type").or_else(|| rs.get("type")) {
                    None | Some(Value::Null) | Some(Value::String(_)) => {}
                    Some(v) => return bad(&format!("{k}.rope_type"), "a string", v),
                }
            }
            Some(v) => return bad(k, "an object", v),
        }
    }
    match obj.get("quantization_config") {
        None | Some(Value::Null) => {}
        Some(Value::Object(q)) if q.get("quant_method").is_some_and(Value::is_string) => {}
        Some(v) => return bad("quantization_config", "an object with a quant_method string", v),
    }
    Ok(())
}

/// A JSON value for an error message, cut short.
fn short_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn default_eps() -> f32 {
    1e-5
}
fn default_theta() -> f64 {
    150000.0
}
fn default_max_pos() -> u32 {
    131072
}
fn default_limit() -> f32 {
    7.0
}
fn default_alpha() -> f32 {
    1.702
}

/// Reads `dir/config.json`; errors name the file.
#[cfg(not(target_arch = "wasm32"))]
pub fn from_dir(dir: &std::path::Path) -> Result<Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    from_json(&text).map_err(|e| match e {
        Error::Config(m) => Error::checkpoint(&path, m),
        Error::ConfigField { field, message } => Error::checkpoint(&path, format!("{field} {message}")),
        other => other,
    })
}

/// The runtime configuration of a gpt-oss `config.json`'s text, validated.
pub fn from_json(text: &str) -> Result<Config> {
    let bad = |m: String| Err(Error::Config(m));
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Config(format!("not valid JSON: {e}")))?;
    let model_type = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    if model_type != "gpt_oss" {
        return bad(format!("model_type is {model_type:?}; this loader reads gpt-oss checkpoints (model_type \"gpt_oss\")"));
    }
    check_types(&raw)?;
    let hub: HubConfig = serde_json::from_value(raw).map_err(|e| Error::Config(e.to_string()))?;
    let experts_per_tok = match (hub.num_experts_per_tok, hub.experts_per_token) {
        (0, Some(k)) => k,
        (n, Some(k)) if n != k => return bad(format!("num_experts_per_tok {n} disagrees with experts_per_token {k}")),
        (n, _) => n,
    };
    match hub.quantization_config.as_ref().map(|q| q.quant_method.as_str()) {
        Some("mxfp4") => {}
        Some(other) => return bad(format!("quantization method {other:?} is not supported (expected mxfp4)")),
        None => {
            return bad("experts without quantization_config (dequantized bf16 experts) are not supported; use the published MXFP4 checkpoint".into())
        }
    }
    if hub.tie_word_embeddings {
        return bad("tie_word_embeddings=true is not a gpt-oss layout".into());
    }
    let sliding_layers = match &hub.layer_types {
        None => None,
        Some(types) => Some(
            types
                .iter()
                .map(|t| match t.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => Err(Error::Config(format!("unknown layer type {other:?}"))),
                })
                .collect::<Result<Vec<bool>>>()?,
        ),
    };
    let mut rope_theta = hub.rope_theta;
    let rope_scaling = match hub.rope_scaling {
        None => None,
        Some(rs) => {
            match rs.rope_type.as_deref() {
                Some("yarn") | None => {}
                Some(other) => return bad(format!("rope_scaling type {other:?} is not supported (expected yarn)")),
            }
            // Without a factor the frequencies are unscaled (transformers' default rope), with
            // the block's base when it names one.
            if rs.factor.is_none() {
                rope_theta = rs.rope_theta.unwrap_or(rope_theta);
            }
            rs.factor.map(|factor| Yarn {
                factor,
                beta_fast: rs.beta_fast,
                beta_slow: rs.beta_slow,
                original_max_position_embeddings: rs.original_max_position_embeddings,
                truncate: rs.truncate.unwrap_or(true),
                attention_factor: rs.attention_factor,
                rope_theta: rs.rope_theta,
            })
        }
    };
    let eos_ids = match &hub.eos_token_id {
        None | Some(serde_json::Value::Null) => vec![],
        Some(serde_json::Value::Array(a)) => a.iter().map(token_id).collect::<Result<_>>()?,
        Some(v) => vec![token_id(v)?],
    };
    let cfg = Config {
        arch: Arch::GptOss,
        rope_interleaved: false,
        vocab_size: hub.vocab_size,
        hidden_size: hub.hidden_size,
        intermediate_size: hub.intermediate_size,
        num_hidden_layers: hub.num_hidden_layers,
        num_attention_heads: hub.num_attention_heads,
        num_key_value_heads: hub.num_key_value_heads,
        head_dim: hub.head_dim,
        num_local_experts: hub.num_local_experts,
        num_experts_per_tok: experts_per_tok,
        sliding_window: hub.sliding_window,
        sliding_layers,
        rms_norm_eps: hub.rms_norm_eps,
        rope_theta,
        rope_scaling,
        max_position_embeddings: hub.max_position_embeddings,
        swiglu_limit: hub.swiglu_limit,
        swiglu_alpha: hub.swiglu_alpha,
        tie_word_embeddings: false,
        eos_ids,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// One id of `eos_token_id`: a non-negative integer.
fn token_id(v: &serde_json::Value) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::ConfigField { field: "eos_token_id".into(), message: format!("{v}: expected a token id or a list of token ids") })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"model_type":"gpt_oss","vocab_size":512,"hidden_size":64,"intermediate_size":64,
        "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,
        "num_local_experts":4,"num_experts_per_tok":2,"sliding_window":8,
        "quantization_config":{"quant_method":"mxfp4"}}"#;

    fn with(key: &str, value: serde_json::Value) -> String {
        let mut v: serde_json::Value = serde_json::from_str(TINY).unwrap();
        v[key] = value;
        v.to_string()
    }

    #[test]
    fn a_bad_value_names_its_field() {
        assert!(from_json(TINY).is_ok());
        for (key, value) in [
            ("num_hidden_layers", serde_json::json!(2147483647u32)),
            ("rms_norm_eps", serde_json::json!(1e30)),
            ("eos_token_id", serde_json::json!("200002")),
            ("hidden_size", serde_json::json!("64")),
        ] {
            match from_json(&with(key, value.clone())) {
                Err(Error::ConfigField { field, .. }) => assert_eq!(field, key, "{value}"),
                other => panic!("{key} = {value}: {other:?}"),
            }
        }
    }
}
