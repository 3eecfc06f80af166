// Model files for the wasm engine: from a base URL (streamed with fetch, kept in Cache Storage
// in pieces so that a reload or an interrupted download does not start over) or from File
// objects (a folder picker or drag-and-drop). A single GGUF file (a URL or a File whose name ends
// in .gguf) is a source too: its `gguf` property names the file. Bundled into the package by
// wasm-bindgen.

const CACHE_NAME = 'wgpt-models-v1';
const DEFAULT_PIECE = 32 << 20;
const RETRIES = 4;

function mib(n) {
  return (n / 1048576).toFixed(1) + ' MiB';
}

function pieceKey(url, i) {
  const u = new URL(url);
  u.searchParams.set('wgpt-piece', String(i));
  return u.toString();
}

function absentKey(url) {
  const u = new URL(url);
  u.searchParams.set('wgpt-absent', '1');
  return u.toString();
}

function metaKey(url) {
  const u = new URL(url);
  u.searchParams.set('wgpt-meta', '1');
  return u.toString();
}

async function openCache() {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch (e) {
    return null;
  }
}

function isQuota(e) {
  return e && (e.name === 'QuotaExceededError' || /quota/i.test(String(e.message)));
}

function httpError(url, resp) {
  return new Error(`${url}: HTTP ${resp.status} ${resp.statusText || ''}`.trim());
}

class UrlSource {
  constructor(base, options, notify) {
    this.base = base.endsWith('/') ? base : base + '/';
    this.useCache = options.cache !== false;
    this.pieceBytes = options.pieceBytes || DEFAULT_PIECE;
    this.notify = notify;
    this.cache = null;
    this.cacheBroken = false;
  }

  describe() {
    return this.single || this.base;
  }

  url(name) {
    if (this.single && name === this.gguf) return this.single;
    return new URL(name, new URL(this.base, globalThis.location ? globalThis.location.href : undefined)).toString();
  }

  async init() {
    if (this.useCache) this.cache = await openCache();
    if (this.cache && navigator.storage && navigator.storage.persist) {
      navigator.storage.persist().catch(() => {});
    }
  }

  async cachePut(key, body, headers) {
    if (!this.cache || this.cacheBroken) return false;
    try {
      await this.cache.put(key, new Response(body, { headers }));
      return true;
    } catch (e) {
      this.cacheBroken = true;
      const why = isQuota(e)
        ? 'the browser refused more storage (quota exceeded); free space or clear the cache'
        : `caching failed: ${e.message}`;
      this.notify({ phase: 'warning', message: `${why}. Loading goes on without caching the rest.` });
      return false;
    }
  }

  async fetchOk(url, init) {
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      throw new Error(`${url}: network error (${e.message})`);
    }
    return resp;
  }

  // Whole small file (config.json, tokenizer.json, the index), cached as one piece; null on 404
  // (remembered too, so a reload asks the server nothing).
  async bytes(name) {
    const url = this.url(name);
    if (this.cache) {
      const hit = await this.cache.match(url);
      if (hit) return new Uint8Array(await hit.arrayBuffer());
      if (name !== 'config.json' && (await this.cache.match(absentKey(url)))) return null;
    }
    const resp = await this.fetchOk(url);
    if (resp.status === 404) {
      if (name !== 'config.json') await this.cachePut(absentKey(url), '', { 'content-length': '0' });
      return null;
    }
    if (!resp.ok) throw httpError(url, resp);
    const buf = new Uint8Array(await resp.arrayBuffer());
    await this.cachePut(url, buf, { 'content-length': String(buf.length) });
    return buf;
  }

  async meta(url) {
    if (this.cache) {
      const hit = await this.cache.match(metaKey(url));
      if (hit) return await hit.json();
    }
    return null;
  }

  // Size of a file and its first `n` bytes (for the safetensors header).
  async head(name, n) {
    const file = await this.open(name, { headOnly: n });
    return file;
  }

  async open(name, { headOnly } = {}) {
    const url = this.url(name);
    let meta = await this.meta(url);
    let resp = null;
    if (!meta) {
      const init = headOnly ? { headers: { Range: `bytes=0-${headOnly - 1}` } } : undefined;
      resp = await this.fetchOk(url, init);
      if (resp.status === 404) throw new Error(`${url}: HTTP 404 Not Found (the model directory has no ${name})`);
      if (!resp.ok) throw httpError(url, resp);
      let size = null;
      const range = resp.headers.get('content-range');
      if (resp.status === 206 && range && /\/(\d+)$/.test(range)) size = Number(range.match(/\/(\d+)$/)[1]);
      else if (resp.status === 200 && resp.headers.get('content-length')) size = Number(resp.headers.get('content-length'));
      if (size === null) throw new Error(`${url}: the server sent no Content-Length, so the download cannot be checked`);
      meta = { size, pieceBytes: this.pieceBytes };
      await this.cachePut(metaKey(url), JSON.stringify(meta), { 'content-type': 'application/json' });
      if (resp.status === 206) {
        // Only the head was asked for: read it and let the body stream start later.
        const head = new Uint8Array(await resp.arrayBuffer());
        return { size, head };
      }
    }
    if (headOnly && !resp && headOnly < Math.min(meta.pieceBytes, meta.size) && !(this.cache && (await this.cache.match(pieceKey(url, 0))))) {
      // A longer head than the first read (a GGUF header that goes on), less than a piece: ask
      // for just those bytes rather than start the whole file.
      const r = await this.fetchOk(url, { headers: { Range: `bytes=0-${headOnly - 1}` } });
      if (!r.ok) throw httpError(url, r);
      const head = new Uint8Array(await r.arrayBuffer());
      return { size: meta.size, head: head.subarray(0, headOnly) };
    }
    const stream = new UrlStream(this, url, meta, resp);
    if (headOnly) {
      const head = await stream.readAtLeast(Math.min(headOnly, meta.size));
      await stream.cancel();
      return { size: meta.size, head };
    }
    return stream;
  }
}

// One file read in order: cached pieces first, then the network from the first missing byte.
class UrlStream {
  constructor(src, url, meta, resp) {
    this.src = src;
    this.url = url;
    this.size = meta.size;
    this.piece = meta.pieceBytes;
    this.pos = 0;
    this.resp = resp;
    this.reader = null;
    this.skip = 0;
    this.parts = [];
    this.partBytes = 0;
    this.fromCache = 0;
    this.downloaded = 0;
  }

  pieceLen(i) {
    return Math.min(this.piece, this.size - i * this.piece);
  }

  async startNetwork() {
    let attempt = 0;
    for (;;) {
      try {
        if (!this.resp) {
          const init = this.pos > 0 ? { headers: { Range: `bytes=${this.pos}-` } } : undefined;
          const resp = await this.src.fetchOk(this.url, init);
          if (!resp.ok) throw httpError(this.url, resp);
          this.resp = resp;
          // A server that ignores Range sends the file from the start.
          this.skip = resp.status === 200 ? this.pos : 0;
        }
        this.reader = this.resp.body.getReader();
        return;
      } catch (e) {
        this.resp = null;
        if (/HTTP 4\d\d/.test(e.message)) throw e;
        if (++attempt > RETRIES) throw this.stopped(e.message);
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  }

  stopped(why) {
    const kept = this.src.cache && !this.src.cacheBroken ? 'The part already received is cached: load again to resume.' : 'Load again to retry.';
    return new Error(`download of ${this.url} stopped at ${mib(this.pos)} of ${mib(this.size)} (${why}). ${kept}`);
  }

  async readAtLeast(n) {
    const chunks = [];
    let got = 0;
    while (got < n) {
      const c = await this.read();
      if (!c) break;
      chunks.push(c);
      got += c.length;
    }
    const out = new Uint8Array(got);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  async cancel() {
    if (this.reader) {
      try {
        await this.reader.cancel();
      } catch (e) {
        /* already closed */
      }
    }
    this.reader = null;
    this.resp = null;
  }

  // The next bytes of the file, or null at its end.
  async read() {
    if (this.pos >= this.size) return null;
    const i = Math.floor(this.pos / this.piece);
    if (!this.reader && !this.resp && this.pos === i * this.piece && this.src.cache) {
      const hit = await this.src.cache.match(pieceKey(this.url, i));
      if (hit) {
        const buf = new Uint8Array(await hit.arrayBuffer());
        if (buf.length === this.pieceLen(i)) {
          this.pos += buf.length;
          this.fromCache += buf.length;
          return buf;
        }
      }
    }
    if (!this.reader) await this.startNetwork();
    let attempt = 0;
    for (;;) {
      let r;
      try {
        r = await this.reader.read();
      } catch (e) {
        r = { error: e };
      }
      if (r.error || r.done) {
        if (r.done && this.pos >= this.size) return null;
        // Interrupted: resume from the first byte not yet received.
        const why = r.error ? r.error.message : 'the connection closed early';
        this.reader = null;
        this.resp = null;
        if (++attempt > RETRIES) throw this.stopped(why);
        this.src.notify({ phase: 'warning', message: `download interrupted (${why}); resuming at ${mib(this.pos)}` });
        await new Promise((res) => setTimeout(res, 250 * attempt));
        await this.startNetwork();
        continue;
      }
      let value = r.value;
      if (this.skip > 0) {
        const drop = Math.min(this.skip, value.length);
        this.skip -= drop;
        value = value.subarray(drop);
        if (value.length === 0) continue;
      }
      if (value.length > this.size - this.pos) value = value.subarray(0, this.size - this.pos);
      await this.keep(value);
      this.pos += value.length;
      this.downloaded += value.length;
      return value;
    }
  }

  // Collects network bytes into pieces and stores each complete piece in the cache.
  async keep(value) {
    if (!this.src.cache || this.src.cacheBroken) return;
    let v = value;
    while (v.length > 0) {
      const at = this.pos + (value.length - v.length);
      const i = Math.floor(at / this.piece);
      const end = Math.min((i + 1) * this.piece, this.size);
      const take = Math.min(v.length, end - at);
      if (this.partBytes === 0 && at !== i * this.piece) {
        // Joined in the middle of a piece (resumed off a boundary): it cannot be cached whole.
        v = v.subarray(take);
        continue;
      }
      this.parts.push(v.slice(0, take));
      this.partBytes += take;
      v = v.subarray(take);
      if (at + take === end) {
        const blob = new Blob(this.parts);
        this.parts = [];
        this.partBytes = 0;
        await this.src.cachePut(pieceKey(this.url, i), blob, { 'content-length': String(blob.size) });
      }
    }
  }
}

class FileSource {
  constructor(files) {
    this.files = new Map();
    for (const f of files) {
      const name = f.name;
      if (!this.files.has(name)) this.files.set(name, f);
    }
  }

  describe() {
    return this.gguf ? `local file ${this.gguf}` : `${this.files.size} local files`;
  }

  async init() {}

  async bytes(name) {
    const f = this.files.get(name);
    if (!f) return null;
    return new Uint8Array(await f.arrayBuffer());
  }

  file(name) {
    const f = this.files.get(name);
    if (!f) throw new Error(`${name} is missing from the chosen files (${[...this.files.keys()].join(', ')})`);
    return f;
  }

  async head(name, n) {
    const f = this.file(name);
    return { size: f.size, head: new Uint8Array(await f.slice(0, n).arrayBuffer()) };
  }

  async open(name) {
    const f = this.file(name);
    const reader = f.stream().getReader();
    let pos = 0;
    return {
      size: f.size,
      fromCache: 0,
      downloaded: 0,
      async read() {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          throw new Error(`${name}: reading the local file failed after ${mib(pos)} (${e.message})`);
        }
        if (r.done) return null;
        pos += r.value.length;
        return r.value;
      },
    };
  }
}

function isGguf(name) {
  return /\.gguf$/i.test(name);
}

// `source`: a base URL string, the URL of a .gguf file, or an array / FileList of File objects.
export async function openSource(source, options, notify) {
  options = options || {};
  notify = notify || (() => {});
  let src;
  if (typeof source === 'string' || source instanceof URL) {
    const text = String(source);
    const u = new URL(text, globalThis.location ? globalThis.location.href : undefined);
    if (isGguf(u.pathname)) {
      // One file: the directory is its base, and the file keeps its full URL (query included).
      src = new UrlSource(new URL('.', u).toString(), options, notify);
      src.single = u.toString();
      src.gguf = decodeURIComponent(u.pathname.split('/').pop());
    } else {
      src = new UrlSource(text, options, notify);
    }
  } else if (source && typeof source.length === 'number') {
    const files = Array.from(source);
    src = new FileSource(files);
    const ggufs = files.filter((f) => isGguf(f.name));
    if (ggufs.length > 0 && !files.some((f) => f.name === 'config.json')) {
      if (new Set(ggufs.map((f) => f.name)).size > 1) {
        throw new Error(`load(source): choose one .gguf file (got ${ggufs.map((f) => f.name).join(', ')})`);
      }
      src.gguf = ggufs[0].name;
    }
  } else {
    throw new Error('load(source): expected the base URL of a model directory, the URL of a .gguf file, or a list of File objects');
  }
  await src.init();
  return src;
}

export async function cacheInfo() {
  const out = { bytes: 0, files: [], usage: null, quota: null, persisted: null };
  if (typeof navigator !== 'undefined' && navigator.storage) {
    try {
      const est = await navigator.storage.estimate();
      out.usage = est.usage ?? null;
      out.quota = est.quota ?? null;
      if (navigator.storage.persisted) out.persisted = await navigator.storage.persisted();
    } catch (e) {
      /* not available */
    }
  }
  const cache = await openCache();
  if (!cache) return out;
  const byFile = new Map();
  for (const req of await cache.keys()) {
    const u = new URL(req.url);
    const isPiece = u.searchParams.has('wgpt-piece');
    const isMeta = u.searchParams.has('wgpt-meta');
    if (u.searchParams.has('wgpt-absent')) continue;
    u.searchParams.delete('wgpt-piece');
    u.searchParams.delete('wgpt-meta');
    const key = u.toString();
    const entry = byFile.get(key) || { url: key, size: null, cachedBytes: 0 };
    byFile.set(key, entry);
    const resp = await cache.match(req);
    if (isMeta) {
      entry.size = (await resp.json()).size;
    } else {
      const len = Number(resp.headers.get('content-length') || 0);
      entry.cachedBytes += len;
      out.bytes += len;
      if (!isPiece && entry.size === null) entry.size = len;
    }
  }
  out.files = [...byFile.values()];
  return out;
}

export async function clearCache() {
  if (typeof caches === 'undefined') return false;
  return await caches.delete(CACHE_NAME);
}
