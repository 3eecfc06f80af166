//! The `wgpt` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use wgpt::gpu::{list_adapters, Gpu, GpuOptions};
use wgpt::engine::Engine;
use wgpt::models::{KvCache, Model, Output, Want, DEFAULT_CHUNK, DEFAULT_CTX};

mod cli;

#[derive(Parser)]
#[command(name = "wgpt", version, about = "Run gpt-oss and other LLMs on any GPU through WebGPU")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Model directory (config.json + model.safetensors or index + shards), or a Hugging Face repo id.
    #[arg(long)]
    model: String,
    /// KV-cache context in tokens.
    #[arg(long, default_value_t = DEFAULT_CTX, value_parser = clap::value_parser!(u32).range(1..))]
    ctx: u32,
    /// Prompt tokens per prefill pass.
    #[arg(long, default_value_t = DEFAULT_CHUNK, value_parser = clap::value_parser!(u32).range(1..))]
    chunk: u32,
    /// How the KV cache stores keys and values: f32, or f16 (half the memory and attention reads).
    #[arg(long, default_value = "f32")]
    kv_cache: KvCache,
}

const DEFAULT_MODEL: &str = wgpt::hub::DEFAULT_MODEL;

/// Context and chunking of `run` and `chat`.
#[derive(clap::Args)]
struct PlaceArgs {
    /// KV-cache context in tokens.
    #[arg(long, default_value_t = DEFAULT_CTX, value_parser = clap::value_parser!(u32).range(1..))]
    ctx: u32,
    /// Prompt tokens per prefill pass.
    #[arg(long, default_value_t = DEFAULT_CHUNK, value_parser = clap::value_parser!(u32).range(1..))]
    chunk: u32,
    /// How the KV cache stores keys and values: f32, or f16 (half the memory and attention reads).
    #[arg(long, default_value = "f32")]
    kv_cache: KvCache,
}

#[derive(Subcommand)]
enum Cmd {
    /// List GPU adapters with their features and limits.
    Info,
    /// Prefill and decode speed, bytes per token and the bandwidth roofline (like llama-bench).
    Bench(cli::bench::BenchArgs),
    /// One forward pass over the tokens; writes float32 logits [n_tokens, vocab] as .npy.
    Logits {
        #[command(flatten)]
        model: ModelArgs,
        /// Comma-separated token ids.
        #[arg(long)]
        tokens: String,
        /// Output file (little-endian float32, C order).
        #[arg(long)]
        npy: PathBuf,
    },
    /// Decode after the given token ids through the KV cache (--greedy, or the sampling flags).
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        /// Comma-separated prompt token ids.
        #[arg(long)]
        tokens: String,
        #[arg(long, default_value_t = 128)]
        max_tokens: u32,
        #[command(flatten)]
        sampling: cli::chat::SamplingArgs,
        /// Print the generated ids space-separated on one line (for raw-id tools); without it they
        /// are printed as a JSON array, like `wgpt tokenize`.
        #[arg(long)]
        ids: bool,
        /// Stop early at an end-of-sequence id of config.json (by default exactly
        /// --max-tokens ids are generated, as raw-id tools expect).
        #[arg(long)]
        stop_at_eos: bool,
    },
    /// Ask one question; the answer streams to stdout.
    Run {
        /// [MODEL] PROMPT: MODEL is a directory or a Hugging Face repo id (default openai/gpt-oss-20b).
        #[arg(num_args = 1..=2, required = true, value_names = ["MODEL", "PROMPT"])]
        args: Vec<String>,
        #[command(flatten)]
        place: PlaceArgs,
        #[command(flatten)]
        chat: cli::chat::ChatArgs,
    },
    /// Interactive multi-turn chat.
    Chat {
        /// A directory or a Hugging Face repo id.
        #[arg(default_value = DEFAULT_MODEL)]
        model: String,
        #[command(flatten)]
        place: PlaceArgs,
        #[command(flatten)]
        chat: cli::chat::ChatArgs,
    },
    /// OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health.
    Serve {
        /// A directory or a Hugging Face repo id.
        #[arg(default_value = DEFAULT_MODEL)]
        model: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Requests generated at the same time, each with its own KV cache.
        #[arg(long, default_value_t = 4, value_parser = at_least_one)]
        parallel: usize,
        /// Requests that may wait when every slot is busy (more are refused with 503).
        #[arg(long, default_value_t = 256)]
        queue: usize,
        /// Model name clients use (default: the repo id, or the directory's name).
        #[arg(long)]
        model_name: Option<String>,
        /// Largest accepted request body in bytes.
        #[arg(long, default_value_t = 4 << 20, value_parser = at_least_one)]
        max_body_bytes: usize,
        /// Longest time a request may take in seconds, waiting in the queue included (none by default).
        #[arg(long, value_parser = seconds)]
        timeout: Option<f64>,
        /// Browser origins allowed to call the server, comma-separated (`*` for any); loopback
        /// origins and the server's own are always allowed, others get 403.
        #[arg(long, value_delimiter = ',')]
        allowed_origins: Vec<String>,
        /// Connections served at once; more are answered 503 and closed.
        #[arg(long, default_value_t = 256, value_parser = at_least_one)]
        max_connections: usize,
        /// Seconds a client has to send a request's headers, and then its body.
        #[arg(long, default_value_t = 10.0, value_parser = seconds)]
        header_timeout: f64,
        /// Seconds a connection may sit without traffic while no request is being handled.
        #[arg(long, default_value_t = 60.0, value_parser = seconds)]
        idle_timeout: f64,
        #[command(flatten)]
        place: PlaceArgs,
    },
    /// The prompt token ids of an OpenAI-style chat request, rendered in the harmony format.
    Render {
        /// JSON file with {"messages": [...], "tools": [...]} (chat-completions format).
        #[arg(long)]
        messages: PathBuf,
        #[arg(long, default_value = "medium")]
        reasoning: String,
        /// Current date for the system message (YYYY-MM-DD); none by default.
        #[arg(long)]
        date: Option<String>,
    },
    /// Serve the browser page and a model (directory or .gguf file) on 127.0.0.1 (build the page with web/build.sh).
    Web {
        /// A model directory, a .gguf file, or a Hugging Face repo id (downloaded first).
        #[arg(long)]
        model: String,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// The page's folder (default: web/ of this source tree).
        #[arg(long)]
        web_dir: Option<PathBuf>,
    },
    /// Token ids of the text on stdin, as a JSON array (ordinary text: no control tokens).
    Tokenize {
        /// tokenizer.json (or .json.gz); gpt-oss's o200k_harmony when omitted.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Each stdin line is a JSON string; print one JSON array per line.
        #[arg(long)]
        jsonl: bool,
    },
}

/// A count of at least 1 (`--parallel 0` would serve nothing).
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A positive, finite number of seconds (at most a day).
fn seconds(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86400.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a number of seconds between 0 and 86400")),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Info => info(),
        Cmd::Bench(args) => cli::bench::bench(&args, gpu, load),
        Cmd::Tokenize { tokenizer, jsonl } => cli::text::tokenize(tokenizer.as_deref(), jsonl),
        Cmd::Render { messages, reasoning, date } => cli::text::render(&messages, &reasoning, date),
        Cmd::Web { model, port, web_dir } => cli::web::serve(&resolve(&model)?, port, web_dir.as_deref()),
        Cmd::Run { args, place, chat } => {
            let (model, prompt) = match args.as_slice() {
                [prompt] => (DEFAULT_MODEL.to_string(), prompt.clone()),
                [model, prompt] => (model.clone(), prompt.clone()),
                _ => bail!("usage: wgpt run [MODEL] PROMPT"),
            };
            let prompt = if prompt == "-" { read_stdin()? } else { prompt };
            chat.sampling.params()?;
            let engine = load_engine(&model)?.with_kv_cache(place.kv_cache);
            cli::chat::run(&engine, place.ctx, place.chunk, &prompt, &chat)
        }
        Cmd::Chat { model, place, chat } => {
            chat.sampling.params()?;
            let engine = load_engine(&model)?.with_kv_cache(place.kv_cache);
            cli::chat::chat(&engine, place.ctx, place.chunk, &chat)
        }
        Cmd::Serve {
            model,
            host,
            port,
            parallel,
            queue,
            model_name,
            max_body_bytes,
            timeout,
            allowed_origins,
            max_connections,
            header_timeout,
            idle_timeout,
            place,
        } => {
            let model_id = model_name.unwrap_or_else(|| served_name(&model));
            let engine = load_engine(&model)?.with_kv_cache(place.kv_cache);
            let opts = wgpt::serve::ServeOptions {
                host,
                port,
                model_id,
                parallel,
                ctx: place.ctx,
                chunk: place.chunk,
                max_queue: queue,
                max_body_bytes,
                timeout: timeout.map(Duration::from_secs_f64),
                allowed_origins: allowed_origins.into_iter().map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
                limits: wgpt::serve::conn::ConnLimits {
                    max_connections,
                    header_timeout: Duration::from_secs_f64(header_timeout),
                    idle_timeout: Duration::from_secs_f64(idle_timeout),
                    // The body gets the header time again, at least 30 seconds.
                    body_timeout: Duration::from_secs_f64(header_timeout.max(30.0)),
                },
            };
            wgpt::serve::serve(engine, &opts, |addr| {
                eprintln!("serving {} on http://{addr}/v1 ({} slots of {} tokens)", opts.model_id, opts.parallel, opts.ctx);
            })?;
            Ok(())
        }
        Cmd::Logits { model, tokens, npy } => {
            let tokens = parse_tokens(&tokens)?;
            let m = load(&model.model)?;
            let mut session = m.session_with(model.ctx, model.chunk, model.kv_cache)?;
            let t0 = Instant::now();
            let Output::Logits(logits) = pollster::block_on(session.forward(&tokens, Want::AllLogits))? else {
                bail!("internal: expected logits");
            };
            eprintln!("{} tokens in {:.2}s", tokens.len(), t0.elapsed().as_secs_f64());
            write_npy(&npy, &logits, tokens.len() as u64, m.cfg.vocab_size as u64)
        }
        Cmd::Generate { model, tokens, max_tokens, sampling, ids, stop_at_eos } => {
            let tokens = parse_tokens(&tokens)?;
            let params = sampling.params()?;
            let needed = tokens.len() as u64 + max_tokens as u64;
            if needed > model.ctx as u64 {
                bail!("{} prompt tokens + {max_tokens} new tokens exceed the context of {} (raise --ctx)", tokens.len(), model.ctx);
            }
            let m = load(&model.model)?;
            let stop = if stop_at_eos { m.cfg.eos_ids.clone() } else { vec![] };
            let mut session = m.session_with(model.ctx, model.chunk, model.kv_cache)?;
            let opts = wgpt::engine::GenerateOptions { max_tokens, sampling: params, stop };
            let mut out = Vec::new();
            let never = std::sync::atomic::AtomicBool::new(false);
            let (stats, _) = pollster::block_on(wgpt::engine::generate(&mut session, &tokens, &opts, &never, &mut |id| {
                out.push(id);
                Ok(true)
            }))?;
            if ids {
                println!("{}", out.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" "));
            } else {
                println!("{}", serde_json::to_string(&out)?);
            }
            eprintln!(
                "prefill {} tokens in {:.3}s ({:.1} tok/s); decode {} tokens at {:.1} tok/s",
                stats.prompt_tokens,
                stats.time_to_first_token.as_secs_f64(),
                stats.prefill_tok_s(),
                stats.generated,
                stats.decode_tok_s(),
            );
            Ok(())
        }
    }
}

/// The model name of a spec: a repo id as given, a directory by its last component.
fn served_name(spec: &str) -> String {
    let path = Path::new(spec);
    if path.is_dir() {
        if let Some(name) = path.canonicalize().ok().as_deref().and_then(Path::file_name) {
            return name.to_string_lossy().into_owned();
        }
    }
    spec.to_string()
}

fn parse_tokens(s: &str) -> Result<Vec<u32>> {
    let ids: Result<Vec<u32>> = s
        .split(',')
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<u32>().with_context(|| format!("--tokens: {t:?} is not a token id")))
        .collect();
    let ids = ids?;
    if ids.is_empty() {
        bail!("--tokens: no token ids given");
    }
    Ok(ids)
}

fn gpu() -> Result<Arc<Gpu>> {
    let opts = GpuOptions::from_env()?;
    Ok(Arc::new(pollster::block_on(Gpu::new(&opts))?))
}

fn read_stdin() -> Result<String> {
    use std::io::Read;
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("reading the prompt from stdin")?;
    Ok(s)
}

/// A local directory as is, or a Hugging Face repo id downloaded into the HF cache.
fn resolve(spec: &str) -> Result<PathBuf> {
    let mut progress = cli::progress::download_bars();
    Ok(wgpt::hub::resolve_model(spec, &mut progress)?)
}

fn load_engine(spec: &str) -> Result<Engine> {
    load_with_bar(spec, |gpu, dir, progress| Engine::load(gpu, dir, progress), |e| e.model.cfg.num_hidden_layers)
}

fn load(spec: &str) -> Result<std::sync::Arc<Model>> {
    load_with_bar(spec, |gpu, dir, progress| Model::load(gpu, dir, progress), |m| m.cfg.num_hidden_layers)
}

/// Resolves the model, loads it with a progress bar on stderr, and reports where it went.
fn load_with_bar<T>(
    spec: &str,
    load: impl FnOnce(Arc<Gpu>, &Path, &mut dyn FnMut(u64, u64)) -> wgpt::Result<T>,
    layers: impl Fn(&T) -> u32,
) -> Result<T> {
    let dir = resolve(spec)?;
    let gpu = gpu()?;
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("loading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template"),
    );
    let loaded = load(gpu.clone(), &dir, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let loaded = loaded?;
    eprintln!(
        "loaded {} ({} layers) on {} ({:?}) in {:.2}s",
        dir.display(),
        layers(&loaded),
        gpu.info.name,
        gpu.info.backend,
        t0.elapsed().as_secs_f64()
    );
    Ok(loaded)
}

/// Writes a C-order little-endian float32 .npy (format 1.0). The header is a Python dict
/// literal padded so the data starts on a 64-byte boundary.
fn write_npy(path: &Path, data: &[f32], rows: u64, cols: u64) -> Result<()> {
    use std::io::Write;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let write = |w: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        w.flush()
    };
    write(&mut w).with_context(|| format!("{}", path.display()))
}

fn info() -> Result<()> {
    let opts = GpuOptions::from_env()?;
    let adapters = pollster::block_on(list_adapters(&opts))?;
    if adapters.is_empty() {
        bail!("no GPU adapters found (on Linux without a GPU, install mesa-vulkan-drivers for lavapipe)");
    }
    for (i, a) in adapters.iter().enumerate() {
        let l = &a.limits;
        println!("adapter {i}: {} ({:?}, {:?})", a.info.name, a.info.backend, a.info.device_type);
        println!("  driver: {} {}", a.info.driver, a.info.driver_info);
        let f = |feat: wgpu::Features| if a.features.contains(feat) { "yes" } else { "no" };
        println!(
            "  features: shader-f16 {}, subgroups {}, timestamp-query {}",
            f(wgpu::Features::SHADER_F16),
            f(wgpu::Features::SUBGROUP),
            f(wgpu::Features::TIMESTAMP_QUERY)
        );
        println!("  subgroup size: {}..{}", a.info.subgroup_min_size, a.info.subgroup_max_size);
        println!(
            "  limits: max_buffer_size {}, max_storage_buffer_binding_size {}, max_storage_buffers_per_shader_stage {}",
            l.max_buffer_size, l.max_storage_buffer_binding_size, l.max_storage_buffers_per_shader_stage
        );
        println!(
            "          max_compute_invocations_per_workgroup {}, max_compute_workgroup_storage_size {}, max_compute_workgroups_per_dimension {}, min_storage_buffer_offset_alignment {}",
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size,
            l.max_compute_workgroups_per_dimension,
            l.min_storage_buffer_offset_alignment
        );
    }
    if let Ok(g) = pollster::block_on(Gpu::new(&opts)) {
        println!("selected: {} ({:?}); tensors split at {} bytes per binding", g.info.name, g.info.backend, g.max_binding);
        println!("kernels use: {} (WGPT_FEATURES=none forces the portable paths)", g.shader.name());
    }
    Ok(())
}
