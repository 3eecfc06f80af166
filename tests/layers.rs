//! The library's top-level modules form layers: each imports only modules of lower layers. The
//! test reads `src/**/*.rs` (the `wgpt` binary, `main.rs` and `cli/`, sits on top and is left
//! out), collects every `crate::X` and `super::…::X` path per top-level module, and fails on an
//! import cycle or on a module that reaches up (or sideways, within its own layer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. Modules of one layer do not import each other.
///
/// - `error`: the error type everything returns.
/// - `gpu`: device, buffers, pipelines, command recording.
/// - `sampling`: sampling parameters and the CPU sampler (the GPU sampler in `ops` reads them).
/// - `ops`: one function per WGSL kernel, and the CPU references.
/// - `loader`: checkpoint files (safetensors, GGUF), file-type detection, the upload stream.
/// - `hub`, `tokenizer`: model downloads (native), text to ids and back.
/// - `models`: weights on the GPU, sessions, the forward pass.
/// - `chat`: chat formats (harmony, templates), conversations, OpenAI request conversion.
/// - `engine`, `bench`: a model with its tokenizer and format (generation, chat turns); speed
///   measurements of a model.
/// - `serve`, `web`: the OpenAI-compatible server (native) and the browser module (wasm).
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["gpu"],
    &["sampling"],
    &["ops"],
    &["loader"],
    &["hub", "tokenizer"],
    &["models"],
    &["chat"],
    &["engine", "bench"],
    &["serve", "web"],
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments (doc links name modules without importing them) and
/// without string literals.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' && !(text[..i].ends_with('\'') || text[..i].ends_with("'\\")) {
            // A raw string `r#"…"#` ends at `"` and as many `#` as it began with; an ordinary
            // one at an unescaped `"`.
            let hashes = text[..i].bytes().rev().take_while(|&c| c == b'#').count();
            let raw = text[..i - hashes].ends_with('r');
            let hashes = if raw { hashes } else { 0 };
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += 1;
            while i < b.len() {
                if b[i] == b'\\' && !raw {
                    i += 2;
                    continue;
                }
                if b[i..].starts_with(&close) {
                    break;
                }
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Top-level modules named by `crate::X`, `crate::{X, Y::…}` and by `super::` paths that climb
/// to the crate root, in the code of a file whose module path is `module` (e.g. `["chat",
/// "harmony", "parse"]`).
fn imports(code: &str, module: &[String], top: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut take = |name: &str| {
        // `crate::Result` and `crate::Error` are re-exports of `error`.
        let name = if name == "Result" || name == "Error" { "error" } else { name };
        if top.contains(name) {
            found.insert(name.to_string());
        }
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code.as_bytes()[at - 1] == b'$' {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            for item in body.split(',') {
                take(ident_at(item.trim()));
            }
        } else {
            take(ident_at(rest));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if at >= "super::".len() && code[..at].ends_with("super::") {
            continue; // counted from the first `super::` of the chain
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        // A test module inside a file climbs one level less than counted here; paths that only
        // reach the crate root that way name the file's own items, not top-level modules.
        if up >= module.len() {
            take(ident_at(rest));
        }
    }
    found
}

/// Every top-level module of the library with the top-level modules it imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let module_path = |file: &Path| -> Vec<String> {
        let rel = file.strip_prefix(&src).unwrap();
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let last = parts.pop().unwrap();
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
        parts
    };
    let library: Vec<(PathBuf, Vec<String>)> = files
        .iter()
        .map(|f| (f.clone(), module_path(f)))
        .filter(|(_, m)| !m.is_empty() && m[0] != "lib" && m[0] != "main" && m[0] != "cli")
        .collect();
    let top: BTreeSet<String> = library.iter().map(|(_, m)| m[0].clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = top.iter().map(|t| (t.clone(), BTreeSet::new())).collect();
    for (file, module) in &library {
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        let used = imports(&code, module, &top);
        graph.get_mut(&module[0]).unwrap().extend(used.into_iter().filter(|u| *u != module[0]));
    }
    graph
}

/// A cycle of the graph, if it has one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_no_cycle() {
    let graph = import_graph();
    assert!(graph.len() >= 10, "expected the library's modules under src/, found {:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn each_layer_imports_only_lower_layers() {
    let graph = import_graph();
    let layer_of = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(mine) = layer_of(module) else {
            wrong.push(format!("{module} is in no layer: add it to LAYERS"));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(theirs) if theirs < mine => {}
                Some(theirs) => wrong.push(format!("{module} (layer {mine}) imports {u} (layer {theirs})")),
                None => wrong.push(format!("{u} is in no layer: add it to LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_reader_sees_every_form_of_path() {
    let top: BTreeSet<String> = ["chat", "engine", "error", "models", "loader"].iter().map(|s| s.to_string()).collect();
    let code = code_only(
        "use crate::{models::Model, loader};\n\
         // crate::engine is only mentioned\n\
         let s = \"crate::engine\";\n\
         fn f() -> crate::Result<()> { super::super::chat::x() }",
    );
    let module = vec!["serve".to_string(), "routes".to_string()];
    let found: Vec<String> = imports(&code, &module, &top).into_iter().collect();
    assert_eq!(found, ["chat", "error", "loader", "models"]);
    // One `super::` from `serve::routes` stays inside `serve`.
    assert!(imports("super::chat::x()", &module, &top).is_empty());
}
