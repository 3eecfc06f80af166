//! An NPC that talks while the scene keeps rendering: one wgpu device draws the frames and runs
//! the model, and each frame gives the model a small time budget (`Chat::step`).
//!
//! ```sh
//! cargo run --release --example npc -- MODEL                  # a window; the NPC's lines in its title and on stdout
//! cargo run --release --example npc -- MODEL --headless --frames 120
//! ```
//!
//! `--headless` renders into an offscreen texture (no display, no event loop) for a fixed number
//! of frames, first without and then with generation, and prints frame-time percentiles.
//! Options: `--budget-ms N` (generation time per frame, default 4), `--size WxH`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wgpt::chat::Event;
use wgpt::engine::{Budget, Chat, Engine};
use wgpt::gpu::{Gpu, GpuOptions};

const SHADER: &str = r#"
struct Scene { time: f32, aspect: f32, talking: f32, pad: f32 }
@group(0) @binding(0) var<uniform> scene: Scene;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let p = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(p * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let uv = pos.xy / vec2<f32>(720.0 * scene.aspect, 720.0);
    var color = mix(vec3<f32>(0.35, 0.55, 0.9), vec3<f32>(0.95, 0.75, 0.5), uv.y);
    if (uv.y > 0.75) { color = vec3<f32>(0.25, 0.45, 0.2); }
    // The NPC: a figure that bobs, and glows while it speaks.
    let center = vec2<f32>(0.5 * scene.aspect, 0.62 + 0.02 * sin(scene.time * 3.0));
    let d = length((uv * vec2<f32>(scene.aspect, 1.0)) - center * vec2<f32>(1.0, 1.0));
    if (d < 0.08) {
        color = mix(vec3<f32>(0.6, 0.3, 0.2), vec3<f32>(1.0, 0.9, 0.4), scene.talking * (0.5 + 0.5 * sin(scene.time * 20.0)));
    }
    return vec4<f32>(color, 1.0);
}
"#;

/// The drawing side: a pipeline and its uniform, for any target format.
struct Renderer {
    pipeline: wgpu::RenderPipeline,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

impl Renderer {
    fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Renderer {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some("scene"), source: wgpu::ShaderSource::Wgsl(SHADER.into()) });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("scene"),
            layout: None,
            vertex: wgpu::VertexState { module: &module, entry_point: Some("vs"), compilation_options: Default::default(), buffers: &[] },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(format.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scene"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("scene"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }],
        });
        Renderer { pipeline, uniform, bind }
    }

    fn draw(&self, device: &wgpu::Device, queue: &wgpu::Queue, view: &wgpu::TextureView, time: f32, aspect: f32, talking: bool) {
        let params = [time, aspect, if talking { 1.0 } else { 0.0 }, 0.0];
        queue.write_buffer(&self.uniform, 0, bytemuck::cast_slice(&params));
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("scene"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind, &[]);
            pass.draw(0..3, 0..1);
        }
        queue.submit([encoder.finish()]);
    }
}

/// The NPC: a chat whose answers stream in a few milliseconds per frame.
struct Npc {
    chat: Chat,
    budget: Duration,
    line: String,
    player_lines: std::iter::Cycle<std::slice::Iter<'static, &'static str>>,
    tokens: usize,
    lines_said: usize,
    /// Silence between lines (none when measuring).
    pause: Duration,
    quiet_until: Instant,
}

impl Npc {
    fn new(engine: &Engine, budget: Duration) -> wgpt::Result<Npc> {
        // Prompts go in 16 tokens per step, so a new line's prefill fits a frame's budget.
        let mut chat = Chat::with_session(engine, engine.session(4096, 16)?);
        chat.conversation_mut().instructions =
            Some("You are Brannoc, the blacksmith of a small village. Answer in one short, friendly sentence.".into());
        const PLAYER: &[&str] = &["Hello there!", "Any work for a traveller?", "What do you sell?", "Farewell, friend."];
        Ok(Npc {
            chat,
            budget,
            line: String::new(),
            player_lines: PLAYER.iter().cycle(),
            tokens: 0,
            lines_said: 0,
            pause: Duration::ZERO,
            quiet_until: Instant::now(),
        })
    }

    /// Asks the next player line when the NPC is quiet; otherwise lets it speak for the budget.
    /// Returns a finished line.
    fn frame(&mut self) -> wgpt::Result<Option<String>> {
        if !self.chat.is_busy() {
            if Instant::now() < self.quiet_until {
                return Ok(None);
            }
            if self.chat.session().position() > 3000 {
                self.chat.reset();
            }
            let said = self.player_lines.next().expect("cycle");
            self.chat.send(said)?;
        }
        for ev in pollster::block_on(self.chat.step(Budget::time(self.budget)))? {
            if let Event::Delta { channel, text } = ev {
                if channel.as_deref() == Some("final") {
                    self.line.push_str(&text);
                }
            }
        }
        if !self.chat.is_busy() {
            self.tokens += self.chat.usage().map(|u| u.completion_tokens).unwrap_or(0);
            self.lines_said += 1;
            self.quiet_until = Instant::now() + self.pause;
            return Ok(Some(std::mem::take(&mut self.line)));
        }
        Ok(None)
    }
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.95), at(0.99))
}

struct Args {
    model: String,
    headless: bool,
    frames: usize,
    budget: Duration,
    size: (u32, u32),
}

fn args() -> Result<Args, String> {
    let mut a = Args { model: String::new(), headless: false, frames: 120, budget: Duration::from_millis(4), size: (640, 360) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--headless" => a.headless = true,
            "--frames" => a.frames = value("--frames")?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--budget-ms" => a.budget = Duration::from_secs_f64(value("--budget-ms")?.parse::<f64>().map_err(|e| format!("--budget-ms: {e}"))? / 1e3),
            "--size" => {
                let v = value("--size")?;
                let (w, h) = v.split_once('x').ok_or("--size WxH")?;
                a.size = (w.parse().map_err(|_| "--size WxH")?, h.parse().map_err(|_| "--size WxH")?);
            }
            _ if a.model.is_empty() && !arg.starts_with("--") => a.model = arg,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    if a.model.is_empty() {
        a.model = "openai/gpt-oss-20b".into();
    }
    Ok(a)
}

/// A device for rendering and for the model, with the adapter's full limits.
fn device(instance: &wgpu::Instance, surface: Option<&wgpu::Surface>) -> wgpt::Result<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        compatible_surface: surface,
        ..Default::default()
    }))
    .map_err(|e| wgpt::Error::NoAdapter(e.to_string()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("npc"),
        required_features: adapter.features() & (wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| wgpt::Error::Gpu(e.to_string()))?;
    Ok((adapter, device, queue))
}

fn load(device: &wgpu::Device, queue: &wgpu::Queue, info: wgpu::AdapterInfo, model: &str) -> wgpt::Result<Engine> {
    let gpu = Arc::new(Gpu::from_device(device.clone(), queue.clone(), info, &GpuOptions::from_env()?));
    Engine::open(gpu, model, &mut |_| {})
}

fn headless(a: &Args) -> wgpt::Result<()> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let (adapter, device, queue) = device(&instance, None)?;
    let info = adapter.get_info();
    eprintln!("device: {} ({:?})", info.name, info.backend);
    let engine = load(&device, &queue, info, &a.model)?;
    let format = wgpu::TextureFormat::Rgba8UnormSrgb;
    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("offscreen"),
        size: wgpu::Extent3d { width: a.size.0, height: a.size.1, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
        view_formats: &[],
    });
    let view = target.create_view(&Default::default());
    let renderer = Renderer::new(&device, format);
    let aspect = a.size.0 as f32 / a.size.1 as f32;
    let wait = || device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).map_err(|e| wgpt::Error::Gpu(e.to_string()));

    // Warm up (pipelines, first prompt), then measure frames without and with the NPC talking.
    let mut npc = Npc::new(&engine, a.budget)?;
    for i in 0..3 {
        renderer.draw(&device, &queue, &view, i as f32 / 60.0, aspect, false);
        wait()?;
    }
    let run = |talk: bool, npc: &mut Npc| -> wgpt::Result<Vec<f64>> {
        let mut times = Vec::with_capacity(a.frames);
        for i in 0..a.frames {
            let t0 = Instant::now();
            renderer.draw(&device, &queue, &view, i as f32 / 60.0, aspect, talk);
            if talk {
                if let Some(line) = npc.frame()? {
                    println!("Brannoc: {line}");
                }
            }
            wait()?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(times)
    };
    let quiet = run(false, &mut npc)?;
    let t0 = Instant::now();
    let talking = run(true, &mut npc)?;
    let secs = t0.elapsed().as_secs_f64();
    let tokens = npc.tokens;
    let (q50, q95, q99) = percentiles(quiet);
    let (t50, t95, t99) = percentiles(talking);
    println!("frames: {} per run, {}x{}, generation budget {:.1} ms per frame", a.frames, a.size.0, a.size.1, a.budget.as_secs_f64() * 1e3);
    println!("frame time without generation: p50 {q50:.2} ms, p95 {q95:.2} ms, p99 {q99:.2} ms");
    println!("frame time with generation:    p50 {t50:.2} ms, p95 {t95:.2} ms, p99 {t99:.2} ms");
    println!("NPC lines finished: {}, tokens in them: {tokens} ({:.1} tok/s while rendering)", npc.lines_said, tokens as f64 / secs);
    if npc.lines_said == 0 {
        return Err(wgpt::Error::Input("the NPC finished no line: raise --frames".into()));
    }
    Ok(())
}

mod window {
    use super::*;
    use winit::application::ApplicationHandler;
    use winit::event::WindowEvent;
    use winit::event_loop::{ActiveEventLoop, EventLoop};
    use winit::window::{Window, WindowId};

    struct Shown {
        window: Arc<Window>,
        surface: wgpu::Surface<'static>,
        config: wgpu::SurfaceConfiguration,
        device: wgpu::Device,
        queue: wgpu::Queue,
        renderer: Renderer,
        npc: Npc,
        start: Instant,
    }

    struct App {
        args: Args,
        shown: Option<Shown>,
        error: Option<wgpt::Error>,
    }

    impl App {
        fn open(&mut self, el: &ActiveEventLoop) -> wgpt::Result<Shown> {
            let attrs = Window::default_attributes()
                .with_title("wgpt npc")
                .with_inner_size(winit::dpi::PhysicalSize::new(self.args.size.0, self.args.size.1));
            let window = Arc::new(el.create_window(attrs).map_err(|e| wgpt::Error::Gpu(e.to_string()))?);
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_with_display_handle_from_env(Box::new(el.owned_display_handle())));
            let surface = instance.create_surface(window.clone()).map_err(|e| wgpt::Error::Gpu(e.to_string()))?;
            let (adapter, device, queue) = device(&instance, Some(&surface))?;
            let info = adapter.get_info();
            let size = window.inner_size();
            let config = surface
                .get_default_config(&adapter, size.width.max(1), size.height.max(1))
                .ok_or_else(|| wgpt::Error::Gpu("the surface does not fit the adapter".into()))?;
            surface.configure(&device, &config);
            let renderer = Renderer::new(&device, config.format);
            let engine = load(&device, &queue, info, &self.args.model)?;
            let mut npc = Npc::new(&engine, self.args.budget)?;
            npc.pause = Duration::from_secs(2);
            Ok(Shown { window, surface, config, device, queue, renderer, npc, start: Instant::now() })
        }
    }

    impl ApplicationHandler for App {
        fn resumed(&mut self, el: &ActiveEventLoop) {
            if self.shown.is_none() {
                match self.open(el) {
                    Ok(s) => {
                        s.window.request_redraw();
                        self.shown = Some(s);
                    }
                    Err(e) => {
                        self.error = Some(e);
                        el.exit();
                    }
                }
            }
        }

        fn window_event(&mut self, el: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
            let Some(s) = self.shown.as_mut() else { return };
            match event {
                WindowEvent::CloseRequested => el.exit(),
                WindowEvent::Resized(size) => {
                    s.config.width = size.width.max(1);
                    s.config.height = size.height.max(1);
                    s.surface.configure(&s.device, &s.config);
                }
                WindowEvent::RedrawRequested => {
                    let frame = match s.surface.get_current_texture() {
                        wgpu::CurrentSurfaceTexture::Success(t) | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
                        _ => {
                            s.surface.configure(&s.device, &s.config);
                            s.window.request_redraw();
                            return;
                        }
                    };
                    let view = frame.texture.create_view(&Default::default());
                    let aspect = s.config.width as f32 / s.config.height as f32;
                    s.renderer.draw(&s.device, &s.queue, &view, s.start.elapsed().as_secs_f32(), aspect, s.npc.chat.is_busy());
                    s.queue.present(frame);
                    match s.npc.frame() {
                        Ok(Some(line)) => {
                            println!("Brannoc: {line}");
                            s.window.set_title(&format!("Brannoc: {line}"));
                        }
                        Ok(None) if s.npc.chat.is_busy() => s.window.set_title(&format!("Brannoc: {}…", s.npc.line)),
                        Ok(None) => {}
                        Err(e) => {
                            self.error = Some(e);
                            el.exit();
                            return;
                        }
                    }
                    s.window.request_redraw();
                }
                _ => {}
            }
        }
    }

    pub fn run(args: Args) -> wgpt::Result<()> {
        let el = EventLoop::new().map_err(|e| wgpt::Error::Gpu(format!("no display: {e} (use --headless)")))?;
        let mut app = App { args, shown: None, error: None };
        el.run_app(&mut app).map_err(|e| wgpt::Error::Gpu(e.to_string()))?;
        app.error.map_or(Ok(()), Err)
    }
}

fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = if a.headless { headless(&a) } else { window::run(a) };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
