//! GPU sampling kernel launcher.

use crate::gpu::Kernel;

/// The sampling kernels (registered for shader tests).
pub const KERNELS: &[Kernel] = &[];
