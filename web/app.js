// The page: talks to the engine in worker.js, so loading and generation never block the UI.

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map();

worker.onmessage = (ev) => {
  const { id, type, data } = ev.data;
  const p = pending.get(id);
  if (!p) return;
  if (type === 'result') {
    pending.delete(id);
    p.resolve(data);
  } else if (type === 'error') {
    pending.delete(id);
    p.reject(new Error(data));
  } else if (p.on) {
    p.on(type, data);
  }
};

function call(op, args, on) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, on });
    worker.postMessage({ id, op, args });
  });
}

const fmtBytes = (n) => (n >= 1 << 30 ? (n / (1 << 30)).toFixed(2) + ' GiB' : (n / (1 << 20)).toFixed(1) + ' MiB');
const state = { ready: false, loaded: false, busy: false, history: [] };

function setStatus(el, text, error = false) {
  el.textContent = text;
  el.classList.toggle('error', error);
}

function refreshControls() {
  const canChat = state.loaded && !state.busy;
  $('input').disabled = !state.loaded;
  $('send').disabled = !canChat;
  $('stop').disabled = !state.busy;
  $('load-url').disabled = !state.ready || state.busy;
  $('folder').disabled = !state.ready || state.busy;
  $('gguf').disabled = !state.ready || state.busy;
  $('input').placeholder = state.loaded ? 'Ask something (Enter sends, Shift+Enter for a new line)' : 'Load a model, then ask something';
}

async function refreshCache() {
  try {
    const info = await call('cacheInfo');
    const quota = info.quota ? ` of ${fmtBytes(info.quota)} available to this site` : '';
    setStatus($('cache-status'), `${fmtBytes(info.bytes)} of model files cached (${info.files.length} files)${quota}`);
  } catch (e) {
    setStatus($('cache-status'), `cache unavailable: ${e.message}`, true);
  }
}

async function start() {
  try {
    const a = await call('create');
    const limit = fmtBytes(a.limits.maxStorageBufferBindingSize);
    const soft = a.browser && a.browser.isFallback ? ', software fallback: slow' : '';
    $('adapter').textContent = `GPU: ${a.name}${soft} (WebGPU) · binding limit ${limit} · buffer limit ${fmtBytes(a.limits.maxBufferSize)}${a.features.includes('SHADER_F16') ? ' · f16' : ''}`;
    state.ready = true;
  } catch (e) {
    $('adapter').textContent = `Cannot run here: ${e.message}`;
    $('adapter').classList.add('bad');
  }
  refreshControls();
  refreshCache();
}

async function load(source, label) {
  state.busy = true;
  state.loaded = false;
  refreshControls();
  const bar = $('progress');
  bar.hidden = false;
  bar.value = 0;
  const status = $('load-status');
  setStatus(status, `Loading ${label}…`);
  const t0 = performance.now();
  const warnings = [];
  try {
    const r = await call('load', { source, options: loadOptions }, (type, p) => {
      if (p.phase === 'warning') {
        warnings.push(p.message);
        setStatus(status, p.message);
      } else if (p.phase === 'weights' && p.total) {
        bar.value = p.loaded / p.total;
        const secs = (performance.now() - t0) / 1000;
        setStatus(status, `${p.file}: ${fmtBytes(p.loaded)} of ${fmtBytes(p.total)} (${(p.loaded / (1 << 20) / secs).toFixed(1)} MiB/s)`);
      }
    });
    bar.value = 1;
    state.loaded = true;
    // Reasoning effort is a harmony setting: chat templates of GGUF models have none.
    $('effort').disabled = r.format === 'gguf';
    $('effort').title = r.format === 'gguf' ? 'not used by this model (its chat template has no reasoning effort)' : '';
    const cached = r.bytesFromCache ? `, ${fmtBytes(r.bytesFromCache)} from the cache` : '';
    setStatus(
      status,
      `Loaded ${label}: ${r.format === 'gguf' ? `${r.architecture} (GGUF), ` : ''}${r.layers} layers, ${r.experts ? `${r.experts} experts, ` : ''}vocab ${r.vocabSize}, ${fmtBytes(r.bytes)} in ${r.seconds.toFixed(1)} s${cached}` +
        (r.hasTokenizer ? '' : '\nNo tokenizer.json: chat is unavailable for this model.') +
        (warnings.length ? '\n' + warnings.join('\n') : ''),
      false,
    );
    newChat();
  } catch (e) {
    setStatus(status, `Load failed: ${e.message}`, true);
  } finally {
    state.busy = false;
    refreshControls();
    refreshCache();
  }
}

function newChat() {
  state.history = [];
  $('messages').textContent = '';
  $('stats').textContent = '';
}

function bubble(role) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  $('messages').append(div);
  return div;
}

async function send(text) {
  state.history.push({ role: 'user', content: text });
  bubble('user').textContent = text;
  const box = bubble('assistant');
  const details = document.createElement('details');
  details.className = 'reasoning';
  details.hidden = true;
  details.innerHTML = '<summary>Reasoning</summary><div class="text"></div>';
  const reasoning = details.querySelector('.text');
  const final = document.createElement('div');
  final.className = 'final';
  box.append(details, final);
  const note = document.createElement('div');
  note.className = 'note';
  state.busy = true;
  refreshControls();
  let answer = '';
  const request = {
    messages: state.history,
    reasoningEffort: $('effort').value,
    instructions: $('instructions').value || undefined,
    temperature: Number($('temperature').value),
    topP: Number($('top-p').value),
    topK: Number($('top-k').value),
    maxTokens: Number($('max-tokens').value),
  };
  const started = performance.now();
  let tokens = 0;
  try {
    const usage = await call('chat', request, (type, e) => {
      if (e.type === 'delta') {
        tokens++;
        if (e.channel === 'analysis') {
          details.hidden = false;
          reasoning.textContent += e.text;
        } else if (e.channel === 'final') {
          answer += e.text;
          final.textContent = answer;
        }
        const secs = (performance.now() - started) / 1000;
        $('stats').textContent = `generating… ${(tokens / secs).toFixed(1)} tok/s`;
      } else if (e.type === 'toolCall') {
        final.textContent += `\n[tool call to ${e.recipient}: ${e.arguments}]`;
      }
      $('messages').scrollTop = $('messages').scrollHeight;
    });
    state.history.push({ role: 'assistant', content: answer });
    const why = { stop: '', length: ' · stopped at max tokens', aborted: ' · stopped' }[usage.finish] || '';
    $('stats').textContent =
      `${usage.generatedTokens} tokens · ${usage.tokensPerSecond.toFixed(1)} tok/s · prompt ${usage.promptTokens} tokens ` +
      `(${usage.cachedTokens} cached) in ${usage.timeToFirstToken.toFixed(2)} s${why}`;
    note.textContent = usage.finish === 'aborted' ? 'stopped' : '';
    if (note.textContent) box.append(note);
  } catch (e) {
    state.history.pop();
    final.textContent = answer;
    note.textContent = `error: ${e.message}`;
    box.append(note);
  } finally {
    // A stopped answer that never left the reasoning shows no empty answer line.
    if (!answer && reasoning.textContent) final.hidden = true;
    state.busy = false;
    refreshControls();
  }
}

// `?model=URL` (printed by `wgpt web` for a .gguf file) fills in the model's URL; `?kv=f16`
// keeps the KV cache in f16.
const query = new URLSearchParams(location.search);
const asked = query.get('model');
if (asked) $('url').value = asked;
const loadOptions = query.get('kv') ? { kvCache: query.get('kv') } : undefined;

$('load-url').onclick = () => {
  const url = new URL($('url').value.trim() || 'model/', location.href).toString();
  load(url, url);
};
$('folder').onchange = (ev) => {
  const files = Array.from(ev.target.files);
  if (files.length) load(files, `${files.length} local files`);
};
$('gguf').onchange = (ev) => {
  const files = Array.from(ev.target.files);
  if (files.length) load(files, files[0].name);
};
const drop = $('drop');
drop.ondragover = (ev) => {
  ev.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (ev) => {
  ev.preventDefault();
  drop.classList.remove('over');
  const files = Array.from(ev.dataTransfer.files);
  if (files.length && state.ready && !state.busy) load(files, `${files.length} dropped files`);
};
$('clear-cache').onclick = async () => {
  await call('clearCache');
  refreshCache();
};
$('composer').onsubmit = (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text || state.busy || !state.loaded) return;
  $('input').value = '';
  send(text);
};
$('input').onkeydown = (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
};
$('stop').onclick = () => call('abort');
$('new-chat').onclick = () => {
  if (!state.busy) newChat();
};
for (const [id, digits] of [['temperature', 2], ['top-p', 2]]) {
  $(id).oninput = () => ($(`${id}-out`).textContent = Number($(id).value).toFixed(digits));
}

start();
