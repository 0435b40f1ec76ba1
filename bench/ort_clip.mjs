// ort_clip.mjs — ONNX Runtime (onnxruntime-node, CPU) peer for make bench: times an encoder
// exported by bench/onnx_export.py, or checks its features against clipadapt's. Bench only; not
// part of clipadapt. onnxruntime-node is found in $BENCH_NODE (default build/bench-node), where
// bench/ort.sh installs bench/ort/package-lock.json with npm ci --ignore-scripts.
//
//   node bench/ort_clip.mjs probe                       ORT version and where its CPU library is
//   node bench/ort_clip.mjs bench MODEL.onnx BATCH REPS  warm-up + REPS runs: median, min wall
//                                                       ms/item, CPU ms/item (all threads)
//   node bench/ort_clip.mjs check MODEL.onnx GOLD.safetensors TOL
//       run GOLD's input.images, compare with its output.image_features (max |d|, max |d|/(1+|ref|))
//
// Sessions run as the issue asks: 2 intra-op threads (ORT_THREADS), 1 inter-op, sequential,
// every graph optimisation on. Exit 3 (one line on stderr) when onnxruntime-node cannot load.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const nodeDir = path.resolve(process.env.BENCH_NODE || 'build/bench-node');
let ort;
try {
  ort = createRequire(path.join(nodeDir, 'package.json'))('onnxruntime-node');
} catch (e) {
  console.error(`ort_clip: onnxruntime-node does not load from ${nodeDir}: ${String(e.message).split('\n')[0]}`);
  process.exit(3);
}
const threads = Number(process.env.ORT_THREADS || 2);
const sessionOptions = {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
  graphOptimizationLevel: 'all', executionProviders: ['cpu'],
};

function die(msg) { console.error(`ort_clip: ${msg}`); process.exit(1); }

// standard normals from a fixed xorshift seed: the values do not change the timing
function randomNormal(n, seed = 1) {
  const a = new Float32Array(n);
  let s = BigInt(seed) * 0x9E3779B97F4A7C15n & 0xFFFFFFFFFFFFFFFFn || 1n;
  const next = () => {
    s ^= s << 13n; s &= 0xFFFFFFFFFFFFFFFFn; s ^= s >> 7n; s ^= s << 17n; s &= 0xFFFFFFFFFFFFFFFFn;
    return (Number(s >> 11n) + 0.5) / 2 ** 53;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())), t = 2 * Math.PI * next();
    a[i] = r * Math.cos(t);
    if (i + 1 < n) a[i + 1] = r * Math.sin(t);
  }
  return a;
}

// prompt-like rows as bench/torch_clip.py bench_tokens: SOT, 5..15 ids, EOT, zero padding
function benchTokens(n, ctx) {
  const t = new BigInt64Array(n * ctx);
  let s = 7;
  for (let i = 0; i < n; i++) {
    const L = 5 + (i * 7) % 11;
    t[i * ctx] = 49406n;
    for (let k = 1; k <= L; k++) { s = (s * 1103515245 + 12345) % 2147483648; t[i * ctx + k] = BigInt(1 + s % 48999); }
    t[i * ctx + L + 1] = 49407n;
  }
  return t;
}

function inputFor(session, batch) {
  const meta = session.inputMetadata[0];
  const dims = meta.shape.map((d, i) => (i === 0 ? batch : d));
  if (dims.some((d) => typeof d !== 'number')) die(`input ${meta.name} has a symbolic axis past the batch: ${meta.shape}`);
  const n = dims.reduce((a, b) => a * b, 1);
  if (meta.type === 'int64') return { [meta.name]: new ort.Tensor('int64', benchTokens(batch, dims[1]), dims) };
  return { [meta.name]: new ort.Tensor('float32', randomNormal(n), dims) };
}

// safetensors: u64 header length, JSON header, data; F32 tensors only (what bench/peer writes)
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) die(`${file}: too short for a safetensors file`);
  const hlen = Number(buf.readBigUInt64LE(0));
  if (hlen > buf.length - 8) die(`${file}: header length ${hlen} past the end of the file`);
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = info.data_offsets;
    const n = info.shape.reduce((x, y) => x * y, 1);
    if (info.dtype !== 'F32' || b - a !== 4 * n || 8 + hlen + b > buf.length) die(`${file}: tensor ${name} is not an in-bounds F32 tensor`);
    const bytes = buf.subarray(8 + hlen + a, 8 + hlen + b);
    out[name] = { shape: info.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return out;
}

const median = (v) => { const s = [...v].sort((a, b) => a - b), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function main() {
  const [cmd, model, a3, a4] = process.argv.slice(2);
  if (cmd === 'probe') {
    const lib = path.join(nodeDir, 'node_modules/onnxruntime-node/bin/napi-v6', process.platform, process.arch);
    console.log(JSON.stringify({ ort: ort.env.versions.node || ort.env.versions.common, node: process.version, lib }));
    return 0;
  }
  if (cmd === 'bench' && model && a3 && a4) {
    const batch = Number(a3), reps = Math.max(1, Number(a4));
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(model, sessionOptions);
    const createMs = performance.now() - t0;
    const feeds = inputFor(session, batch);
    await session.run(feeds); // warm-up: arena, prepacking
    const t = [], c0 = process.cpuUsage(); // user + system, every thread of the process
    for (let r = 0; r < reps; r++) {
      const s = performance.now();
      await session.run(feeds);
      t.push((performance.now() - s) / batch);
    }
    const c = process.cpuUsage(c0), cpuMs = (c.user + c.system) / 1e3 / (reps * batch);
    console.log(JSON.stringify({ engine: `ORT ${ort.env.versions.node || ort.env.versions.common}`, batch, threads, reps,
      median_ms: +median(t).toFixed(3), min_ms: +Math.min(...t).toFixed(3), cpu_ms: +cpuMs.toFixed(3),
      session_create_ms: +createMs.toFixed(0) }));
    return 0;
  }
  if (cmd === 'check' && model && a3) {
    const tol = Number(a4 || 1e-4);
    const g = readSafetensors(a3), x = g['input.images'], ref = g['output.image_features'];
    if (!x || !ref) die(`${a3}: needs input.images and output.image_features`);
    const session = await ort.InferenceSession.create(model, sessionOptions);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
    const y = out[session.outputNames[0]].data;
    if (y.length !== ref.data.length) die(`${model}: ${y.length} outputs, ${a3} has ${ref.data.length}`);
    let maxAbs = 0, maxRel = 0;
    for (let i = 0; i < y.length; i++) {
      const d = Math.abs(y[i] - ref.data[i]);
      if (!(d <= maxAbs)) maxAbs = d;
      if (!(d / (1 + Math.abs(ref.data[i])) <= maxRel)) maxRel = d / (1 + Math.abs(ref.data[i]));
    }
    const ok = maxRel <= tol;
    console.log(JSON.stringify({ images: x.shape[0], max_abs_diff: maxAbs, max_rel: maxRel, tol, ok }));
    return ok ? 0 : 1;
  }
  console.error('usage: ort_clip.mjs probe | bench MODEL.onnx BATCH REPS | check MODEL.onnx GOLD.safetensors [TOL]');
  return 2;
}
process.exitCode = await main();
