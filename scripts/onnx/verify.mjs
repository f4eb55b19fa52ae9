#!/usr/bin/env node
// Runs an ONNX model exported by sinkquant in ONNX Runtime (onnxruntime-node, pinned in
// package-lock.json) over the token windows sinkquant wrote, and compares it with the logits
// sinkquant computed for the same tokens. Either layout: a decoder graph (or an export folder)
// runs each window in one step with an empty cache, positions 0..T-1 and a mask of ones.
//
//   node scripts/onnx/verify.mjs --model model.onnx --ref ref.json
//        [--ppl-rtol 1e-4] [--max-logit-diff X] [--json out.json] [--threads N]
//        [--opt-level all|extended|basic|disabled] [--diverge-tol 1e-3] [--prefix-rtol R]
//        [--min-prefix-fraction F]
//
// ref.json (from `sinkquant quantize --logits-out ref.json`) holds the windows' token ids,
// first_target, vocab and sinkquant's perplexity; ref.json.f32 the logits [T, vocab] of every
// window (float32, little endian). Each window is one [1, T] run; perplexity is the mean NLL of
// tokens[t] (t >= first_target) predicted from row t-1, exactly as sinkquant's
// EvaluatePerplexity scores it.
//
// The session pins `session.qdq_matmulnbits_accuracy_level` = "0": at the default level ORT
// rewrites DequantizeLinear(int4) + MatMul into MatMulNBits with accuracy level 4, which
// quantizes activations to int8 and changes the numbers (the README's verify.mjs paragraph).
//
// W4A4 graphs are discontinuous: a float difference of one ulp (ORT and sinkquant sum in
// different orders) can flip one 4-bit activation rounding, and the flip spreads to every later
// position of its window through attention. So the verifier also reports, per window, the first
// row whose logits differ by more than --diverge-tol, and the perplexity over the tokens
// predicted before it ("agreeing prefix"), which must match to float precision
// (--prefix-rtol) whatever happens after a flip.
//
// Exit status: 0 when within tolerance, 1 when not, 2 on bad usage or unreadable input.
import fs from 'node:fs';
import path from 'node:path';
import { Graph } from './decoder.mjs';

function usage(msg) {
  console.error(`verify.mjs: ${msg}`);
  console.error('usage: node verify.mjs --model M.onnx --ref REF.json [--ppl-rtol R] ' +
                '[--max-logit-diff X] [--json OUT] [--threads N] [--opt-level L]');
  process.exit(2);
}

function parseArgs(argv) {
  const known = new Set(['model', 'ref', 'ppl-rtol', 'max-logit-diff', 'json', 'threads',
                         'opt-level', 'diverge-tol', 'prefix-rtol', 'min-prefix-fraction']);
  const a = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || !known.has(k.slice(2))) usage(`unknown argument ${k}`);
    if (i + 1 >= argv.length) usage(`${k} needs a value`);
    a[k.slice(2)] = argv[i + 1];
  }
  if (!a.model || !a.ref) usage('--model and --ref are required');
  const num = (k, def) => {
    if (a[k] === undefined) return def;
    const v = Number(a[k]);
    if (!Number.isFinite(v)) usage(`--${k} must be a number, got ${a[k]}`);
    return v;
  };
  return {
    model: a.model, ref: a.ref, json: a.json,
    pplRtol: num('ppl-rtol', 1e-4), maxLogitDiff: num('max-logit-diff', Infinity),
    threads: num('threads', 0), optLevel: a['opt-level'] ?? 'all',
    divergeTol: num('diverge-tol', 1e-3), prefixRtol: num('prefix-rtol', Infinity),
    minPrefixFraction: num('min-prefix-fraction', 0),
  };
}

// Summed NLL of one window's targets t in [firstTarget, end): -log softmax(row t-1)[tokens[t]],
// in double.
function windowNll(logits, offset, vocab, tokens, firstTarget, end = tokens.length) {
  let sum = 0;
  for (let t = firstTarget; t < end; ++t) {
    const row = offset + (t - 1) * vocab;
    let m = -Infinity;
    for (let i = 0; i < vocab; ++i) m = Math.max(m, logits[row + i]);
    let z = 0;
    for (let i = 0; i < vocab; ++i) z += Math.exp(logits[row + i] - m);
    sum += m + Math.log(z) - logits[row + tokens[t]];
  }
  return sum;
}

function readRef(refPath) {
  let ref;
  try {
    ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  } catch (e) {
    usage(`cannot read ${refPath}: ${e.message}`);
  }
  if (!Array.isArray(ref.windows) || !Number.isInteger(ref.vocab)) {
    usage(`${refPath}: not a sinkquant reference file (needs windows and vocab)`);
  }
  const logitsPath = path.join(path.dirname(refPath), ref.logits_file);
  const buf = fs.readFileSync(logitsPath);
  const expected = ref.windows.reduce((n, w) => n + w.tokens.length, 0) * ref.vocab * 4;
  if (buf.length !== expected) {
    usage(`${logitsPath}: ${buf.length} bytes, expected ${expected} (windows x T x vocab x 4)`);
  }
  // Copy into an aligned buffer (a Buffer's byteOffset need not be a multiple of 4).
  const logits = new Float32Array(buf.length / 4);
  new Uint8Array(logits.buffer).set(buf);
  return { ref, logits };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const { ref, logits: refLogits } = readRef(o.ref);
  const graph = await Graph.open(o.model, { threads: o.threads, optLevel: o.optLevel });
  const { session } = graph;
  if (!session.inputNames.includes('input_ids') || !session.outputNames.includes('logits')) {
    usage(`${o.model}: expected input input_ids and output logits, got ` +
          `${session.inputNames} -> ${session.outputNames}`);
  }
  const V = ref.vocab;
  let offset = 0, nllOrt = 0, nllRef = 0, scored = 0, maxDiff = 0, sumDiff = 0, nDiff = 0;
  let argmaxAgree = 0, rows = 0, maxRef = 0, nonFinite = 0;
  let prefixOrt = 0, prefixRef = 0, prefixScored = 0, diverged = 0;
  const firstDivergence = [];
  const start = Date.now();
  for (const w of ref.windows) {
    const T = w.tokens.length;
    const { logits: y } = await graph.run([w.tokens]);
    if (y.dims.length !== 3 || y.dims[0] !== 1 || y.dims[1] !== T || y.dims[2] !== V) {
      usage(`logits have shape [${y.dims}], expected [1, ${T}, ${V}]`);
    }
    const a = y.data;
    let firstBad = T;
    for (let t = 0; t < T; ++t) {
      let am = 0, bm = 0, rowMax = 0;
      for (let i = 0; i < V; ++i) {
        const x = a[t * V + i], r = refLogits[offset + t * V + i];
        if (!Number.isFinite(x)) ++nonFinite;
        const d = Math.abs(x - r);
        if (d > maxDiff || Number.isNaN(d)) maxDiff = Number.isNaN(d) ? Infinity : d;
        if (d > rowMax || Number.isNaN(d)) rowMax = Number.isNaN(d) ? Infinity : d;
        sumDiff += d;
        ++nDiff;
        maxRef = Math.max(maxRef, Math.abs(r));
        if (a[t * V + i] > a[t * V + am]) am = i;
        if (refLogits[offset + t * V + i] > refLogits[offset + t * V + bm]) bm = i;
      }
      argmaxAgree += am === bm ? 1 : 0;
      ++rows;
      if (rowMax > o.divergeTol && firstBad === T) firstBad = t;
    }
    // Targets t predicted from rows t-1 < firstBad.
    const end = Math.max(w.first_target, Math.min(T, firstBad + 1));
    prefixOrt += windowNll(a, 0, V, w.tokens, w.first_target, end);
    prefixRef += windowNll(refLogits, offset, V, w.tokens, w.first_target, end);
    prefixScored += end - w.first_target;
    firstDivergence.push(firstBad === T ? null : firstBad);
    diverged += firstBad === T ? 0 : 1;
    nllOrt += windowNll(a, 0, V, w.tokens, w.first_target);
    nllRef += windowNll(refLogits, offset, V, w.tokens, w.first_target);
    scored += T - w.first_target;
    offset += T * V;
  }
  const pplOrt = Math.exp(nllOrt / scored), pplRef = Math.exp(nllRef / scored);
  const rel = Math.abs(pplOrt - ref.ppl) / ref.ppl;
  const prefixRel = prefixScored > 0
      ? Math.abs(Math.exp(prefixOrt / prefixScored) - Math.exp(prefixRef / prefixScored)) /
        Math.exp(prefixRef / prefixScored)
      : Infinity;
  const prefixFraction = prefixScored / scored;
  const r = {
    model: o.model, windows: ref.windows.length, tokens_scored: scored,
    ppl_onnxruntime: pplOrt, ppl_sinkquant: ref.ppl, ppl_sinkquant_recomputed: pplRef,
    ppl_rel_diff: rel, max_abs_logit_diff: maxDiff, mean_abs_logit_diff: sumDiff / nDiff,
    max_abs_logit: maxRef, argmax_agreement: argmaxAgree / rows, non_finite: nonFinite,
    windows_diverged: diverged, first_divergence: firstDivergence,
    prefix_tokens_scored: prefixScored, prefix_fraction: prefixFraction,
    prefix_ppl_rel_diff: prefixRel,
    seconds: (Date.now() - start) / 1000,
  };
  console.log(`model:            ${o.model}`);
  console.log(`windows:          ${r.windows} (${scored} tokens scored)`);
  console.log(`PPL onnxruntime:  ${pplOrt.toFixed(6)}`);
  console.log(`PPL sinkquant:    ${ref.ppl.toFixed(6)} (recomputed from its logits: ${pplRef.toFixed(6)})`);
  console.log(`PPL rel diff:     ${rel.toExponential(3)} (tolerance ${o.pplRtol})`);
  console.log(`max |logit diff|: ${maxDiff.toExponential(3)} (mean ${r.mean_abs_logit_diff.toExponential(3)}, ` +
              `max |logit| ${maxRef.toFixed(3)})`);
  console.log(`argmax agreement: ${(100 * r.argmax_agreement).toFixed(2)}%`);
  console.log(`diverged:         ${diverged} of ${r.windows} windows (a row off by > ${o.divergeTol})` +
              (diverged ? `, first rows ${firstDivergence.filter((x) => x !== null).join(' ')}` : ''));
  console.log(`agreeing prefix:  ${prefixScored} tokens (${(100 * prefixFraction).toFixed(1)}%), ` +
              `PPL rel diff ${prefixRel.toExponential(3)}` +
              (Number.isFinite(o.prefixRtol) ? ` (tolerance ${o.prefixRtol})` : ''));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(r, null, 2) + '\n');
  const ok = nonFinite === 0 && rel <= o.pplRtol && maxDiff <= o.maxLogitDiff &&
             prefixRel <= o.prefixRtol && prefixFraction >= o.minPrefixFraction &&
             Math.abs(pplRef - ref.ppl) / ref.ppl < 1e-9;
  console.log(ok ? 'verify: OK' : 'verify: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(`verify.mjs: ${e.message ?? e}`);
  process.exit(2);
});
