// Browser tests: real headless Chromium with WebGPU (SwiftShader on machines without a GPU).
//   node web/tests/run.mjs            (after web/build.sh; chat models come from
//                                      `cargo run --example scripted_chat_model -- target/web-models`)
// 1. The wasm module loads the tiny fixtures over HTTP from 127.0.0.1: logits match the
//    transformers references within 1e-3, greedy ids equal the reference continuations, with
//    whole tensors and with bindings forced down to a few KiB.
// 2. A reload loads from Cache Storage: the server sees no second download.
// 3. Bad sources give clear errors; an interrupted download resumes.
// 4. GGUF files (tiny llama / qwen3 with quantized tensors) by URL and as a File: logits match
//    the float64 references within 1e-3, greedy ids equal theirs, with whole tensors and 8 KiB
//    bindings; the header is read with growing Range requests; a reload loads from the cache; a
//    chat streams answer events and ends with a usage record.
// 5. The page (engine in a worker): load, chat with a streamed answer, stop; a screenshot is
//    saved to target/web-artifacts/chat.png; a GGUF file named by `?model=` loads.
// Exits non-zero on any failure.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '..');
const repo = path.resolve(web, '..');
const fixtures = path.join(repo, 'tests/fixtures');
const chatModels = process.env.WGPT_WEB_MODELS || path.join(repo, 'target/web-models');
const artifacts = process.env.WGPT_WEB_ARTIFACTS || path.join(repo, 'target/web-artifacts');
const TOL = 1e-3;

let failures = 0;
const timings = {};
function check(cond, what) {
  if (cond) {
    console.log(`  ok   ${what}`);
  } else {
    console.log(`  FAIL ${what}`);
    failures++;
  }
}

if (!fs.existsSync(path.join(web, 'pkg/wgpt_bg.wasm'))) {
  console.error('web/pkg is missing: build it with web/build.sh');
  process.exit(2);
}

const models = {
  tiny: path.join(fixtures, 'tiny'),
  'tiny-sharded': path.join(fixtures, 'tiny-sharded'),
  'gguf-tiny': path.join(fixtures, 'gguf-tiny'),
  final: path.join(chatModels, 'final'),
  analysis: path.join(chatModels, 'analysis'),
};
const srv = await startServer({ webRoot: web, models });
console.log(`serving ${web} on ${srv.origin}`);

const args = [
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-default-apps',
  '--disable-extensions',
];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wgpt-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, { executablePath, headless: true, args });
  return { ctx, dir };
}

// In-page helpers, installed with page.evaluate.
const helpers = () => {
  window.parseNpy = (buf) => {
    const b = new Uint8Array(buf);
    const hlen = b[8] | (b[9] << 8);
    const header = new TextDecoder().decode(b.subarray(10, 10 + hlen));
    if (!header.includes("'<f4'")) throw new Error('expected float32 npy: ' + header);
    const start = 10 + hlen;
    return new Float32Array(buf.slice(start));
  };
  window.runCases = async (base, maxGreedy = Infinity) => {
    const cases = await (await fetch(base + 'reference/cases.json')).json();
    const out = [];
    for (const c of cases.cases) {
      const ids = Uint32Array.from(c.prompt.concat(c.continuation));
      const t0 = performance.now();
      const logits = await window.engine.logits(ids);
      const tLogits = performance.now() - t0;
      const want = window.parseNpy(await (await fetch(base + 'reference/' + c.logits)).arrayBuffer());
      let maxDiff = 0;
      let bad = logits.length !== want.length;
      for (let i = 0; i < Math.min(logits.length, want.length); i++) {
        const d = Math.abs(logits[i] - want[i]);
        if (!(d <= maxDiff)) maxDiff = d; // NaN propagates as a failure
        if (Number.isNaN(d)) bad = true;
      }
      const t1 = performance.now();
      // Greedy decoding is one forward per token: with many small bindings only the shorter cases run.
      const greedy = c.continuation.length <= maxGreedy;
      const got = greedy ? Array.from(await window.engine.generateIds(Uint32Array.from(c.prompt), { maxTokens: c.continuation.length, greedy: true })) : null;
      const tGen = performance.now() - t1;
      out.push({ name: c.name, maxDiff, bad, lengths: [logits.length, want.length], got, want: c.continuation, tLogits, tGen });
    }
    return out;
  };
  // GGUF fixtures: NAME.json lists the cases; NAME.npy holds the rows of every case's
  // teacher-forced pass over prompt + continuation[:-1], one after another.
  window.runGgufCases = async (dir, name, greedyCases = Infinity) => {
    const meta = await (await fetch(dir + name + '.json')).json();
    const all = window.parseNpy(await (await fetch(dir + meta.logits)).arrayBuffer());
    const vocab = meta.vocab;
    const out = [];
    for (const [i, c] of meta.cases.entries()) {
      const logits = await window.engine.logits(Uint32Array.from(c.prompt.concat(c.continuation.slice(0, -1))));
      const want = all.subarray(c.rows[0] * vocab, c.rows[1] * vocab);
      let maxDiff = 0;
      let bad = logits.length !== want.length;
      for (let j = 0; j < Math.min(logits.length, want.length); j++) {
        const d = Math.abs(logits[j] - want[j]);
        if (!(d <= maxDiff)) maxDiff = d;
        if (Number.isNaN(d)) bad = true;
      }
      const got = i < greedyCases ? Array.from(await window.engine.generateIds(Uint32Array.from(c.prompt), { maxTokens: c.continuation.length, greedy: true })) : null;
      out.push({ name: c.name, maxDiff, bad, lengths: [logits.length, want.length], got, want: c.continuation });
    }
    return out;
  };
};

async function fixtureChecks(page, name, options, label, maxGreedy = Infinity) {
  const base = `${srv.origin}/models/${name}/`;
  const t0 = Date.now();
  const res = await page.evaluate(
    async ({ base, options, maxGreedy }) => {
      const progress = [];
      const report = await window.engine.load(base, (p) => progress.push(p), options);
      const cases = await window.runCases(base, maxGreedy ?? Infinity);
      return { report, progress, cases };
    },
    { base, options, maxGreedy: Number.isFinite(maxGreedy) ? maxGreedy : null },
  );
  timings[label] = (Date.now() - t0) / 1000;
  const r = res.report;
  console.log(`${label}: loaded ${r.bytes} bytes in ${r.seconds.toFixed(3)} s (${r.bytesFromCache} from cache), binding ${r.maxBindingBytes} bytes`);
  check(res.progress.some((p) => p.phase === 'weights' && p.loaded === p.total && p.total === r.bytes), `${label}: progress reaches the total`);
  let worst = 0;
  let genTokens = 0;
  let genMs = 0;
  for (const c of res.cases) {
    check(!c.bad && c.lengths[0] === c.lengths[1], `${label}/${c.name}: logits shape ${c.lengths[0]} = reference ${c.lengths[1]}`);
    check(c.maxDiff <= TOL, `${label}/${c.name}: max |dlogit| ${c.maxDiff.toExponential(2)} <= ${TOL}`);
    worst = Math.max(worst, c.maxDiff);
    if (c.got === null) continue;
    check(JSON.stringify(c.got) === JSON.stringify(c.want), `${label}/${c.name}: greedy ids ${JSON.stringify(c.got)} = reference`);
    genTokens += c.want.length;
    genMs += c.tGen;
  }
  console.log(`${label}: max |dlogit| ${worst.toExponential(3)}; greedy ${genTokens} tokens in ${(genMs / 1000).toFixed(2)} s (${((genTokens * 1000) / genMs).toFixed(1)} tok/s incl. prefill)`);
  return { report: r, worst, tokS: (genTokens * 1000) / genMs };
}

function modelRequests(from, name) {
  return srv.log.slice(from).filter((e) => e.path.startsWith(`/models/${name}/`) && !e.path.includes('/reference/'));
}

const summary = {};

// ---------------------------------------------------------------------------------------------
console.log('\n# module: fixtures, cache, errors');
{
  const t0 = Date.now();
  const { ctx } = await launch();
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' && !/404/.test(m.text())) console.log('  [page]', m.text()); });
  page.on('pageerror', (e) => console.log('  [page error]', e.message));
  const open = async () => {
    await page.goto(`${srv.origin}/tests/harness.html`);
    await page.waitForFunction(() => window.ready || window.initError, null, { timeout: 60000 });
    const initError = await page.evaluate(() => window.initError);
    if (initError) throw new Error('module init failed: ' + initError);
    await page.evaluate(helpers);
  };
  await open();
  const adapter = await page.evaluate(async () => {
    window.engine = await window.wgpt.Engine.create();
    return window.engine.adapter();
  });
  console.log(`adapter: ${adapter.name} (${adapter.backend}), binding limit ${adapter.limits.maxStorageBufferBindingSize}, features [${adapter.features.join(', ')}]`);
  summary.adapter = adapter;
  check(adapter.maxBindingBytes > 0 && adapter.limits.maxStorageBufferBindingSize > 0, 'Engine.create reports the adapter and its limits');

  await page.evaluate(() => window.wgpt.Engine.clearCache());
  let mark = srv.log.length;
  summary.first = await fixtureChecks(page, 'tiny', {}, 'tiny (whole tensors, first load)');
  const first = modelRequests(mark, 'tiny');
  check(first.some((e) => e.path.endsWith('/model.safetensors') && !e.range && e.status === 200), 'first load downloads model.safetensors');
  check(summary.first.report.bytesDownloaded > 0, `first load reports ${summary.first.report.bytesDownloaded} bytes downloaded`);

  // Reload the page: the model comes from Cache Storage; the server sees no model request.
  console.log('reloading the page');
  await open();
  console.log('reloaded');
  await page.evaluate(async () => { window.engine = await window.wgpt.Engine.create(); });
  console.log('engine created');
  mark = srv.log.length;
  summary.cached = await fixtureChecks(page, 'tiny', { maxBindingBytes: 8192 }, 'tiny (8 KiB bindings, after reload)', 10);
  const again = modelRequests(mark, 'tiny');
  check(again.length === 0, `reload: no request for the model's files reached the server (${again.map((e) => e.path).join(', ') || 'none'})`);
  check(summary.cached.report.bytesFromCache === summary.cached.report.bytes, 'reload: every weight byte came from the cache');
  check(summary.cached.report.maxBindingBytes === 8192, 'maxBindingBytes splits tensors to 8 KiB bindings');

  summary.sharded = await fixtureChecks(page, 'tiny-sharded', { maxBindingBytes: 6000 }, 'tiny-sharded (index + 3 shards, 6000-byte bindings)', 10);

  const cacheInfo = await page.evaluate(() => window.wgpt.Engine.cacheInfo());
  check(cacheInfo.bytes >= summary.first.report.bytes, `cacheInfo: ${cacheInfo.bytes} bytes cached`);

  // Errors.
  const loadError = (base, options) =>
    page.evaluate(async ({ base, options }) => {
      try {
        await window.engine.load(base, () => {}, options);
        return null;
      } catch (e) {
        return { isError: e instanceof Error, message: e.message };
      }
    }, { base, options });
  const missing = await loadError(`${srv.origin}/models/nowhere/`);
  check(missing && missing.isError && /config\.json/.test(missing.message), `missing model directory: ${missing && missing.message}`);
  const truncated = await loadError(`${srv.origin}/truncated/tiny/`, { cache: false });
  check(truncated && truncated.isError && /model\.safetensors/.test(truncated.message) && /invalid safetensors/.test(truncated.message), `truncated file: ${truncated && truncated.message}`);
  const badBinding = await loadError(`${srv.origin}/models/tiny/`, { maxBindingBytes: 16 });
  check(badBinding && badBinding.isError && /maxBindingBytes/.test(badBinding.message), `binding limit too small: ${badBinding && badBinding.message}`);
  const busy = await page.evaluate(async (base) => {
    const a = window.engine.load(base, () => {});
    try {
      await window.engine.logits(Uint32Array.from([1, 2]));
      return 'no error';
    } catch (e) {
      return e.message;
    } finally {
      await a;
    }
  }, `${srv.origin}/models/tiny/`);
  check(/busy/.test(busy), `a call during a load is refused: ${busy}`);
  const outOfVocab = await page.evaluate(async () => {
    try {
      await window.engine.logits(Uint32Array.from([1, 999999]));
      return 'no error';
    } catch (e) {
      return e.message;
    }
  });
  check(/out of range/.test(outOfVocab), `token id out of range: ${outOfVocab}`);

  // An interrupted download resumes with a Range request instead of starting over.
  mark = srv.log.length;
  const flaky = await page.evaluate(async (base) => {
    const warnings = [];
    const report = await window.engine.load(base, (p) => { if (p.phase === 'warning') warnings.push(p.message); }, { pieceBytes: 65536 });
    const cases = await window.runCases(base.replace('/flaky/', '/models/'), 10);
    return { report, warnings, cases };
  }, `${srv.origin}/flaky/tiny/`);
  const flakyLog = srv.log.slice(mark).filter((e) => e.path === '/flaky/tiny/model.safetensors');
  check(flakyLog.some((e) => e.cut), 'the flaky server cut the first download');
  check(flakyLog.some((e) => e.range && e.range !== 'bytes=0-65535' && e.status === 206), `resumed with ${flakyLog.filter((e) => e.range).map((e) => e.range).join(', ')}`);
  check(flaky.warnings.some((w) => /interrupted/.test(w)), `the page is told: ${flaky.warnings[0]}`);
  check(flaky.cases.every((c) => c.maxDiff <= TOL && (c.got === null || JSON.stringify(c.got) === JSON.stringify(c.want))), 'resumed download gives the right logits and ids');

  // A download that keeps failing ends in a clear error; loading again after the network is back
  // takes the pieces already cached and asks only for the rest.
  const failed = await loadError(`${srv.origin}/broken/tiny/`, { pieceBytes: 65536 });
  check(failed && /stopped at .* load again to resume/.test(failed.message), `a download that keeps failing: ${failed && failed.message}`);
  await page.evaluate((u) => fetch(u), `${srv.origin}/control/heal`);
  mark = srv.log.length;
  const resumed = await page.evaluate(async (base) => {
    const report = await window.engine.load(base, () => {}, { pieceBytes: 65536 });
    const cases = await window.runCases(base.replace('/broken/', '/models/'), 10);
    return { report, cases };
  }, `${srv.origin}/broken/tiny/`);
  const resumeLog = srv.log.slice(mark).filter((e) => e.path === '/broken/tiny/model.safetensors');
  // Every request starts at a piece boundary (the first byte not cached at that moment; a plain
  // GET starts at 0) and none repeats an offset. (Chromium drops the body of a connection that
  // breaks, so the failed load may have cached nothing; the header read of the new load then
  // caches the pieces its first network chunk covers: one piece, or the whole file when the
  // loopback delivers it in one chunk.)
  const starts = resumeLog.map((e) => (e.range ? Number(/bytes=(\d+)-/.exec(e.range)[1]) : 0));
  check(starts.every((b) => b % 65536 === 0) && new Set(starts).size === starts.length,
    `loading again asks only for the bytes after the cached pieces: from bytes ${starts.join(', ')} (${resumeLog.map((e) => e.range || 'header read').join(', ')})`);
  check(resumed.report.bytesFromCache > 0 && resumed.report.bytesFromCache + resumed.report.bytesDownloaded === resumed.report.bytes,
    `${resumed.report.bytesFromCache} bytes from the cache, ${resumed.report.bytesDownloaded} downloaded, of ${resumed.report.bytes}`);
  check(resumed.cases.every((c) => c.maxDiff <= TOL && (c.got === null || JSON.stringify(c.got) === JSON.stringify(c.want))), 'the resumed model gives the right logits and ids');

  await page.evaluate(() => window.wgpt.Engine.clearCache());
  const cleared = await page.evaluate(() => window.wgpt.Engine.cacheInfo());
  check(cleared.bytes === 0, `clearCache empties the cache (${cleared.bytes} bytes left)`);
  const badKv = await loadError(`${srv.origin}/models/tiny/`, { kvCache: 'f8' });
  check(badKv && badKv.isError && /kvCache/.test(badKv.message) && /f16/.test(badKv.message), `unknown KV cache type: ${badKv && badKv.message}`);
  await ctx.close();
  timings['module tests'] = (Date.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
console.log('\n# module: GGUF files');
{
  const t0 = Date.now();
  const { ctx } = await launch();
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' && !/404/.test(m.text())) console.log('  [page]', m.text()); });
  page.on('pageerror', (e) => console.log('  [page error]', e.message));
  const open = async () => {
    await page.goto(`${srv.origin}/tests/harness.html`);
    await page.waitForFunction(() => window.ready || window.initError, null, { timeout: 60000 });
    const initError = await page.evaluate(() => window.initError);
    if (initError) throw new Error('module init failed: ' + initError);
    await page.evaluate(helpers);
    await page.evaluate(async () => { window.engine = await window.wgpt.Engine.create(); });
  };
  await open();
  await page.evaluate(() => window.wgpt.Engine.clearCache());
  const dir = `${srv.origin}/models/gguf-tiny/`;
  const ggufRequests = (from, file) => srv.log.slice(from).filter((e) => e.path === `/models/gguf-tiny/${file}`);
  const fileSize = (file) => fs.statSync(path.join(models['gguf-tiny'], file)).size;
  const ggufChecks = async (source, name, options, label, greedyCases) => {
    const t = Date.now();
    const res = await page.evaluate(
      async ({ source, dir, name, options, greedyCases }) => {
        const progress = [];
        let src = source;
        if (source === 'file') {
          // A File object, as from the file picker.
          const buf = await (await fetch(dir + name + '.gguf')).arrayBuffer();
          src = [new File([buf], name + '.gguf')];
        }
        const report = await window.engine.load(src, (p) => progress.push(p), options);
        const cases = await window.runGgufCases(dir, name, greedyCases ?? Infinity);
        return { report, progress, cases };
      },
      { source, dir, name, options, greedyCases: Number.isFinite(greedyCases) ? greedyCases : null },
    );
    timings[label] = (Date.now() - t) / 1000;
    const r = res.report;
    console.log(`${label}: ${r.format} ${r.architecture}, ${r.bytes} bytes in ${r.seconds.toFixed(3)} s (${r.bytesFromCache} from cache), header read from ${r.headerBytes} bytes, binding ${r.maxBindingBytes} bytes`);
    check(r.format === 'gguf' && r.files[0] === `${name}.gguf` && r.bytes === fileSize(`${name}.gguf`) && r.hasTokenizer, `${label}: report names the GGUF file, its ${r.bytes} bytes and its tokenizer`);
    check(res.progress.some((p) => p.phase === 'weights' && p.loaded === p.total && p.total === r.bytes), `${label}: progress reaches the total`);
    let worst = 0;
    for (const c of res.cases) {
      check(!c.bad && c.lengths[0] === c.lengths[1], `${label}/${c.name}: logits shape ${c.lengths[0]} = reference ${c.lengths[1]}`);
      check(c.maxDiff <= TOL, `${label}/${c.name}: max |dlogit| ${c.maxDiff.toExponential(2)} <= ${TOL}`);
      worst = Math.max(worst, c.maxDiff);
      if (c.got !== null) check(JSON.stringify(c.got) === JSON.stringify(c.want), `${label}/${c.name}: greedy ids ${JSON.stringify(c.got)} = reference`);
    }
    return { report: r, worst };
  };

  // Over HTTP, with a small first read so that the header takes more than one request.
  let mark = srv.log.length;
  const llama = await ggufChecks(`${dir}llama-q8.gguf`, 'llama-q8', { headBytes: 2048 }, 'gguf llama-q8 (whole tensors, 2 KiB first header read)');
  const llamaLog = ggufRequests(mark, 'llama-q8.gguf');
  check(llamaLog[0] && llamaLog[0].range === 'bytes=0-2047' && llamaLog[0].status === 206, `the header read starts with a Range request (${llamaLog.map((e) => e.range || 'whole file').join(', ')})`);
  check(llama.report.architecture === 'llama' && llama.report.headerBytes > 2048, `the header needed more than the first read: ${llama.report.headerBytes} bytes`);
  check(llamaLog.filter((e) => !e.range).length === 1 && llama.report.bytesDownloaded === llama.report.bytes, 'the whole file is downloaded once; every header read is a Range request');
  const qwen = await ggufChecks(`${dir}qwen3.gguf`, 'qwen3', { maxBindingBytes: 8192 }, 'gguf qwen3 (8 KiB bindings)', 1);
  check(qwen.report.architecture === 'qwen3' && qwen.report.maxBindingBytes === 8192, 'qwen3 loads with 8 KiB bindings');

  // Reload: both come from the cache.
  await open();
  mark = srv.log.length;
  const cached = await ggufChecks(`${dir}llama-q8.gguf`, 'llama-q8', { maxBindingBytes: 8192 }, 'gguf llama-q8 (8 KiB bindings, after reload)', 1);
  const again = ggufRequests(mark, 'llama-q8.gguf');
  check(again.length === 0, `reload: no request for the GGUF file reached the server (${again.map((e) => e.range || 'whole file').join(', ') || 'none'})`);
  check(cached.report.bytesFromCache === cached.report.bytes, 'reload: every byte came from the cache');

  // A local File; then a chat on it.
  const local = await ggufChecks('file', 'qwen3', {}, 'gguf qwen3 (File object)', 0);
  check(/local file qwen3\.gguf/.test(local.report.source), `File source: ${local.report.source}`);
  const chat = await page.evaluate(async () => {
    const events = [];
    const usage = await window.engine.chat({ messages: [{ role: 'user', content: 'Hello there' }], maxTokens: 6, greedy: true }, (e) => events.push(e));
    return { events, usage };
  });
  const last = chat.events[chat.events.length - 1];
  const deltas = chat.events.filter((e) => e.type === 'delta');
  check(chat.events.slice(0, -1).every((e) => e.type === 'delta' && e.channel === 'final' && typeof e.text === 'string'), `chat: ${deltas.length} answer deltas on the final channel (${JSON.stringify(deltas.map((e) => e.text).join('').slice(0, 40))})`);
  check(last && last.type === 'usage' && JSON.stringify(last.usage) === JSON.stringify(chat.usage), 'chat: ends with the usage record it resolves to');
  check(chat.usage.promptTokens > 0 && chat.usage.generatedTokens > 0 && chat.usage.generatedTokens <= 6 && ['stop', 'length'].includes(chat.usage.finish), `chat usage: ${chat.usage.promptTokens} prompt tokens, ${chat.usage.generatedTokens} generated, finish ${chat.usage.finish}`);

  // A cut-off file is refused with its name in the message.
  const truncated = await page.evaluate(async (url) => {
    try {
      await window.engine.load(url, () => {}, { cache: false });
      return null;
    } catch (e) {
      return e.message;
    }
  }, `${srv.origin}/truncated/gguf-tiny/llama-q8.gguf`);
  check(truncated && /llama-q8\.gguf/.test(truncated), `truncated GGUF file: ${truncated}`);
  summary.gguf = { worst: Math.max(llama.worst, qwen.worst, cached.worst, local.worst) };
  console.log(`gguf: max |dlogit| ${summary.gguf.worst.toExponential(3)}`);
  await page.evaluate(() => window.wgpt.Engine.clearCache());
  await ctx.close();
  timings['gguf tests'] = (Date.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
console.log('\n# page: chat in a worker');
if (!fs.existsSync(path.join(models.final, 'model.safetensors'))) {
  console.log(`  FAIL chat models missing in ${chatModels}: cargo run --example scripted_chat_model -- ${chatModels}`);
  failures++;
} else {
  const t0 = Date.now();
  const { ctx } = await launch();
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 1200, height: 800 });
  page.on('pageerror', (e) => console.log('  [page error]', e.message));
  await page.goto(`${srv.origin}/`);
  await page.waitForFunction(() => /GPU:|Cannot run/.test(document.getElementById('adapter').textContent), null, { timeout: 60000 });
  const adapterText = await page.textContent('#adapter');
  check(/^GPU: /.test(adapterText), `page shows the adapter: ${adapterText}`);

  const loadModel = async (name) => {
    await page.fill('#url', `/models/${name}/`);
    await page.click('#load-url');
    await page.waitForFunction(() => /Loaded|failed/.test(document.getElementById('load-status').textContent), null, { timeout: 120000 });
    return page.textContent('#load-status');
  };
  const tLoad = Date.now();
  const status = await loadModel('final');
  timings['page: load 51 MB chat model'] = (Date.now() - tLoad) / 1000;
  check(/^Loaded/.test(status), `page loads the model: ${status.split('\n')[0]}`);
  check(Number(await page.getAttribute('#progress', 'value')) === 1, 'progress bar is full');
  check(/cached/.test(await page.textContent('#cache-status')), `cache status: ${await page.textContent('#cache-status')}`);

  // Type a message; the answer streams; stop it.
  await page.fill('#temperature', '0');
  await page.fill('#input', 'Say hello');
  await page.click('#send');
  await page.waitForFunction(() => (document.querySelector('.msg.assistant .final')?.textContent || '').includes('Hello from wgpt!'), null, { timeout: 120000 });
  const early = await page.textContent('.msg.assistant .final');
  await page.waitForFunction((n) => (document.querySelector('.msg.assistant .final')?.textContent || '').length > n + 10, early.length, { timeout: 120000 });
  const later = await page.textContent('.msg.assistant .final');
  check(later.startsWith(early) && later.length > early.length, `the answer streams: ${JSON.stringify(later.slice(0, 60))}…`);
  check(await page.isEnabled('#stop'), 'stop is enabled while answering');
  await page.click('#stop');
  await page.waitForFunction(() => /tok\/s/.test(document.getElementById('stats').textContent) && !/generating/.test(document.getElementById('stats').textContent), null, { timeout: 60000 });
  const stats = await page.textContent('#stats');
  check(/stopped/.test(stats), `stop ends the answer: ${stats}`);
  check(!(await page.isEnabled('#stop')) && (await page.isEnabled('#send')), 'after stop: send enabled, stop disabled');
  const afterStop = await page.textContent('.msg.assistant .final');
  await page.waitForTimeout(500);
  check((await page.textContent('.msg.assistant .final')) === afterStop, 'no text arrives after stop');
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, 'chat.png') });
  console.log(`  screenshot: ${path.join(artifacts, 'chat.png')}`);

  // Reasoning goes to a collapsible block.
  const status2 = await loadModel('analysis');
  check(/^Loaded/.test(status2), 'page loads the reasoning model');
  await page.fill('#input', 'Think about colours');
  await page.click('#send');
  await page.waitForFunction(() => (document.querySelector('details.reasoning .text')?.textContent || '').includes('colours'), null, { timeout: 120000 });
  await page.click('#stop');
  await page.waitForFunction(() => /stopped/.test(document.getElementById('stats').textContent), null, { timeout: 60000 });
  const reasoning = await page.textContent('details.reasoning .text');
  check(/Thinking about colours/.test(reasoning), `reasoning shown in its block: ${JSON.stringify(reasoning.slice(0, 50))}…`);
  check((await page.textContent('.msg.assistant .final')) === '', 'no reasoning text leaks into the answer');
  await page.click('details.reasoning summary');
  await page.screenshot({ path: path.join(artifacts, 'reasoning.png') });

  // A GGUF file by `?model=` (the link `wgpt web --model FILE.gguf` prints).
  await page.goto(`${srv.origin}/?model=/models/gguf-tiny/qwen3.gguf`);
  await page.waitForFunction(() => /GPU:|Cannot run/.test(document.getElementById('adapter').textContent), null, { timeout: 60000 });
  check((await page.inputValue('#url')) === '/models/gguf-tiny/qwen3.gguf', '?model= fills in the URL field');
  check((await page.getAttribute('#gguf', 'accept')) === '.gguf', 'a file picker takes .gguf files');
  await page.click('#load-url');
  await page.waitForFunction(() => /Loaded|failed/.test(document.getElementById('load-status').textContent), null, { timeout: 120000 });
  const ggufStatus = await page.textContent('#load-status');
  check(/^Loaded .*qwen3 \(GGUF\), 2 layers, vocab 300/.test(ggufStatus), `page loads a GGUF file: ${ggufStatus.split('\n')[0]}`);
  check(await page.isDisabled('#effort'), 'reasoning effort is off for a GGUF model');
  await ctx.close();
  timings['page tests'] = (Date.now() - t0) / 1000;
}

await srv.close();
console.log('\ntimings (s):', JSON.stringify(timings));
if (summary.first) {
  console.log(`fixture load: ${summary.first.report.seconds.toFixed(3)} s over the network, ${summary.cached.report.seconds.toFixed(3)} s from the cache; greedy ${summary.first.tokS.toFixed(1)} tok/s; max |dlogit| ${Math.max(summary.first.worst, summary.cached.worst, summary.sharded.worst).toExponential(3)}`);
}
if (failures) {
  console.log(`\n${failures} check(s) FAILED`);
  process.exit(1);
}
console.log('\nall browser checks passed');
