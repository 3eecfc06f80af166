//! JSON schemas of tool parameters as the TypeScript-like types openai-harmony shows the model.
//! Properties are rendered in the order of their JSON keys, which relies on `serde_json`'s
//! `preserve_order` feature.

use serde_json::Value;

use crate::chat::str_field;

fn has_enum(v: &Value) -> bool {
    v.get("enum").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn is_nullable(v: &Value) -> bool {
    v.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}

/// A default value as shown in a comment: strings quoted unless the schema is an enum (and, with
/// `json_enum`, enum strings shown as JSON), other values as compact JSON.
fn default_text(default: &Value, schema: &Value, json_enum: bool) -> String {
    match default.as_str() {
        Some(s) if !has_enum(schema) => format!("\"{s}\""),
        Some(s) if !json_enum => s.to_string(),
        _ => default.to_string(),
    }
}

fn with_null(ty: String, schema: &Value) -> String {
    if is_nullable(schema) && !ty.contains("null") {
        format!("{ty} | null")
    } else {
        ty
    }
}

/// TypeScript-like type of a JSON schema, as openai-harmony renders tool parameters.
pub fn typescript(schema: &Value, indent: &str) -> String {
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let mut out = String::new();
        for v in variants {
            out.push_str(&format!("\n{indent} | "));
            out.push_str(&with_null(typescript(v, &format!("{indent}   ")), v));
            let mut notes = Vec::new();
            if let Some(d) = str_field(v, "description") {
                notes.push(d.to_string());
            }
            if let Some(d) = v.get("default") {
                notes.push(format!("default: {}", default_text(d, v, true)));
            }
            if !notes.is_empty() {
                out.push_str(&format!(" // {}", notes.join(" ")));
            }
        }
        return out;
    }
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let names: Vec<&str> =
            types.iter().filter_map(Value::as_str).map(|t| if t == "integer" { "number" } else { t }).collect();
        return if names.is_empty() { "any".into() } else { names.join(" | ") };
    }
    match str_field(schema, "type") {
        Some("object") => object_typescript(schema, indent),
        Some("string") => {
            let values: Vec<String> = schema
                .get("enum")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(|s| format!("\"{s}\"")).collect())
                .unwrap_or_default();
            if values.is_empty() {
                "string".into()
            } else {
                values.join(" | ")
            }
        }
        Some("number") | Some("integer") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => match schema.get("items") {
            Some(items) => format!("{}[]", typescript(items, indent)),
            None => "Array<any>".into(),
        },
        _ => "any".into(),
    }
}

fn object_typescript(schema: &Value, indent: &str) -> String {
    let mut out = String::new();
    if let Some(d) = str_field(schema, "description") {
        out.push_str(&format!("{indent}// {d}\n"));
    }
    out.push_str("{\n");
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = schema.get("properties").and_then(Value::as_object);
    for (key, prop) in props.into_iter().flatten() {
        let optional = if required.contains(&key.as_str()) { "" } else { "?" };
        if let Some(title) = str_field(prop, "title") {
            out.push_str(&format!("{indent}// {title}\n{indent}//\n"));
        }
        let has_one_of = prop.get("oneOf").is_some();
        let desc = str_field(prop, "description");
        if let (false, Some(d)) = (has_one_of, desc) {
            out.push_str(&format!("{indent}// {d}\n"));
        }
        if let Some(examples) = prop.get("examples").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            out.push_str(&format!("{indent}// Examples:\n"));
            for ex in examples.iter().filter_map(Value::as_str) {
                out.push_str(&format!("{indent}// - \"{ex}\"\n"));
            }
        }
        if let Some(variants) = prop.get("oneOf").and_then(Value::as_array) {
            // The property's description goes above it unless the first variant repeats it.
            let first_desc = variants.first().and_then(|v| str_field(v, "description"));
            let desc_above = desc.is_some() && desc != first_desc;
            if let (true, Some(d)) = (desc_above, desc) {
                out.push_str(&format!("{indent}// {d}\n"));
            }
            if let Some(d) = prop.get("default") {
                out.push_str(&format!("{indent}// default: {}\n", default_text(d, prop, false)));
            }
            out.push_str(&format!("{indent}{key}{optional}:\n"));
            for (i, v) in variants.iter().enumerate() {
                out.push_str(&format!("{indent} | "));
                out.push_str(&with_null(typescript(v, &format!("{indent}   ")), v));
                let mut notes = Vec::new();
                if !(i == 0 && desc_above) {
                    if let Some(d) = str_field(v, "description").filter(|d| Some(*d) != desc) {
                        notes.push(d.to_string());
                    }
                }
                if let Some(d) = v.get("default") {
                    notes.push(format!("default: {}", default_text(d, v, false)));
                }
                if !notes.is_empty() {
                    out.push_str(&format!(" // {}", notes.join(" ")));
                }
                out.push('\n');
            }
            out.push_str(&format!("{indent},\n"));
            continue;
        }
        out.push_str(&format!("{indent}{key}{optional}: "));
        out.push_str(&with_null(typescript(prop, &format!("{indent}    ")), prop));
        out.push(',');
        if let (false, Some(d)) = (has_one_of, prop.get("default")) {
            out.push_str(&format!(" // default: {}", default_text(d, prop, false)));
        }
        out.push('\n');
    }
    out.push_str(&format!("{indent}}}"));
    out
}
