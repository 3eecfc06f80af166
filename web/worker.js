// The engine runs here, off the page's main thread. Messages in: {id, op, args}; out:
// {id, type: 'result' | 'error' | 'progress' | 'event', data}.
import init, { Engine } from './pkg/wgpt.js';

let engine = null;
const ready = init();

function post(id, type, data) {
  self.postMessage({ id, type, data });
}

const ops = {
  async create(args) {
    engine = await Engine.create(args || undefined);
    return engine.adapter();
  },
  async load(args, id) {
    if (!engine) throw new Error('WebGPU is not ready');
    return await engine.load(args.source, (p) => post(id, 'progress', p), args.options || undefined);
  },
  async chat(args, id) {
    if (!engine) throw new Error('no engine');
    return await engine.chat(args, (e) => post(id, 'event', e));
  },
  abort() {
    if (engine) engine.abort();
    return true;
  },
  cacheInfo: () => Engine.cacheInfo(),
  clearCache: () => Engine.clearCache(),
};

self.onmessage = async (ev) => {
  const { id, op, args } = ev.data;
  try {
    await ready;
    const f = ops[op];
    if (!f) throw new Error(`unknown operation ${op}`);
    post(id, 'result', await f(args, id));
  } catch (e) {
    post(id, 'error', String((e && e.message) || e));
  }
};
