// Times ONNX Runtime's com.microsoft MatMulNBits (bits 4, accuracy_level 4: int8 activations,
// i.e. W4A8) on the models `sinkquant bench-kernels --onnx-dir DIR --json FILE` wrote, with
// the same M, and prints GFLOP/s beside sinkquant's figures from that JSON (same run).
//   node bench-matmulnbits.mjs FILE.json [--reps 5] [--threads N]
// A benchmark, not a test: it prints figures and asserts nothing but that the outputs are finite.
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length < 1) {
  console.error('usage: node bench-matmulnbits.mjs BENCH.json [--reps 5] [--threads N]');
  process.exit(2);
}
const flag = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const reps = flag('--reps', 5);
const threads = flag('--threads', 0);
const bench = JSON.parse(readFileSync(args[0], 'utf8'));

function randomInput(n) {
  // Deterministic normal-ish values (sum of uniforms), like the C++ side's N(0, 1).
  let s = 12345;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = next() + next() + next() + next() - 2;
  return a;
}

console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}, accuracy_level 4, ` +
            `intra-op threads ${threads || 'default'}`);
console.log('    M     K     N |  ORT W4A8  sinkquant int4 linear / kernel | int4/ORT  int4/float');
for (const layer of bench.layers) {
  if (!layer.onnx) throw new Error(`${args[0]}: layer ${layer.k}x${layer.n} has no "onnx" model path`);
  const opts = { graphOptimizationLevel: 'all' };
  if (threads > 0) opts.intraOpNumThreads = threads;
  const session = await ort.InferenceSession.create(layer.onnx, opts);
  const feeds = { A: new ort.Tensor('float32', randomInput(layer.m * layer.k), [layer.m, layer.k]) };
  const first = await session.run(feeds);  // warm-up
  if (!first.Y.data.every(Number.isFinite)) throw new Error(`${layer.onnx}: non-finite output`);
  let best = Infinity;
  for (let r = 0; r < reps; ++r) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const ort_gflops = (2 * layer.m * layer.k * layer.n) / best / 1e9;
  layer.ort_matmulnbits_gflops = ort_gflops;
  const f = (x) => x.toFixed(1).padStart(9);
  console.log(`${String(layer.m).padStart(5)} ${String(layer.k).padStart(5)} ${String(layer.n).padStart(5)} |` +
              `${f(ort_gflops)} ${f(layer.int4_linear_gops)} ${f(layer.int4_kernel_gops)}` +
              `                  | ${(layer.int4_linear_gops / ort_gflops).toFixed(2).padStart(7)}x` +
              ` ${(layer.int4_linear_gops / layer.float_gflops).toFixed(2).padStart(9)}x`);
  await session.release?.();
}
