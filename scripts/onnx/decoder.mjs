// Driving a sinkquant ONNX export in onnxruntime-node: sessions pinned the way sinkquant's
// numbers are measured, and the decoder layout (Optimum's input_ids / attention_mask /
// position_ids / past_key_values.{i}.key|value -> logits / present.{i}.key|value) run one step,
// a whole window, or greedily with the KV cache. Used by verify.mjs and generate.mjs.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

// An export folder's graph (onnx/model.onnx), or the .onnx file itself.
export function modelFile(p) {
  return fs.statSync(p).isDirectory() ? path.join(p, 'onnx', 'model.onnx') : p;
}

// `session.qdq_matmulnbits_accuracy_level` = 0: at the default level ORT rewrites
// DequantizeLinear(int4) + MatMul into MatMulNBits with accuracy level 4, which quantizes
// activations to int8 and changes the numbers (the README's verify.mjs paragraph).
export function sessionOptions({ threads = 0, optLevel = 'all' } = {}) {
  const options = {
    logSeverityLevel: 3,
    graphOptimizationLevel: optLevel,
    extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
  };
  if (threads > 0) {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
  }
  return options;
}

const int64 = (rows) => {
  const T = rows[0].length;
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (x) => BigInt(x)), [rows.length, T]);
};

// One graph in either layout. Rows of logits come back as Float32Array views.
export class Graph {
  static async open(file, opts) {
    return new Graph(await ort.InferenceSession.create(modelFile(file), sessionOptions(opts)));
  }

  constructor(session) {
    this.session = session;
    this.decoder = session.inputNames.includes('attention_mask');
    this.cacheNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    if (this.decoder) {
      // [batch, kv_heads, past, head_dim]: the fixed sizes of an empty cache.
      const meta = session.inputMetadata.find((m) => m.name === this.cacheNames[0]);
      this.kvHeads = meta ? meta.shape[1] : 0;
      this.headDim = meta ? meta.shape[3] : 0;
    }
  }

  emptyCache(batch) {
    const cache = {};
    for (const name of this.cacheNames) {
      cache[name] = new ort.Tensor('float32', new Float32Array(0), [batch, this.kvHeads, 0, this.headDim]);
    }
    return cache;
  }

  // tokens/positions [B][T], mask [B][past + T] (decoder only), cache from the previous step or
  // null. Returns { logits: Tensor [B, T, V], cache: the present tensors renamed as inputs }.
  async run(tokens, { mask = null, positions = null, cache = null } = {}) {
    const B = tokens.length, T = tokens[0].length;
    const feeds = { input_ids: int64(tokens) };
    if (this.decoder) {
      cache ??= this.emptyCache(B);
      const past = this.cacheNames.length ? cache[this.cacheNames[0]].dims[2] : 0;
      mask ??= tokens.map(() => Array(past + T).fill(1));
      positions ??= tokens.map(() => Array.from({ length: T }, (_, i) => past + i));
      feeds.attention_mask = int64(mask);
      feeds.position_ids = int64(positions);
      Object.assign(feeds, cache);
    }
    const out = await this.session.run(feeds);
    const next = {};
    for (const name of this.cacheNames) next[name] = out[name.replace('past_key_values', 'present')];
    return { logits: out.logits, cache: next };
  }
}

// Row t of batch entry b of a [B, T, V] logits tensor.
export function row(logits, b, t) {
  const [, T, V] = logits.dims;
  return logits.data.subarray((b * T + t) * V, (b * T + t + 1) * V);
}

export function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; ++i) if (x[i] > x[best]) best = i;
  return best;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; ++i) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

// Greedy decoding of one prompt with the KV cache: the prompt in one step, then one token per
// step, ending early at a token in `stop` (which is not kept, as `sinkquant generate` does).
// Returns the generated ids and, per step, the logits row that chose each.
export async function greedy(graph, prompt, steps, stop = []) {
  const ids = [...prompt], rows = [];
  let { logits, cache } = await graph.run([prompt]);
  for (let s = 0; s < steps; ++s) {
    const last = row(logits, 0, logits.dims[1] - 1).slice();
    const next = argmax(last);
    if (stop.includes(next)) break;
    rows.push(last);
    ids.push(next);
    if (s + 1 < steps) ({ logits, cache } = await graph.run([[next]], { cache }));
  }
  return { ids: ids.slice(prompt.length), rows };
}
