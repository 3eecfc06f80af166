//! Every kernel's WGSL goes through naga: parse, validate, and translate to SPIR-V (Vulkan),
//! MSL (Metal) and HLSL (DX12), so the shaders of every backend compile without their GPUs.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpt::gpu::{specialize, ParamField, ParamType, ShaderFeatures};
use wgpt::ops::all_kernels;

/// The kernel's uniform parameter struct (the one at group 0, binding 0 that its entry point
/// uses), as naga lays it out, must be the Rust struct's fields: same names, types and offsets.
fn check_params(name: &str, module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str, want: &[ParamField]) {
    let index = module.entry_points.iter().position(|e| e.name == entry).unwrap();
    let used = info.get_entry_point(index);
    let uniforms: Vec<_> = module
        .global_variables
        .iter()
        .filter(|(h, v)| {
            v.space == naga::AddressSpace::Uniform
                && v.binding == Some(naga::ResourceBinding { group: 0, binding: 0 })
                && !used[*h].is_empty()
        })
        .collect();
    assert_eq!(uniforms.len(), 1, "{name}: one uniform at binding 0, found {}", uniforms.len());
    let naga::TypeInner::Struct { members, .. } = &module.types[uniforms[0].1.ty].inner else {
        panic!("{name}: the uniform at binding 0 is not a struct")
    };
    let got: Vec<(String, ParamType, u32)> = members
        .iter()
        .map(|m| {
            let ty = match module.types[m.ty].inner {
                naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Uint, width: 4 }) => ParamType::U32,
                naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Sint, width: 4 }) => ParamType::I32,
                naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Float, width: 4 }) => ParamType::F32,
                ref other => panic!("{name}: parameter {:?} has type {other:?}, not a 4-byte scalar", m.name),
            };
            (m.name.clone().unwrap_or_default(), ty, m.offset)
        })
        .collect();
    let want: Vec<(String, ParamType, u32)> =
        want.iter().enumerate().map(|(i, (n, t))| (n.to_string(), *t, 4 * i as u32)).collect();
    assert_eq!(got, want, "{name}: the WGSL parameter struct and the Rust one differ");
}

fn translate(name: &str, source: &str, entry: &str, features: ShaderFeatures, params: &[ParamField]) {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    // The portable variant must validate without subgroup or f16 capabilities.
    let mut caps = Capabilities::all();
    if !features.subgroups {
        caps -= Capabilities::SUBGROUP | Capabilities::SUBGROUP_BARRIER;
    }
    if !features.f16 {
        caps -= Capabilities::SHADER_FLOAT16;
    }
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    let ep = module.entry_points.iter().find(|e| e.name == entry).unwrap_or_else(|| panic!("{name}: no entry {entry}"));
    check_params(name, &module, &info, entry, params);
    assert_eq!(ep.stage, naga::ShaderStage::Compute);
    // The workgroup must fit every WebGPU adapter (256 invocations).
    let [x, y, z] = ep.workgroup_size;
    assert!(x * y * z <= 256, "{name}: workgroup of {} invocations", x * y * z);

    let spv_opts = spv::Options::default();
    let spv_pipe = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: entry.into() };
    spv::write_vec(&module, &info, &spv_opts, Some(&spv_pipe)).unwrap_or_else(|e| panic!("{name} SPIR-V: {e}"));

    let msl_opts = msl::Options { fake_missing_bindings: true, lang_version: (2, 4), ..Default::default() };
    let msl_pipe = msl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, entry.into())),
        ..Default::default()
    };
    let (msl_src, _) = msl::write_string(&module, &info, &msl_opts, &msl_pipe).unwrap_or_else(|e| panic!("{name} MSL: {e}"));
    assert!(msl_src.contains("kernel"), "{name}: MSL has no kernel function");

    let hlsl_opts = hlsl::Options { fake_missing_bindings: true, ..Default::default() };
    let hlsl_pipe = hlsl::PipelineOptions { entry_point: Some((naga::ShaderStage::Compute, entry.into())) };
    let mut hlsl_src = String::new();
    hlsl::Writer::new(&mut hlsl_src, &hlsl_opts, &hlsl_pipe)
        .write(&module, &info, None)
        .unwrap_or_else(|e| panic!("{name} HLSL: {e}"));
    assert!(hlsl_src.contains("[numthreads("), "{name}: HLSL has no compute entry");
}

#[test]
fn every_kernel_translates_to_spirv_msl_and_hlsl() {
    assert!(all_kernels().len() >= 12);
    let variants = [ShaderFeatures::NONE, ShaderFeatures { subgroups: true, f16: false }, ShaderFeatures { subgroups: false, f16: true }, ShaderFeatures::ALL];
    for k in &all_kernels() {
        for features in variants {
            let name = format!("{} [{}]", k.name, features.name());
            translate(&name, &specialize(k.source, features), k.entry, features, k.params);
        }
    }
}

#[test]
fn a_parameter_struct_that_differs_from_the_shader_is_caught() {
    let source = "struct Params { n: u32, eps: f32 }\n@group(0) @binding(0) var<uniform> p: Params;\n\
                  @group(0) @binding(1) var<storage, read_write> out: array<f32>;\n\
                  @compute @workgroup_size(1) fn k() { out[p.n] = p.eps; }";
    let module = naga::front::wgsl::parse_str(source).unwrap();
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).unwrap();
    check_params("ok", &module, &info, "k", &[("n", ParamType::U32), ("eps", ParamType::F32)]);
    for wrong in [&[("n", ParamType::U32), ("eps", ParamType::U32)][..], &[("eps", ParamType::F32), ("n", ParamType::U32)], &[("n", ParamType::U32)]] {
        let caught = std::panic::catch_unwind(|| check_params("wrong", &module, &info, "k", wrong));
        assert!(caught.is_err(), "{wrong:?} accepted");
    }
}

#[test]
fn every_shader_file_is_used() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        assert!(all_kernels().iter().any(|k| k.file == file), "{file} has no kernel registered in ops::all_kernels()");
    }
}
