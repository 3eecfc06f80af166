//! The GPU device: adapter choice, features and limits, buffers, pipelines and dispatches.
//! Nothing here knows about models. Async inside so the same code serves wasm32; native
//! callers block with pollster at the edge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

pub mod kernels;
pub mod recorder;
pub mod slices;
pub use kernels::{specialize, Kernel, KernelParams, ParamField, ParamScalar, ParamType, ShaderFeatures};
pub use recorder::{DispatchCache, Profiler, RecordStats, Recorder, Timing};
pub use slices::{plan_slices, stacked_parts, PartRows, RowSlice};

/// How to pick and configure a device.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter name (`WGPT_ADAPTER`).
    pub adapter: Option<String>,
    /// Backend list such as "vulkan", "metal", "dx12", "gl" (`WGPT_BACKEND`).
    pub backend: Option<String>,
    /// Lower the storage-binding limit used for splitting tensors (`WGPT_MAX_BINDING_BYTES`).
    pub max_binding_bytes: Option<u64>,
    /// The optional shader features kernels may use at most (`WGPT_FEATURES`); None: all the
    /// device has. `Some(ShaderFeatures::NONE)` forces the portable paths.
    pub features: Option<ShaderFeatures>,
}

impl GpuOptions {
    /// Options from `WGPT_ADAPTER`, `WGPT_BACKEND` and `WGPT_MAX_BINDING_BYTES`.
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let max_binding_bytes = match var("WGPT_MAX_BINDING_BYTES") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().ok().filter(|&n| n >= 256).ok_or_else(|| {
                Error::Input(format!("WGPT_MAX_BINDING_BYTES={v}: expected a byte count of at least 256"))
            })?),
        };
        let features = var("WGPT_FEATURES").map(|v| ShaderFeatures::parse(&v)).transpose()?;
        Ok(GpuOptions { adapter: var("WGPT_ADAPTER"), backend: var("WGPT_BACKEND"), max_binding_bytes, features })
    }

    fn backends(&self) -> Result<wgpu::Backends> {
        match &self.backend {
            None => Ok(wgpu::Backends::all()),
            Some(s) => {
                let b = wgpu::Backends::from_comma_list(s);
                if b.is_empty() {
                    Err(Error::Input(format!("WGPT_BACKEND={s}: expected vulkan, metal, dx12, gl or webgpu")))
                } else {
                    Ok(b)
                }
            }
        }
    }
}

/// Description of one adapter, for `wgpt info`.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
}

/// Lists every adapter the instance can see for the chosen backends.
pub async fn list_adapters(opts: &GpuOptions) -> Result<Vec<AdapterReport>> {
    let instance = make_instance(opts)?;
    let adapters = instance.enumerate_adapters(opts.backends()?).await;
    Ok(adapters
        .into_iter()
        .map(|a| AdapterReport { info: a.get_info(), features: a.features(), limits: a.limits() })
        .collect())
}

fn make_instance(opts: &GpuOptions) -> Result<wgpu::Instance> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = opts.backends()?;
    Ok(wgpu::Instance::new(desc))
}

/// A device with what the kernels need to know about it.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// Largest storage binding used for one slice of a tensor (adapter limit, maybe lowered).
    pub max_binding: u64,
    /// The optional shader features the kernels use on this device (see `kernels::specialize`).
    pub shader: ShaderFeatures,
    /// Bound where a kernel's optional input (a bias) is absent.
    pub dummy: wgpu::Buffer,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<&'static str, Arc<wgpu::ComputePipeline>>>,
    errors: Arc<Mutex<Option<Error>>>,
    /// Bytes of every buffer created through this `Gpu` (buffers are never resized).
    allocated: std::sync::atomic::AtomicU64,
}

impl Gpu {
    /// Creates a device on the adapter chosen by `opts`, with the adapter's full limits.
    pub async fn new(opts: &GpuOptions) -> Result<Gpu> {
        let instance = make_instance(opts)?;
        let adapter = match &opts.adapter {
            Some(want) => {
                let needle = want.to_lowercase();
                let all = instance.enumerate_adapters(opts.backends()?).await;
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                all.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&needle)).ok_or_else(|| {
                    Error::NoAdapter(format!("WGPT_ADAPTER={want} matches none of: {}", names.join(", ")))
                })?
            }
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                })
                .await
                .map_err(|e| {
                    Error::NoAdapter(format!(
                        "{e}. Install a Vulkan, Metal or DX12 driver (on Linux without a GPU: mesa-vulkan-drivers)"
                    ))
                })?,
        };
        let shader = opts.features.unwrap_or(ShaderFeatures::ALL);
        let wanted = shader.wgpu_features() | wgpu::Features::TIMESTAMP_QUERY;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpt"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", adapter.get_info().name)))?;
        Ok(Gpu::from_device(device, queue, adapter.get_info(), opts))
    }

    /// Wraps a device and queue that an application already owns (a game, a creative tool).
    /// Uses the device's own features and limits.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, opts: &GpuOptions) -> Gpu {
        let features = device.features();
        let shader = ShaderFeatures::of_device(features).and(opts.features.unwrap_or(ShaderFeatures::ALL));
        let limits = device.limits();
        let adapter_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(adapter_binding, |n| n.min(adapter_binding)) & !3;
        let errors: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let err = match e {
                wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory(e.to_string()),
                other => Error::Gpu(other.to_string()),
            };
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(err);
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(Error::DeviceLost(format!("{reason:?}: {msg}")));
            }
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Gpu {
            shader,
            dummy,
            device,
            queue,
            info,
            features,
            limits,
            max_binding,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            errors,
            allocated: Default::default(),
        }
    }

    /// Returns (and clears) the first error the device reported since the last check.
    pub fn take_error(&self) -> Result<()> {
        match self.errors.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The compute pipeline of a kernel, created once and cached.
    pub fn pipeline(&self, k: &Kernel) -> Arc<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.lock().unwrap().get(k.name) {
            return p.clone();
        }
        let mut modules = self.modules.lock().unwrap();
        let module = modules.entry(k.file).or_insert_with(|| {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(k.file),
                source: wgpu::ShaderSource::Wgsl(specialize(k.source, self.shader).into()),
            })
        });
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.name),
            layout: None,
            module,
            entry_point: Some(k.entry),
            compilation_options: Default::default(),
            cache: None,
        }));
        self.pipelines.lock().unwrap().insert(k.name, pipeline.clone());
        pipeline
    }

    /// A storage buffer of `size` bytes (rounded up to 4), usable as copy source and destination.
    pub fn storage(&self, label: &str, size: u64) -> wgpu::Buffer {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        self.buffer(label, size.max(4).next_multiple_of(4), usage)
    }

    /// Creates a buffer and counts its bytes (see `allocated_bytes`).
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.allocated.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
    }

    /// Bytes of all buffers created so far through this `Gpu` (weights, caches, scratch).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A storage buffer holding `data` (padded to 4 bytes).
    pub fn storage_with(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buf = self.storage(label, data.len() as u64);
        self.write(&buf, 0, data);
        buf
    }

    /// Writes bytes into a buffer, padding the tail to a multiple of 4.
    pub fn write(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) {
        if data.len().is_multiple_of(4) {
            self.queue.write_buffer(buf, offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().next_multiple_of(4), 0);
            self.queue.write_buffer(buf, offset, &padded);
        }
    }

    /// Uploads a large byte range in pieces, letting the queue drain now and then so the
    /// staging memory on the host stays bounded (weights come from a memory map, not a copy).
    pub fn upload(&self, buf: &wgpu::Buffer, offset: u64, data: &[u8]) {
        const PIECE: usize = 16 << 20;
        const DRAIN_EVERY: usize = 256 << 20;
        let mut done = 0;
        for piece in data.chunks(PIECE) {
            self.write(buf, offset + done as u64, piece);
            let before = done;
            done += piece.len();
            if done / DRAIN_EVERY != before / DRAIN_EVERY {
                self.queue.submit([]);
                let _ = self.wait();
            }
        }
    }

    /// A host-readable buffer that kernels' results are copied into (see `map_read`).
    pub fn staging(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.buffer(label, size.next_multiple_of(4).max(4), wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)
    }

    /// Copies `size` bytes of `buf` from `offset` back to the host.
    pub async fn read(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let staging = self.staging("readback", size);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, staging.size());
        self.queue.submit([enc.finish()]);
        self.map_read(&staging, size).await
    }

    /// The first `size` bytes of a staging buffer once the work submitted so far is done.
    pub async fn map_read(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        self.map_read_after(staging, size, None).await
    }

    /// Like `map_read`, waiting only for the submission `after` (the one that filled the
    /// buffer), so that work submitted later keeps the GPU busy meanwhile.
    pub async fn map_read_after(
        &self,
        staging: &wgpu::Buffer,
        size: u64,
        after: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<u8>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        match after {
            Some(index) => self.wait_for(index)?,
            None => self.wait()?,
        }
        let mapped = rx.await.map_err(|_| Error::Gpu("readback was cancelled".into()))?;
        self.take_error()?;
        mapped.map_err(|e| Error::Gpu(format!("readback: {e}")))?;
        let bytes = staging.slice(..).get_mapped_range().map_err(|e| Error::Gpu(format!("readback: {e}")))?[..size as usize]
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }

    /// Blocks until the queue is idle (native); a no-op in the browser, where the event loop drives it.
    pub fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.take_error()
    }

    /// Blocks until the submission `index` is done (native); a no-op in the browser.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        #[cfg(target_arch = "wasm32")]
        let _ = index;
        self.take_error()
    }

    /// Splits `n` workgroups into an (x, y) grid within the per-dimension limit.
    /// Kernels recover the linear index as `wid.x + wid.y * nwg.x`.
    pub fn grid_2d(&self, n: u32) -> (u32, u32) {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1);
        if n <= max {
            (n, 1)
        } else {
            let y = n.div_ceil(max);
            (n.div_ceil(y), y)
        }
    }
}
