//! Streaming file bytes onto the GPU. A [`StreamPlan`] says where every byte range of every file
//! goes (a buffer offset, or a small tensor widened to f32 on the host); bytes are then fed file
//! by file in file order, as they arrive from a memory map, `fetch()` or a `File`, so a model is
//! never whole in host memory. Bytes outside every range (headers, unused tensors) are skipped.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// How a small tensor's elements are widened to f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Widen {
    Bf16,
    F16,
}

impl Widen {
    fn convert(self, bytes: &[u8]) -> Vec<f32> {
        let words = bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        match self {
            Widen::Bf16 => words.map(|w| f32::from_bits((w as u32) << 16)).collect(),
            Widen::F16 => words.map(|w| half::f16::from_bits(w).to_f32()).collect(),
        }
    }
}

/// Element range [e0, e1) of a widened tensor written to `buf` at byte `offset`.
pub type WidenTarget = (usize, usize, wgpu::Buffer, u64);

/// What to do with one contiguous byte range of a file.
enum Action {
    /// Copy the bytes to `buf` at `offset`, as they come (4-byte aligned writes; `carry` holds
    /// the tail of a chunk that ended off alignment).
    Copy { buf: wgpu::Buffer, offset: u64, written: u64, carry: Vec<u8> },
    /// Collect a (small) 16-bit tensor, widen it to f32, and write element ranges of it to buffers.
    Widen { kind: Widen, data: Vec<u8>, targets: Vec<WidenTarget> },
    /// Hand the bytes to a converter `unit` bytes at a time (with the unit's index), holding
    /// back at most one partial unit.
    Transform { unit: usize, index: u64, data: Vec<u8>, f: TransformFn },
}

/// A converter of file bytes: called with the GPU, the index of a unit within its range and the
/// unit's bytes; it writes what it makes into buffers itself.
#[cfg(not(target_arch = "wasm32"))]
pub type TransformFn = Box<dyn FnMut(&Gpu, u64, &[u8]) + Send>;
/// The same in the browser, where GPU buffers are not `Send`.
#[cfg(target_arch = "wasm32")]
pub type TransformFn = Box<dyn FnMut(&Gpu, u64, &[u8])>;

struct Segment {
    range: Range<u64>,
    action: Action,
}

struct FilePlan {
    name: String,
    size: u64,
    /// Next byte expected (bytes come in file order).
    next: u64,
    segments: Vec<Segment>,
    /// First segment not yet complete.
    cursor: usize,
}

/// Where every planned byte of a set of files goes, and how far feeding has come.
pub struct StreamPlan {
    files: Vec<FilePlan>,
    sorted: bool,
    done: u64,
    total: u64,
}

impl StreamPlan {
    /// A plan over files given as (name, size), in the order their bytes will be fed.
    pub fn new(files: impl IntoIterator<Item = (String, u64)>) -> StreamPlan {
        let files: Vec<FilePlan> = files
            .into_iter()
            .map(|(name, size)| FilePlan { name, size, next: 0, segments: Vec::new(), cursor: 0 })
            .collect();
        let total = files.iter().map(|f| f.size).sum();
        StreamPlan { files, sorted: false, done: 0, total }
    }

    fn push(&mut self, file: usize, range: Range<u64>, action: Action) -> Result<()> {
        let f = &mut self.files[file];
        if range.end > f.size || range.start > range.end {
            return Err(Error::checkpoint(&f.name, format!("bytes {}..{} are outside the file ({} bytes)", range.start, range.end, f.size)));
        }
        f.segments.push(Segment { range, action });
        self.sorted = false;
        Ok(())
    }

    /// Bytes `range` of `file` go to `buf` at byte `offset` (a multiple of 4).
    pub fn copy(&mut self, file: usize, range: Range<u64>, buf: &wgpu::Buffer, offset: u64) -> Result<()> {
        if !offset.is_multiple_of(4) {
            let name = &self.files[file].name;
            return Err(Error::checkpoint(name, format!("bytes cannot be placed at buffer offset {offset} (not a multiple of 4)")));
        }
        self.push(file, range, Action::Copy { buf: buf.clone(), offset, written: 0, carry: Vec::new() })
    }

    /// The 16-bit values in bytes `range` of `file` are widened to f32 and element ranges of
    /// them written to buffers.
    pub fn widen(&mut self, file: usize, range: Range<u64>, kind: Widen, targets: Vec<WidenTarget>) -> Result<()> {
        let len = (range.end - range.start) as usize;
        self.push(file, range, Action::Widen { kind, data: Vec::with_capacity(len), targets })
    }

    /// Bytes `range` of `file` are converted on the host by `f`, `unit` bytes at a time (a row,
    /// say), as they arrive: host memory stays at one unit whatever the range's size.
    pub fn transform(&mut self, file: usize, range: Range<u64>, unit: usize, f: TransformFn) -> Result<()> {
        if unit == 0 || !(range.end.saturating_sub(range.start)).is_multiple_of(unit as u64) {
            let name = &self.files[file].name;
            return Err(Error::checkpoint(name, format!("bytes {}..{} are not whole units of {unit} bytes", range.start, range.end)));
        }
        self.push(file, range, Action::Transform { unit, index: 0, data: Vec::new(), f })
    }

    /// Bytes of the files fed so far, and in all.
    pub fn progress(&self) -> (u64, u64) {
        (self.done, self.total)
    }

    /// Feeds the next bytes of file `file`, which must start where the previous chunk of that
    /// file ended.
    pub fn feed(&mut self, gpu: &Gpu, file: usize, bytes: &[u8]) -> Result<()> {
        if !self.sorted {
            for f in &mut self.files {
                f.segments.sort_by_key(|s| s.range.start);
            }
            self.sorted = true;
        }
        let f = self.files.get_mut(file).ok_or_else(|| Error::Input(format!("no file {file} in this checkpoint")))?;
        let (start, end) = (f.next, f.next + bytes.len() as u64);
        if end > f.size {
            return Err(Error::checkpoint(&f.name, format!("more bytes than the {} the file should have", f.size)));
        }
        // Every segment that starts before the chunk's end gets its part of the chunk; ranges may
        // overlap (one tensor widened into several buffers), so none stops the others.
        for seg in &mut f.segments[f.cursor..] {
            if seg.range.start >= end && !seg.range.is_empty() {
                break;
            }
            let (a, b) = (seg.range.start.max(start), seg.range.end.min(end));
            if a < b {
                let piece = &bytes[(a - start) as usize..(b - start) as usize];
                let complete = b == seg.range.end;
                match &mut seg.action {
                    Action::Copy { buf, offset, written, carry } => {
                        write_aligned(gpu, buf, *offset, written, carry, piece, complete);
                    }
                    Action::Widen { kind, data, targets } => {
                        data.extend_from_slice(piece);
                        if complete {
                            let v = kind.convert(data);
                            for (e0, e1, buf, off) in targets.iter() {
                                gpu.write(buf, *off, bytemuck::cast_slice(&v[*e0..*e1]));
                            }
                            *data = Vec::new();
                        }
                    }
                    Action::Transform { unit, index, data, f } => {
                        let mut rest = piece;
                        if !data.is_empty() {
                            let take = (*unit - data.len()).min(rest.len());
                            data.extend_from_slice(&rest[..take]);
                            rest = &rest[take..];
                            if data.len() == *unit {
                                f(gpu, *index, data);
                                *index += 1;
                                data.clear();
                            }
                        }
                        let mut units = rest.chunks_exact(*unit);
                        for u in &mut units {
                            f(gpu, *index, u);
                            *index += 1;
                        }
                        data.extend_from_slice(units.remainder());
                    }
                }
            }
        }
        // Segments before the first unfinished one are done.
        while f.cursor < f.segments.len() && f.segments[f.cursor].range.end <= end {
            f.cursor += 1;
        }
        f.next = end;
        self.done += bytes.len() as u64;
        Ok(())
    }

    /// Checks that every file arrived whole and waits for the writes.
    pub fn finish(self, gpu: &Gpu) -> Result<()> {
        for f in &self.files {
            if f.next != f.size || f.cursor != f.segments.len() {
                return Err(Error::checkpoint(&f.name, format!("truncated: {} of {} bytes arrived", f.next, f.size)));
            }
        }
        gpu.queue.submit([]);
        gpu.wait()
    }

    /// Feeds whole files held in memory (memory maps natively) in 16 MiB pieces, letting the
    /// queue drain now and then so host staging memory stays bounded.
    pub fn feed_all(&mut self, gpu: &Gpu, files: &[&[u8]], progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        const PIECE: usize = 16 << 20;
        const DRAIN_EVERY: u64 = 256 << 20;
        let mut since_drain = 0u64;
        for (i, bytes) in files.iter().enumerate() {
            for piece in bytes.chunks(PIECE) {
                self.feed(gpu, i, piece)?;
                since_drain += piece.len() as u64;
                if since_drain >= DRAIN_EVERY {
                    gpu.queue.submit([]);
                    gpu.wait()?;
                    since_drain = 0;
                }
                let (done, total) = self.progress();
                progress(done, total);
            }
        }
        Ok(())
    }
}

/// Writes `piece` (the next bytes of a destination) 4-byte aligned, holding back an unaligned tail
/// until more bytes come or the destination is complete (then padded with zeros).
fn write_aligned(gpu: &Gpu, buf: &wgpu::Buffer, offset: u64, written: &mut u64, carry: &mut Vec<u8>, mut piece: &[u8], complete: bool) {
    if !carry.is_empty() {
        let take = (4 - carry.len()).min(piece.len());
        carry.extend_from_slice(&piece[..take]);
        piece = &piece[take..];
        if carry.len() == 4 {
            gpu.queue.write_buffer(buf, offset + *written, carry);
            *written += 4;
            carry.clear();
        }
    }
    let aligned = piece.len() & !3;
    if aligned > 0 {
        gpu.queue.write_buffer(buf, offset + *written, &piece[..aligned]);
        *written += aligned as u64;
    }
    carry.extend_from_slice(&piece[aligned..]);
    if complete && !carry.is_empty() {
        carry.resize(4, 0);
        gpu.queue.write_buffer(buf, offset + *written, carry);
        *written += 4;
        carry.clear();
    }
}
