// llama.cpp speed on one GGUF file, to compare with `wgpt bench` on the same device: a P-token
// prompt in one evaluation, then N tokens decoded one at a time feeding back the argmax, timed
// by wall clock; best of R runs. Prints one JSON line.
//
//   (cd scripts/llamacpp && npm install)   # node-llama-cpp 3.21.1: prebuilt CPU and Vulkan builds
//   GGML_VK_VISIBLE_DEVICES=0 node scripts/llamacpp/bench.mjs MODEL.gguf vulkan 128 32 3
//   node scripts/llamacpp/bench.mjs MODEL.gguf cpu 128 32 3 2       # CPU backend, 2 threads
//
// GGML_VK_VISIBLE_DEVICES picks the Vulkan device (0 is lavapipe on a machine without a GPU).
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
const [model, gpu = "vulkan", P = "128", N = "32", R = "3", threads = "2"] = process.argv.slice(2);
const llama = await getLlama({ gpu: gpu === "cpu" ? false : gpu, build: "never", logLevel: LlamaLogLevel.error });
const m = await llama.loadModel({ modelPath: model, gpuLayers: gpu === "cpu" ? 0 : "max" });
const ctx = await m.createContext({ contextSize: 512, batchSize: 512, threads: Number(threads) });
const seq = ctx.getSequence();
let best = { pp: 0, tg: 0 };
for (let r = 0; r < Number(R); r++) {
  await seq.clearHistory();
  const prompt = Array.from({ length: Number(P) }, (_, i) => 100 + ((i * 7919) % 20000));
  let t0 = performance.now();
  const it = seq.evaluate(prompt, { temperature: 0 });
  let next = await it.next();
  const pp = Number(P) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < Number(N); i++) next = await it.next();
  const tg = Number(N) / ((performance.now() - t0) / 1000);
  await it.return();
  best = { pp: Math.max(best.pp, pp), tg: Math.max(best.tg, tg) };
}
console.log(JSON.stringify({ runtime: "llama.cpp", backend: gpu, device: gpu === "cpu" ? "cpu" : (await llama.getGpuDeviceNames()).join(","), pp_tok_s: best.pp, tg_tok_s: best.tg }));
process.exit(0);
