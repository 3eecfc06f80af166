//! Tokenizers built from the `tokenizer.ggml.*` metadata of a GGUF file, tokenizing the way
//! llama.cpp does:
//! - `gpt2`: byte-level BPE with the file's merges, the text first split by the regexes that
//!   llama.cpp picks for `tokenizer.ggml.pre`;
//! - `llama`: SentencePiece BPE with byte fallback, merges derived from the pieces and their
//!   scores (a pair merges when the joined piece exists; higher score first), spaces as `▁`, a
//!   space put before the text and after every special token when `add_space_prefix`.
//!
//! Control (3), unknown (2) and user-defined (4) tokens become added tokens: user-defined ones
//! are matched in any text (as llama.cpp does), control ones only by `encode_with_special`.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The tokenizer fields of a GGUF file, as plain data.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "gpt2" or "llama".
    pub model: String,
    /// `tokenizer.ggml.pre` (gpt2 only).
    #[serde(default)]
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; empty means all normal.
    #[serde(default)]
    pub token_types: Vec<i32>,
    /// "left right" pairs, highest priority first (gpt2).
    #[serde(default)]
    pub merges: Vec<String>,
    /// One per token (llama); empty means all zero.
    #[serde(default)]
    pub scores: Vec<f32>,
    #[serde(default)]
    pub bos: Option<u32>,
    #[serde(default)]
    pub eos: Option<u32>,
    #[serde(default)]
    pub unk: Option<u32>,
    #[serde(default)]
    pub add_bos: bool,
    /// `tokenizer.ggml.add_space_prefix` (llama; absent means true).
    #[serde(default)]
    pub add_space_prefix: Option<bool>,
}

pub const TYPE_NORMAL: i32 = 1;
pub const TYPE_UNKNOWN: i32 = 2;
pub const TYPE_CONTROL: i32 = 3;
pub const TYPE_USER_DEFINED: i32 = 4;
pub const TYPE_UNUSED: i32 = 5;
pub const TYPE_BYTE: i32 = 6;

/// Token texts that end generation (llama.cpp's list; it treats them as control tokens whatever
/// their type). The FIM pad/repo/separator tokens end generation too.
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
    // FIM pad / repo / file separator
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// The end-of-generation ids among `tokens` by name, plus `eos`. As llama.cpp does, `<|end|>`
/// does not end generation when `<|return|>` and `<|call|>` exist (harmony), nor when
/// `<|flush|>` and `<|calls|>` do.
pub(crate) fn eog_ids<'a>(tokens: impl Iterator<Item = (&'a str, u32)>, eos: Option<u32>) -> Vec<u32> {
    let mut found: Vec<(&str, u32)> = tokens.filter(|(t, _)| EOG_NAMES.contains(t)).collect();
    let has = |found: &[(&str, u32)], name: &str| found.iter().any(|(t, _)| *t == name);
    if (has(&found, "<|return|>") && has(&found, "<|call|>")) || (has(&found, "<|flush|>") && has(&found, "<|calls|>"))
    {
        found.retain(|(t, _)| *t != "<|end|>");
    }
    let mut ids: Vec<u32> = found.into_iter().map(|(_, id)| id).chain(eos).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What `Tokenizer` keeps besides the `tokenizers` pipeline.
pub(crate) struct Built {
    pub tokenizer: tokenizers::Tokenizer,
    /// Bytes each id decodes to (llama.cpp's `token_to_piece` with special tokens shown).
    pub pieces: Vec<Box<[u8]>>,
    pub eog: Vec<u32>,
    /// Texts and ids of the control and unknown tokens (and tokens named like an end of turn).
    pub specials: Vec<(String, u32)>,
}

/// llama.cpp's `add_bos` when the file has no `tokenizer.ggml.add_bos_token`.
pub fn default_add_bos(model: &str, pre: Option<&str>) -> bool {
    match model {
        "llama" => true,
        "gpt2" => matches!(
            pre.unwrap_or(""),
            "llama3"
                | "llama-v3"
                | "llama-bpe"
                | "falcon3"
                | "falcon-h1"
                | "pixtral"
                | "midm-2.0"
                | "lfm2"
                | "tekken"
                | "chameleon"
        ),
        _ => false,
    }
}

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const DEEPSEEK_V3_WORDS: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
// Characters that Unicode normalization would change are escaped.
const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

/// The split regexes (applied in order, each match and each gap between matches becoming a
/// piece) and whether a piece that is itself a token skips the merges, for a `pre` value, as
/// in llama.cpp's `llama-vocab.cpp`.
fn pre_tokenizer(pre: Option<&str>) -> Result<(Vec<&'static str>, bool)> {
    let Some(pre) = pre else {
        // No `tokenizer.ggml.pre`: llama.cpp's "default".
        return pre_tokenizer(Some("default"));
    };
    Ok(match pre {
        "default" => (vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"], false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" => {
            (vec![LLAMA3], true)
        }
        "dbrx" | "smaug-bpe" | "glm4" | "chatglm-bpe" => (vec![LLAMA3], false),
        "deepseek-llm" => (
            vec![
                r"[\r\n]",
                DEEPSEEK_LLM_LETTERS,
                r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
                r"\s+$",
                r"[一-龥ࠀ-一가-퟿]+",
                r"\p{N}+",
            ],
            false,
        ),
        "deepseek-coder" => (vec![r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"], false),
        "deepseek-v3" => (vec![r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK_V3_WORDS], false),
        "falcon" => (vec![r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"], false),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => {
            (vec![r"\p{N}", GPT2], false)
        }
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum"
        | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion"
        | "granite-docling" | "exaone4" => (vec![GPT2], false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "stablelm2" | "hunyuan" | "megrez" | "solar-open" => {
            (vec![QWEN2], false)
        }
        "qwen35" => (vec![QWEN35], false),
        "poro-chat" | "bloom" | "gpt3-finnish" => (vec![r" ?[^(\s|.,!?…。，、।۔،)]+"], false),
        "tekken" => (vec![TEKKEN], true),
        "gpt-4o" | "llama4" | "kanana2" | "minimax-m2" => (vec![GPT4O], false),
        "chameleon" => (
            vec![
                "<sentinel:[0-9]+>",
                "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                r"([\t\n]|    |  )",
                r"\p{N}",
                r"[\p{P}!-/:-@\[-`{-~]",
                GPT2,
            ],
            false,
        ),
        "seed-coder" => (vec![SEED_CODER], false),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => (vec![BAILINGMOE], false),
        "grok-2" => (vec![QWEN2], false),
        other => {
            return Err(Error::Tokenizer(format!("unsupported pre-tokenizer type '{other}' (tokenizer.ggml.pre)")))
        }
    })
}

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others map to
/// U+0100 onwards.
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap()
        } else {
            let c = char::from_u32(next).unwrap();
            next += 1;
            c
        };
    }
    table
}

fn token_type(v: &GgufVocab, id: usize) -> i32 {
    v.token_types.get(id).copied().unwrap_or(TYPE_NORMAL)
}

/// Control and unknown tokens, and tokens named like an end of turn (llama.cpp makes those
/// control tokens whatever their type).
fn is_special(v: &GgufVocab, id: usize, text: &str) -> bool {
    let ty = token_type(v, id);
    ty == TYPE_CONTROL || ty == TYPE_UNKNOWN || EOG_NAMES.contains(&text)
}

/// Tokens matched before the model runs: control and unknown ones are special (placed by id, or
/// recognised by `encode_with_special`); user-defined ones are matched in all text.
fn added_tokens(v: &GgufVocab, texts: &[String]) -> Vec<Value> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(id, text)| {
            let special = is_special(v, id, text);
            if !special && token_type(v, id) != TYPE_USER_DEFINED {
                return None;
            }
            Some(json!({
                "id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": special,
            }))
        })
        .collect()
}

fn check(v: &GgufVocab) -> Result<Vec<String>> {
    let n = v.tokens.len();
    if n == 0 {
        return Err(Error::Tokenizer("the GGUF vocabulary is empty".into()));
    }
    if !v.token_types.is_empty() && v.token_types.len() < n {
        return Err(Error::Tokenizer(format!(
            "{} token types for {n} tokens (tokenizer.ggml.token_type)",
            v.token_types.len()
        )));
    }
    if !v.scores.is_empty() && v.scores.len() < n {
        return Err(Error::Tokenizer(format!("{} scores for {n} tokens (tokenizer.ggml.scores)", v.scores.len())));
    }
    for (name, id) in [("bos", v.bos), ("eos", v.eos), ("unk", v.unk)] {
        if let Some(id) = id {
            if id as usize >= n {
                return Err(Error::Tokenizer(format!("{name} token id {id} is outside the vocabulary of {n}")));
            }
        }
    }
    if v.add_bos && v.bos.is_none() {
        return Err(Error::Tokenizer("add_bos_token is set but the file has no bos_token_id".into()));
    }
    // llama.cpp names empty tokens this way so that every id has a distinct text.
    let texts: Vec<String> = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() })
        .collect();
    let mut seen = std::collections::HashMap::with_capacity(n);
    for (i, t) in texts.iter().enumerate() {
        if let Some(first) = seen.insert(t.as_str(), i) {
            return Err(Error::Tokenizer(format!("duplicate token {t:?} in the vocabulary (ids {first} and {i})")));
        }
    }
    Ok(texts)
}

fn vocab_map(texts: &[String]) -> Map<String, Value> {
    texts.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect()
}

pub(crate) fn build(v: &GgufVocab) -> Result<Built> {
    let texts = check(v)?;
    let (json, pieces) = match v.model.as_str() {
        "gpt2" => gpt2(v, &texts)?,
        "llama" => llama(v, &texts)?,
        other => {
            return Err(Error::Tokenizer(format!(
                "unsupported tokenizer model '{other}' (tokenizer.ggml.model; gpt2 and llama are supported)"
            )))
        }
    };
    let mut tokenizer: tokenizers::Tokenizer =
        serde_json::from_value(json).map_err(|e| Error::Tokenizer(format!("building the GGUF tokenizer: {e}")))?;
    tokenizer.set_encode_special_tokens(true);
    let eog = eog_ids(texts.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)), v.eos);
    let specials = texts
        .iter()
        .enumerate()
        .filter(|&(id, t)| is_special(v, id, t))
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    Ok(Built { tokenizer, pieces, eog, specials })
}

fn gpt2(v: &GgufVocab, texts: &[String]) -> Result<(Value, Vec<Box<[u8]>>)> {
    let (regexes, ignore_merges) = pre_tokenizer(v.pre.as_deref())?;
    let index: std::collections::HashMap<&str, usize> =
        texts.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut merges = Vec::with_capacity(v.merges.len());
    for (rank, m) in v.merges.iter().enumerate() {
        // Split at the first space after the first character, as llama.cpp does (so a merge may
        // start with a space).
        let pos = m.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(i, _)| i);
        let Some(pos) = pos else {
            return Err(Error::Tokenizer(format!("merge {rank} ({m:?}) is not two tokens separated by a space")));
        };
        let (a, b) = (&m[..pos], &m[pos + 1..]);
        // A merge of or into a string that is no token can never apply in llama.cpp either:
        // such merges are left out (the others keep their order).
        if !index.contains_key(a) || !index.contains_key(b) || !index.contains_key(format!("{a}{b}").as_str()) {
            continue;
        }
        merges.push(json!([a, b]));
    }
    let mut pre: Vec<Value> = regexes
        .iter()
        .map(|r| json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false}))
        .collect();
    pre.push(json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}));

    // Decoding (llama.cpp's `token_to_piece`): ordinary tokens are byte-level text, unused ones
    // show nothing, the others are shown as written.
    let chars = byte_chars();
    let char_byte: std::collections::HashMap<char, u8> = (0..=255u8).map(|b| (chars[b as usize], b)).collect();
    let pieces = texts
        .iter()
        .enumerate()
        .map(|(id, t)| {
            let ty = token_type(v, id);
            if ty == TYPE_UNUSED {
                return Box::default();
            }
            if ty == TYPE_NORMAL || ty == TYPE_BYTE {
                if let Some(bytes) = t.chars().map(|c| char_byte.get(&c).copied()).collect::<Option<Vec<u8>>>() {
                    return bytes.into_boxed_slice();
                }
            }
            t.as_bytes().into()
        })
        .collect();

    let json = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens(v, texts),
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": ignore_merges, "vocab": vocab_map(texts), "merges": merges,
        },
    });
    Ok((json, pieces))
}

/// `<0xNN>` → NN.
fn byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

fn llama(v: &GgufVocab, texts: &[String]) -> Result<(Value, Vec<Box<[u8]>>)> {
    let score = |id: usize| v.scores.get(id).copied().unwrap_or(0.0);
    let index: std::collections::HashMap<&str, usize> =
        texts.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();

    // SentencePiece BPE joins the adjacent pair whose joined piece has the highest score. As a
    // ranked merge list: every split of every piece into two pieces, by the joined piece's score
    // (then piece id, then the ids of the halves). Control, unused and byte tokens are never
    // formed from text.
    let mut merges: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (id, t) in texts.iter().enumerate() {
        let ty = token_type(v, id);
        if ty == TYPE_CONTROL || ty == TYPE_UNUSED || ty == TYPE_BYTE || ty == TYPE_UNKNOWN {
            continue;
        }
        for (pos, _) in t.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (index.get(&t[..pos]), index.get(&t[pos..])) {
                merges.push((score(id), id, l, r));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2, a.3).cmp(&(b.1, b.2, b.3))));
    let merges: Vec<Value> = merges.iter().map(|&(_, _, l, r)| json!([texts[l], texts[r]])).collect();

    let unk = v.unk.map(|id| texts[id as usize].clone());
    let space_prefix = v.add_space_prefix.unwrap_or(true);
    let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
    let normalizer = if space_prefix {
        json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, replace]})
    } else {
        replace
    };
    let pieces = texts
        .iter()
        .enumerate()
        .map(|(id, t)| {
            let ty = token_type(v, id);
            if ty == TYPE_BYTE {
                if let Some(b) = byte_token(t) {
                    return vec![b].into_boxed_slice();
                }
            }
            if ty == TYPE_UNUSED {
                return Box::default();
            }
            if ty == TYPE_NORMAL {
                return t.replace('▁', " ").into_bytes().into_boxed_slice();
            }
            t.as_bytes().into()
        })
        .collect();
    let json = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens(v, texts),
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
        ]},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
            "ignore_merges": false, "vocab": vocab_map(texts), "merges": merges,
        },
    });
    Ok((json, pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_chars();
        let set: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
    }

    #[test]
    fn every_known_pre_tokenizer_regex_compiles() {
        for pre in [
            "default",
            "llama-bpe",
            "dbrx",
            "deepseek-llm",
            "deepseek-coder",
            "deepseek-v3",
            "falcon",
            "smollm",
            "gpt-2",
            "qwen2",
            "qwen35",
            "bloom",
            "tekken",
            "gpt-4o",
            "chameleon",
            "seed-coder",
            "bailingmoe",
        ] {
            let (regexes, _) = pre_tokenizer(Some(pre)).unwrap();
            for r in regexes {
                tokenizers::pre_tokenizers::split::Split::new(
                    tokenizers::pre_tokenizers::split::SplitPattern::Regex(r.to_string()),
                    tokenizers::SplitDelimiterBehavior::Isolated,
                    false,
                )
                .unwrap_or_else(|e| panic!("{pre}: {r}: {e}"));
            }
        }
        let err = pre_tokenizer(Some("no-such-pre")).unwrap_err().to_string();
        assert!(err.contains("no-such-pre"), "{err}");
    }

    #[test]
    fn eog_drops_end_for_harmony() {
        let toks = [("<|end|>", 5), ("<|return|>", 6), ("<|call|>", 7), ("a", 8)];
        assert_eq!(eog_ids(toks.iter().copied(), None), vec![6, 7]);
        let toks = [("<|end|>", 5), ("<|im_end|>", 6), ("a", 8)];
        assert_eq!(eog_ids(toks.iter().copied(), Some(8)), vec![5, 6, 8]);
    }
}
