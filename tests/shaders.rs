//! Every kernel's WGSL goes through naga: parse, validate, and translate to SPIR-V (Vulkan),
//! MSL (Metal) and HLSL (DX12), so the shaders of every backend compile without their GPUs.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpt::gpu::{specialize, ShaderFeatures};
use wgpt::ops::all_kernels;

fn translate(name: &str, source: &str, entry: &str, features: ShaderFeatures) {
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
            translate(&name, &specialize(k.source, features), k.entry, features);
        }
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
