/// One WGSL entry point: `file` names the shader module it lives in.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub file: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
}
