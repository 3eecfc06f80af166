//! Recording dispatches without allocating on every pass.
//!
//! Kernel parameters go into an arena of uniform slots (256 bytes each, the largest uniform
//! offset alignment WebGPU allows): the n-th dispatch of a pass uses slot n, and the arena is
//! rewritten with one `write_buffer` per 256 slots just before the submit (the queue orders
//! that write after every pass already submitted, so the next pass can be recorded while the
//! previous one runs). Each slot remembers the last few (kernel, buffers) it served with their
//! bind group and pipeline, compared by identity: a decode step that repeats an earlier step's
//! sequence of dispatches finds everything built, with no hashing, locking or allocation,
//! whatever the parameter values (positions change per token).

use std::sync::Arc;

use web_time::Instant;

use super::{Gpu, Kernel, KernelParams};

/// Bytes between two parameter slots.
const SLOT: u64 = 256;
/// Slots per arena buffer.
const SLOTS_PER_ARENA: usize = 256;
/// Storage buffers one dispatch binds at most (WebGPU's default per-stage limit).
pub const MAX_BUFFERS: usize = 8;
/// Pass shapes each slot remembers (decode, prefill chunks, logits passes) before the least
/// recently used one is rebuilt.
const WAYS: usize = 4;

/// What a bind group was built for: a kernel and the buffers at bindings 1.. (identity).
struct Binding {
    kernel: &'static str,
    params_len: u32,
    buffers: [Option<wgpu::Buffer>; MAX_BUFFERS],
    bind_group: wgpu::BindGroup,
    pipeline: Arc<wgpu::ComputePipeline>,
    last_used: u64,
}

impl Binding {
    fn matches(&self, k: &Kernel, params_len: u32, buffers: &[&wgpu::Buffer]) -> bool {
        // Kernel names are unique (the pipeline cache is keyed by them).
        (std::ptr::eq(self.kernel, k.name) || self.kernel == k.name)
            && self.params_len == params_len
            && self.buffers.iter().flatten().count() == buffers.len()
            && self.buffers.iter().zip(buffers).all(|(have, want)| have.as_ref() == Some(*want))
    }
}

/// Counters of what recording created and did, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    pub dispatches: u64,
    pub submits: u64,
    /// Uniform arena buffers and bind groups created (zero in a steady decode loop).
    pub buffers_created: u64,
    pub bind_groups_created: u64,
    /// Bytes copied back to the host (the chosen token, or logits).
    pub readback_bytes: u64,
    /// Host time spent recording passes and handing them to the queue, in nanoseconds (up to
    /// the submit itself, which CPU drivers use to run the pass).
    pub host_nanos: u64,
}

/// What one owner (a session, a test) keeps between passes: the parameter arena, the bind
/// groups built over it and the parameter bytes of the pass being recorded. Not shared between
/// threads: each session has its own.
#[derive(Default)]
pub struct DispatchCache {
    arenas: Vec<wgpu::Buffer>,
    /// `WAYS` bindings per slot.
    slots: Vec<Vec<Binding>>,
    params: Vec<u8>,
    clock: u64,
    pub stats: RecordStats,
}

impl DispatchCache {
    pub fn new() -> Self {
        Self::default()
    }
}

/// GPU timestamps around each dispatch, when the adapter has TIMESTAMP_QUERY.
pub struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    capacity: u32,
    /// (kernel entry point, bytes the dispatch reads) of each timed dispatch, in order.
    entries: Vec<(&'static str, u64)>,
}

/// One timed dispatch.
#[derive(Clone, Debug)]
pub struct Timing {
    pub kernel: &'static str,
    pub nanos: f64,
    pub bytes: u64,
}

impl Profiler {
    /// None when the adapter cannot time GPU work.
    pub fn new(gpu: &Gpu, max_dispatches: u32) -> Option<Profiler> {
        if !gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let capacity = max_dispatches.clamp(1, 2048);
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: capacity * 2,
        });
        let bytes = capacity as u64 * 16;
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = gpu.staging("profile readback", bytes);
        Some(Profiler { queries, resolve, readback, capacity, entries: Vec::new() })
    }

    /// Timings of the dispatches recorded since the last call (after their submit).
    pub async fn collect(&mut self, gpu: &Gpu) -> crate::Result<Vec<Timing>> {
        let n = self.entries.len() as u32;
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.resolve_query_set(&self.queries, 0..n * 2, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, n as u64 * 16);
        gpu.queue.submit([enc.finish()]);
        let bytes = gpu.map_read(&self.readback, n as u64 * 16).await?;
        let ticks: &[u64] = bytemuck::cast_slice(&bytes);
        let period = gpu.queue.get_timestamp_period() as f64;
        let out = self
            .entries
            .drain(..)
            .enumerate()
            .map(|(i, (kernel, bytes))| Timing {
                kernel,
                nanos: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period,
                bytes,
            })
            .collect();
        Ok(out)
    }
}

/// Records a pass of dispatches into one command buffer; `submit` uploads the parameters and
/// submits it.
pub struct Recorder<'a> {
    pub gpu: &'a Gpu,
    // Declared before the encoder so that an open pass ends before the encoder goes.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    cache: CacheRef<'a>,
    /// Slots used in this pass.
    slots: usize,
    started: Instant,
    profiler: Option<&'a mut Profiler>,
    next_bytes: u64,
}

enum CacheRef<'a> {
    Owned(Box<DispatchCache>),
    Borrowed(&'a mut DispatchCache),
}

impl<'a> Recorder<'a> {
    /// A recorder with a cache of its own (kernel tests, one-off passes).
    pub fn new(gpu: &'a Gpu) -> Self {
        Self::build(gpu, CacheRef::Owned(Box::default()), None)
    }

    /// A recorder that reuses `cache` across passes (a session's decode loop).
    pub fn with_cache(gpu: &'a Gpu, cache: &'a mut DispatchCache) -> Self {
        Self::build(gpu, CacheRef::Borrowed(cache), None)
    }

    /// Like `with_cache`, timing every dispatch into `profiler`.
    pub fn profiled(gpu: &'a Gpu, cache: &'a mut DispatchCache, profiler: Option<&'a mut Profiler>) -> Self {
        Self::build(gpu, CacheRef::Borrowed(cache), profiler)
    }

    fn build(gpu: &'a Gpu, cache: CacheRef<'a>, profiler: Option<&'a mut Profiler>) -> Self {
        let started = Instant::now();
        let encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgpt pass") });
        let mut r = Recorder { gpu, encoder: Some(encoder), pass: None, cache, slots: 0, started, profiler, next_bytes: 0 };
        r.cache().params.clear();
        r
    }

    fn cache(&mut self) -> &mut DispatchCache {
        match &mut self.cache {
            CacheRef::Owned(c) => c,
            CacheRef::Borrowed(c) => c,
        }
    }

    /// The command encoder, for copies between dispatches (closes the open compute pass).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.as_mut().expect("encoder taken only by submit")
    }

    /// Declares how many bytes the next dispatch reads from memory (for profiles).
    pub fn reads(&mut self, bytes: u64) {
        self.next_bytes = bytes;
    }

    /// Records one compute dispatch: `params` (the kernel's own parameter struct) become the
    /// uniform at binding 0, `buffers` bind 1.. in order. An empty grid records nothing.
    pub fn dispatch<P: KernelParams>(&mut self, k: &Kernel, params: &P, buffers: &[&wgpu::Buffer], grid: [u32; 3]) {
        debug_assert!(P::FIELDS == k.params, "{}: parameters of another kernel", k.name);
        let bytes_read = std::mem::take(&mut self.next_bytes);
        if grid.contains(&0) {
            return;
        }
        assert!(buffers.len() <= MAX_BUFFERS, "{}: {} storage buffers", k.name, buffers.len());
        let gpu = self.gpu;
        let params = bytemuck::bytes_of(params);
        // Uniform structs are sized in 16-byte steps.
        let params_len = params.len().next_multiple_of(16).max(16) as u32;
        let slot = self.slots;
        self.slots += 1;
        let cache = self.cache();
        cache.params.resize((slot + 1) * SLOT as usize, 0);
        let at = slot * SLOT as usize;
        cache.params[at..at + params.len()].copy_from_slice(params);

        let arena_index = slot / SLOTS_PER_ARENA;
        while cache.arenas.len() <= arena_index {
            let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
            cache.arenas.push(gpu.buffer("kernel parameters", SLOT * SLOTS_PER_ARENA as u64, usage));
            cache.stats.buffers_created += 1;
        }
        if cache.slots.len() <= slot {
            cache.slots.resize_with(slot + 1, Vec::new);
        }
        cache.clock += 1;
        let clock = cache.clock;
        let ways = &mut cache.slots[slot];
        let way = match ways.iter().position(|b| b.matches(k, params_len, buffers)) {
            Some(i) => i,
            None => {
                let pipeline = gpu.pipeline(k);
                let arena = &cache.arenas[arena_index];
                let offset = (slot % SLOTS_PER_ARENA) as u64 * SLOT;
                let mut entries = Vec::with_capacity(buffers.len() + 1);
                entries.push(wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: arena,
                        offset,
                        size: wgpu::BufferSize::new(params_len as u64),
                    }),
                });
                for (i, b) in buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() });
                }
                let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(k.name),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                });
                let binding = Binding {
                    kernel: k.name,
                    params_len,
                    buffers: std::array::from_fn(|i| buffers.get(i).map(|b| (*b).clone())),
                    bind_group,
                    pipeline,
                    last_used: clock,
                };
                cache.stats.bind_groups_created += 1;
                if ways.len() < WAYS {
                    ways.push(binding);
                    ways.len() - 1
                } else {
                    let oldest = (0..ways.len()).min_by_key(|&i| ways[i].last_used).expect("WAYS > 0");
                    ways[oldest] = binding;
                    oldest
                }
            }
        };
        let binding = &mut cache.slots[slot][way];
        binding.last_used = clock;
        let (pipeline, bind_group) = (binding.pipeline.clone(), binding.bind_group.clone());
        cache.stats.dispatches += 1;

        let timed = match self.profiler.as_deref_mut() {
            Some(p) if (p.entries.len() as u32) < p.capacity => {
                p.entries.push((k.entry, bytes_read));
                Some(p.entries.len() as u32 - 1)
            }
            _ => None,
        };
        if let Some(i) = timed {
            // A pass of its own, with a timestamp at each end.
            self.pass = None;
            let queries = &self.profiler.as_ref().expect("timed").queries;
            let enc = self.encoder.as_mut().expect("open");
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(k.name),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: queries,
                    beginning_of_pass_write_index: Some(2 * i),
                    end_of_pass_write_index: Some(2 * i + 1),
                }),
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
            return;
        }
        if self.pass.is_none() {
            let enc = self.encoder.as_mut().expect("open");
            self.pass = Some(enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("wgpt"), timestamp_writes: None }).forget_lifetime());
        }
        let pass = self.pass.as_mut().expect("just opened");
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
    }

    /// Counts bytes that this pass copies back to the host.
    pub fn note_readback(&mut self, bytes: u64) {
        self.cache().stats.readback_bytes += bytes;
    }

    /// Dispatches recorded so far in this pass.
    pub fn dispatches(&self) -> usize {
        self.slots
    }

    /// Uploads the parameters and submits the pass.
    pub fn submit(mut self) -> wgpu::SubmissionIndex {
        self.pass = None;
        let gpu = self.gpu;
        let started = self.started;
        let encoder = self.encoder.take().expect("submitted once");
        let cache = self.cache();
        for (i, chunk) in cache.params.chunks(SLOT as usize * SLOTS_PER_ARENA).enumerate() {
            gpu.queue.write_buffer(&cache.arenas[i], 0, chunk);
        }
        let commands = encoder.finish();
        // Counted before the submit: CPU drivers (lavapipe) run the whole pass inside it.
        cache.stats.host_nanos += started.elapsed().as_nanos() as u64;
        cache.stats.submits += 1;
        gpu.queue.submit([commands])
    }
}
