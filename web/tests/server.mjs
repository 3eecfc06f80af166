// A static HTTP server for the browser tests, on 127.0.0.1: the page (web/), model directories
// under /models/NAME/ (and GGUF files in them), HTTP Range, and a log of every request. Fault routes check error paths:
// /truncated/NAME/ serves weight files (.safetensors, .gguf) cut short, /flaky/NAME/ drops the connection of the
// first full download of a safetensors file part-way; /broken/NAME/ drops every large response
// of a safetensors file (after 600 kB the first time, then at once) until /control/heal.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
};

export async function startServer({ webRoot, models }) {
  const log = [];
  const flakyDone = new Set();
  let broken = true;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const entry = { method: req.method, path: url.pathname, range: req.headers.range || null, status: 0 };
    log.push(entry);
    const send = (status, body, headers = {}) => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    let file = null;
    let mode = 'plain';
    if (url.pathname === '/control/heal') {
      broken = false;
      return send(200, 'healed');
    }
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.some((p) => p === '..' || p.includes('\\'))) return send(400, 'bad path');
    if (['models', 'truncated', 'flaky', 'broken'].includes(parts[0]) && parts.length >= 3) {
      const dir = models[parts[1]];
      if (!dir) return send(404, 'no such model');
      file = path.join(dir, ...parts.slice(2));
      mode = parts[0];
    } else {
      file = path.join(webRoot, ...parts);
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    }
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return send(404, 'not found');
    let size = fs.statSync(file).size;
    const isWeights = file.endsWith('.safetensors') || file.endsWith('.gguf');
    if (mode === 'truncated' && isWeights) size -= 1000;
    const type = TYPES[path.extname(file)] || 'application/octet-stream';
    const headers = { 'content-type': type, 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (m) {
      start = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
      end = m[1] !== '' && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size || start > end) {
        return send(416, '', { 'content-range': `bytes */${size}` });
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['content-length'] = String(end - start + 1);
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    const stream = fs.createReadStream(file, { start, end });
    const cutFlaky = mode === 'flaky' && isWeights && !m && !flakyDone.has(file);
    const cutBroken = mode === 'broken' && isWeights && broken && end - start + 1 > 100000;
    if (cutFlaky || cutBroken) {
      // Drop the connection part-way: after ~40% of the file once (flaky); after 600 kB the first
      // time, then at once (broken).
      const again = flakyDone.has(file);
      flakyDone.add(file);
      entry.cut = true;
      let sent = 0;
      const cutAt = cutFlaky ? Math.floor(size * 0.4) : again ? 0 : 600000;
      stream.on('data', (chunk) => {
        if (sent + chunk.length >= cutAt) {
          // Drop the connection only once the bytes before the cut have left this process and
          // the client has had time to read them: a destroy right after the write would discard
          // them, and the client would see a cut at 0 (2 s: a loaded CI machine reads slowly).
          stream.destroy();
          res.write(chunk.subarray(0, cutAt - sent), () => setTimeout(() => res.destroy(), 2000));
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      stream.on('end', () => res.end());
      return;
    }
    stream.pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { server, port, log, origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}
