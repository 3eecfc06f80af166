//! Kernels and their variants.
//!
//! A kernel is one WGSL entry point. Optional device capabilities (subgroup operations, f16
//! arithmetic) are fast paths, never requirements: a shader marks the lines that use them with
//!
//! ```text
//! //#if subgroups        (or f16; `//#if !subgroups` for the opposite)
//! ... lines for devices that have it ...
//! //#else
//! ... the portable lines ...
//! //#endif
//! ```
//!
//! and [`specialize`] keeps the lines of the features the device has. This is the only
//! preprocessing step: no code is generated, the marked lines are kept or dropped whole.

use crate::error::{Error, Result};

/// One WGSL entry point: `file` names the shader module it lives in; `params` the fields of
/// its uniform parameter struct (binding 0), as its Rust [`KernelParams`] type declares them.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub file: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    pub params: &'static [ParamField],
}

/// The scalar types kernel parameters are made of (4 bytes each, so a `#[repr(C)]` struct of
/// them has the layout of the WGSL uniform struct).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    U32,
    I32,
    F32,
}

/// A field of a kernel's parameter struct: its name and type, as in the WGSL `Params`.
pub type ParamField = (&'static str, ParamType);

/// A Rust scalar a parameter field can have.
pub trait ParamScalar {
    const TYPE: ParamType;
}
impl ParamScalar for u32 {
    const TYPE: ParamType = ParamType::U32;
}
impl ParamScalar for i32 {
    const TYPE: ParamType = ParamType::I32;
}
impl ParamScalar for f32 {
    const TYPE: ParamType = ParamType::F32;
}

/// A kernel's uniform parameters: a `#[repr(C)]` plain-data struct mirroring the WGSL struct
/// at binding 0 field by field (`tests/shaders.rs` checks names, types and offsets against what
/// naga reads from every kernel). Declared with [`kernel_params!`](crate::kernel_params).
pub trait KernelParams: bytemuck::Pod {
    const FIELDS: &'static [ParamField];
}

/// Declares a kernel parameter struct: `kernel_params! { /// doc \n Name { field: u32, eps: f32 } }`.
#[macro_export]
macro_rules! kernel_params {
    ($($(#[$meta:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(pub $field: $ty),*
        }
        impl $crate::gpu::KernelParams for $name {
            const FIELDS: &'static [$crate::gpu::ParamField] =
                &[$((stringify!($field), <$ty as $crate::gpu::ParamScalar>::TYPE)),*];
        }
    )*};
}

/// Optional shader capabilities that kernels use when the device has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderFeatures {
    /// Subgroup operations (`subgroupAdd`, `subgroupMax`, …), any subgroup size.
    pub subgroups: bool,
    /// f16 arithmetic (`enable f16;`).
    pub f16: bool,
}

impl ShaderFeatures {
    /// The portable paths only.
    pub const NONE: ShaderFeatures = ShaderFeatures { subgroups: false, f16: false };
    /// Every fast path.
    pub const ALL: ShaderFeatures = ShaderFeatures { subgroups: true, f16: true };

    /// What a device with `features` can run.
    pub fn of_device(features: wgpu::Features) -> ShaderFeatures {
        ShaderFeatures {
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            f16: features.contains(wgpu::Features::SHADER_F16),
        }
    }

    /// The wgpu features these need.
    pub fn wgpu_features(self) -> wgpu::Features {
        let mut f = wgpu::Features::empty();
        if self.subgroups {
            f |= wgpu::Features::SUBGROUP;
        }
        if self.f16 {
            f |= wgpu::Features::SHADER_F16;
        }
        f
    }

    /// Both sets' common features.
    pub fn and(self, other: ShaderFeatures) -> ShaderFeatures {
        ShaderFeatures { subgroups: self.subgroups && other.subgroups, f16: self.f16 && other.f16 }
    }

    /// Parses `WGPT_FEATURES`: `none`, `all`, or a comma-separated list of `subgroups`, `f16`.
    pub fn parse(text: &str) -> Result<ShaderFeatures> {
        let mut f = ShaderFeatures::NONE;
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word.to_ascii_lowercase().as_str() {
                "none" => {}
                "all" => f = ShaderFeatures::ALL,
                "subgroups" | "subgroup" => f.subgroups = true,
                "f16" | "shader-f16" => f.f16 = true,
                other => {
                    return Err(Error::Input(format!(
                        "WGPT_FEATURES={text}: unknown feature {other:?} (expected none, all, subgroups, f16)"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// `none`, `subgroups`, `f16` or `subgroups,f16`.
    pub fn name(self) -> &'static str {
        match (self.subgroups, self.f16) {
            (false, false) => "none",
            (true, false) => "subgroups",
            (false, true) => "f16",
            (true, true) => "subgroups,f16",
        }
    }

    fn has(self, feature: &str) -> Option<bool> {
        match feature {
            "subgroups" => Some(self.subgroups),
            "f16" => Some(self.f16),
            _ => None,
        }
    }
}

/// The WGSL of a shader file for a device with `features`: the lines of `//#if` blocks whose
/// condition holds, `enable f16;` first when f16 lines are kept. Panics on a malformed block
/// (shader sources are compiled in; the shader tests run every file through this).
pub fn specialize(source: &str, features: ShaderFeatures) -> String {
    // One entry per open block: (this branch is kept, some enclosing branch is dropped).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut out = String::with_capacity(source.len() + 16);
    let mut uses_f16 = false;
    for (n, line) in source.lines().enumerate() {
        let directive = line.trim_start();
        let dropped_above = stack.iter().any(|&(keep, _)| !keep);
        if let Some(cond) = directive.strip_prefix("//#if ") {
            let cond = cond.trim();
            let (negate, name) = match cond.strip_prefix('!') {
                Some(n) => (true, n.trim()),
                None => (false, cond),
            };
            let has = features.has(name).unwrap_or_else(|| panic!("line {}: unknown shader feature {name:?}", n + 1));
            let keep = has != negate;
            uses_f16 |= name == "f16" && keep && !negate && !dropped_above;
            stack.push((keep, dropped_above));
        } else if directive.starts_with("//#else") {
            let top = stack.last_mut().unwrap_or_else(|| panic!("line {}: //#else without //#if", n + 1));
            top.0 = !top.0;
        } else if directive.starts_with("//#endif") {
            stack.pop().unwrap_or_else(|| panic!("line {}: //#endif without //#if", n + 1));
        } else if !dropped_above && stack.last().is_none_or(|&(keep, _)| keep) {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(stack.is_empty(), "//#if without //#endif");
    if uses_f16 {
        out.insert_str(0, "enable f16;\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "a\n//#if subgroups\nb\n//#if f16\nc\n//#else\nd\n//#endif\n//#else\ne\n//#endif\n//#if !f16\nf\n//#endif\ng\n";

    #[test]
    fn keeps_the_lines_of_the_features_present() {
        assert_eq!(specialize(SRC, ShaderFeatures::NONE), "a\ne\nf\ng\n");
        assert_eq!(specialize(SRC, ShaderFeatures { subgroups: true, f16: false }), "a\nb\nd\nf\ng\n");
        assert_eq!(specialize(SRC, ShaderFeatures::ALL), "enable f16;\na\nb\nc\ng\n");
        // f16 lines inside a dropped block do not enable f16.
        assert_eq!(specialize(SRC, ShaderFeatures { subgroups: false, f16: true }), "a\ne\ng\n");
    }

    #[test]
    fn parses_feature_lists() {
        assert_eq!(ShaderFeatures::parse("none").unwrap(), ShaderFeatures::NONE);
        assert_eq!(ShaderFeatures::parse("all").unwrap(), ShaderFeatures::ALL);
        assert_eq!(ShaderFeatures::parse("subgroups").unwrap(), ShaderFeatures { subgroups: true, f16: false });
        assert_eq!(ShaderFeatures::parse(" f16 , subgroups ").unwrap(), ShaderFeatures::ALL);
        assert!(ShaderFeatures::parse("tensor-cores").unwrap_err().to_string().contains("tensor-cores"));
    }
}
