// Prefill speed of an export (either layout; the decoder starts from an empty cache) in
// onnxruntime-node, beside
// `sinkquant bench --json FILE` on the same checkpoint in the same run: the reference a user
// would otherwise pick. Same context, same thread count, best of --reps after a warm-up.
//   node bench-prefill.mjs MODEL.onnx --ctx 512 [--reps 3] [--threads N] [--sinkquant A.json[,B.json]]
// A benchmark, not a test: it prints figures and asserts only that the logits are finite.
import { readFileSync } from 'node:fs';
import { Graph } from './decoder.mjs';

const args = process.argv.slice(2);
if (args.length < 1 || args[0].startsWith('--')) {
  console.error('usage: node bench-prefill.mjs MODEL.onnx --ctx N [--reps 3] [--threads N] ' +
                '[--sinkquant A.json[,B.json]]');
  process.exit(2);
}
const flag = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = args[i + 1];
  if (v === undefined) { console.error(`bench-prefill.mjs: ${name} needs a value`); process.exit(2); }
  return v;
};
const ctx = Number(flag('--ctx', 512)), reps = Number(flag('--reps', 3));
const threads = Number(flag('--threads', 0));
for (const [k, v] of [['--ctx', ctx], ['--reps', reps], ['--threads', threads]]) {
  if (!Number.isInteger(v) || v < 0 || (k !== '--threads' && v === 0)) {
    console.error(`bench-prefill.mjs: ${k} must be a positive integer, got ${v}`);
    process.exit(2);
  }
}
const graph = await Graph.open(args[0], { threads });
const ids = Array.from({ length: ctx }, (_, i) => 1 + ((i * 7919) % 250));  // ids every vocab has
const first = await graph.run([ids]);  // warm-up: maps and packs the weights
if (!first.logits.data.every(Number.isFinite)) throw new Error(`${args[0]}: non-finite logits`);
let best = Infinity;
for (let r = 0; r < reps; ++r) {
  const t0 = process.hrtime.bigint();
  await graph.run([ids]);
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
console.log(`onnxruntime-node prefill ctx ${ctx}: ${best.toFixed(3)} s, ` +
            `${(ctx / best).toFixed(1)} tokens/s (intra-op threads ${threads || 'default'})`);
// --sinkquant A.json[,B.json]: one line and one ratio per `sinkquant bench` run (e.g. the f32
// and the bf16 matmul precision of the same checkpoint).
for (const sq of flag('--sinkquant', '').split(',').filter(Boolean)) {
  const b = JSON.parse(readFileSync(sq, 'utf8'));
  if (b.ctx !== ctx) throw new Error(`${sq}: measured at ctx ${b.ctx}, not ${ctx}`);
  const precision = b.matmul_precision ?? 'f32';
  console.log(`sinkquant prefill ctx ${ctx}, matmul ${precision}: ${b.seconds.toFixed(3)} s, ` +
              `${b.tokens_per_s.toFixed(1)} tokens/s (${b.threads} threads)`);
  console.log(`sinkquant (${precision}) / onnxruntime: ${(b.tokens_per_s * best / ctx).toFixed(2)}x`);
}
