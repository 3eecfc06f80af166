//! One way onto the GPU for every model file, on every platform:
//!
//! 1. [`ModelHeader`]: what the files say before any weight is read — the format, the runtime
//!    configuration and where every tensor lies (safetensors headers, or a GGUF header).
//! 2. [`Upload::plan`]: every tensor checked against the configuration (name, type, shape), the
//!    weights' buffers allocated and each byte range of each file mapped to its GPU destination.
//! 3. [`Upload::feed`]: the files' bytes in file order — from a memory map natively
//!    ([`MappedModel`]), from `fetch()` or a `File` in the browser — written as they arrive.
//! 4. [`Upload::finish`]: every file arrived whole, the queue has run; the [`Model`].

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::loader::gguf::Gguf;
use crate::loader::stream::StreamPlan;
use crate::loader::Header;

use super::config::Config;
use super::rope::Rope;
use super::weights::Weights;
use super::{gguf, gpt_oss, Model};

/// A model's files as their headers describe them, before any weight is read.
pub enum ModelHeader {
    /// A gpt-oss checkpoint in the Hugging Face layout: its `config.json` and the headers of its
    /// safetensors files (one, or the shards of an index).
    Safetensors { cfg: Config, header: Header },
    /// One GGUF file: its metadata and tensor table, and the configuration read from them.
    Gguf { cfg: Config, gguf: Box<Gguf> },
}

impl ModelHeader {
    /// A GGUF file's header, with the configuration its metadata gives.
    pub fn gguf(g: Gguf) -> Result<ModelHeader> {
        let cfg = gguf::config(&g)?;
        Ok(ModelHeader::Gguf { cfg, gguf: Box::new(g) })
    }

    pub fn config(&self) -> &Config {
        match self {
            ModelHeader::Safetensors { cfg, .. } | ModelHeader::Gguf { cfg, .. } => cfg,
        }
    }

    /// The files whose bytes [`Upload::feed`] takes, in feed order, with their sizes.
    pub fn files(&self) -> Vec<(String, u64)> {
        match self {
            ModelHeader::Safetensors { header, .. } => header.files.iter().map(|f| (f.name.clone(), f.size)).collect(),
            ModelHeader::Gguf { gguf, .. } => vec![(gguf.file.clone(), gguf.file_size)],
        }
    }

    /// `"safetensors"` or `"gguf"`.
    pub fn format(&self) -> &'static str {
        match self {
            ModelHeader::Safetensors { .. } => "safetensors",
            ModelHeader::Gguf { .. } => "gguf",
        }
    }
}

/// What a format's planner returns: the weights' buffers (not yet written), where every file
/// byte goes, and the RoPE frequencies (GGUF files may scale them by a tensor of the file, which
/// is read back once it has arrived).
pub(crate) struct Planned {
    pub weights: Weights,
    pub plan: StreamPlan,
    pub rope: Rope,
    pub freq_factors: Option<wgpu::Buffer>,
}

/// An upload in progress: the weights' buffers are allocated, and file bytes fed in file order
/// are written into them.
pub struct Upload {
    cfg: Config,
    planned: Planned,
}

impl Upload {
    /// Validates every tensor the configuration needs, allocates the weights' buffers and plans
    /// where each byte of each file goes.
    pub fn plan(gpu: &Gpu, header: &ModelHeader) -> Result<Upload> {
        let planned = match header {
            ModelHeader::Safetensors { cfg, header } => gpt_oss::checkpoint::plan(gpu, cfg, header)?,
            ModelHeader::Gguf { cfg, gguf } => gguf::plan(gpu, cfg, gguf)?,
        };
        Ok(Upload { cfg: header.config().clone(), planned })
    }

    /// Bytes of the files fed so far, and in all.
    pub fn progress(&self) -> (u64, u64) {
        self.planned.plan.progress()
    }

    /// Feeds the next bytes of file `file` (an index into [`ModelHeader::files`]), which must start
    /// where the previous chunk of that file ended.
    pub fn feed(&mut self, gpu: &Gpu, file: usize, bytes: &[u8]) -> Result<()> {
        self.planned.plan.feed(gpu, file, bytes)
    }

    /// Feeds whole files held in memory (memory maps), in pieces, letting the queue drain now and
    /// then so host staging memory stays bounded.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn feed_all(&mut self, gpu: &Gpu, files: &[&[u8]], progress: super::weights::Progress) -> Result<()> {
        self.planned.plan.feed_all(gpu, files, progress)
    }

    /// Checks that every file arrived whole, waits until the queue has written the buffers (so the
    /// device's errors, such as running out of memory, have arrived) and returns the model.
    pub async fn finish(self, gpu: Arc<Gpu>) -> Result<Arc<Model>> {
        let Planned { weights, plan, mut rope, freq_factors } = self.planned;
        plan.finish(&gpu)?;
        if let Some(buf) = &freq_factors {
            let factors: Vec<f32> = bytemuck::pod_collect_to_vec(&gpu.read(buf, 0, buf.size()).await?);
            rope.divide_by("rope_freqs.weight", &factors)?;
        }
        let probe = gpu.storage("probe", 4);
        gpu.read(&probe, 0, 4).await?;
        gpu.take_error().map_err(|e| match e {
            Error::OutOfMemory(m) => Error::OutOfMemory(format!("the model does not fit this adapter: {m}")),
            other => other,
        })?;
        Ok(Model::from_parts(gpu, self.cfg, weights, rope))
    }
}

/// A model's files memory-mapped: a gpt-oss checkpoint directory or a GGUF file.
#[cfg(not(target_arch = "wasm32"))]
pub struct MappedModel {
    pub header: ModelHeader,
    /// Every file of the header, in feed order.
    maps: Vec<memmap2::Mmap>,
}

#[cfg(not(target_arch = "wasm32"))]
impl MappedModel {
    /// Reads the headers of the model at `path` (a `.gguf` file, or a directory with
    /// `config.json` and safetensors files) and maps its files.
    pub fn open(path: &std::path::Path) -> Result<MappedModel> {
        if crate::loader::is_gguf(path) {
            let (g, map) = Gguf::open(path)?;
            return Ok(MappedModel { header: ModelHeader::gguf(g)?, maps: vec![map] });
        }
        let cfg_path = path.join("config.json");
        if path.is_dir() && !cfg_path.exists() {
            return Err(Error::checkpoint(&cfg_path, "missing: a model directory needs config.json, safetensors weights and tokenizer.json"));
        }
        let cfg = super::gpt_oss::config::from_dir(path)?;
        let (header, maps) = crate::loader::Checkpoint::open(path)?.into_parts();
        Ok(MappedModel { header: ModelHeader::Safetensors { cfg, header }, maps })
    }

    /// The whole bytes of every file, in feed order.
    pub fn files(&self) -> Vec<&[u8]> {
        self.maps.iter().map(|m| &m[..]).collect()
    }

    /// Plans, feeds and finishes the upload of the mapped files.
    pub fn load(&self, gpu: Arc<Gpu>, progress: super::weights::Progress) -> Result<Arc<Model>> {
        let mut up = Upload::plan(&gpu, &self.header)?;
        up.feed_all(&gpu, &self.files(), progress)?;
        pollster::block_on(up.finish(gpu))
    }
}
