#!/usr/bin/env node
// Greedy generation from a sinkquant export (the folder `sinkquant quantize --out DIR` writes, or
// a decoder-layout .onnx) with the KV cache in onnxruntime-node, and checks that the cache is
// right:
//
//   node scripts/onnx/generate.mjs --model DIR [--prompt TEXT | --prompt-ids 1,2,3] [--max-new-tokens 40]
//        [--check-full-window] [--scoring SCORING.onnx] [--batch "1,5,9;1,7;1,2,3,4"]
//        [--transformers-js] [--tol 1e-4] [--threads N] [--json OUT]
//
//   --check-full-window  every cached step's logits equal the last row of one uncached run of the
//                        whole sequence so far (the same graph, empty cache), within --tol
//                        (reported per step, with how many steps' argmax the two runs share)
//   --scoring F.onnx     the scoring layout's argmax over the generated sequence is each
//                        generated token (the cache changes nothing the plain graph would pick)
//   --batch P;P;...      the prompts in one batch, left-padded, prefilled and decoded greedily
//                        for --batch-steps steps with the cache, and right-padded (prefill only):
//                        every prompt's logits equal its own unpadded run within --tol
//   --transformers-js    @huggingface/transformers (offline, env.allowRemoteModels = false) loads
//                        the folder and generates greedily: its tokens must equal ours
//   --prompt TEXT        encoded with the folder's tokenizer.json (transformers.js's tokenizer)
//   --prompt-ids         default: the BOS id of the folder's config.json
// Generation stops early at config.json's eos/bos id, as `sinkquant generate` does. Prints the
// ids (and the text, decoded with the folder's tokenizer.json, when there is one).
// Exit status: 0 when every check passes, 1 when one fails, 2 on bad usage.
import fs from 'node:fs';
import path from 'node:path';
import { Graph, argmax, greedy, maxAbsDiff, row, sessionOptions } from './decoder.mjs';

function usage(msg) {
  console.error(`generate.mjs: ${msg}`);
  console.error('usage: node generate.mjs --model DIR|M.onnx [--prompt-ids IDS] [--max-new-tokens N] ' +
                '[--check-full-window] [--scoring S.onnx] [--batch "IDS;IDS;..."] [--batch-steps N] ' +
                '[--transformers-js] [--tol X] [--threads N] [--json OUT]');
  process.exit(2);
}

function parseArgs(argv) {
  const flags = new Set(['check-full-window', 'transformers-js']);
  const valued = new Set(['model', 'prompt', 'prompt-ids', 'max-new-tokens', 'scoring', 'batch', 'batch-steps',
                          'tol', 'threads', 'json']);
  const a = {};
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i].slice(2);
    if (!argv[i].startsWith('--') || !(flags.has(k) || valued.has(k))) usage(`unknown argument ${argv[i]}`);
    if (flags.has(k)) { a[k] = true; continue; }
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    a[k] = argv[++i];
  }
  if (!a.model) usage('--model is required');
  const num = (k, def) => {
    if (a[k] === undefined) return def;
    const v = Number(a[k]);
    if (!Number.isFinite(v) || v < 0) usage(`--${k} must be a non-negative number, got ${a[k]}`);
    return v;
  };
  const ids = (s, what) => s.split(',').map((x) => {
    if (!/^\d+$/.test(x.trim())) usage(`${what}: '${x}' is not a token id`);
    return Number(x);
  });
  return {
    model: a.model, json: a.json, scoring: a.scoring, prompt: a.prompt,
    promptIds: a['prompt-ids'] ? ids(a['prompt-ids'], '--prompt-ids') : null,
    steps: num('max-new-tokens', 40), batchSteps: num('batch-steps', 4),
    batch: a.batch ? a.batch.split(';').map((p) => ids(p, '--batch')) : null,
    tol: num('tol', 1e-4), threads: num('threads', 0),
    fullWindow: !!a['check-full-window'], transformersJs: !!a['transformers-js'],
  };
}

function readConfig(model) {
  const p = path.join(model, 'config.json');
  if (!fs.existsSync(p)) return null;
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (e) {
    usage(`${p}: ${e.message}`);
  }
}

// Each cached step against one uncached run of the whole sequence so far.
async function checkFullWindow(graph, prompt, gen) {
  const diffs = [];
  let agree = 0;
  for (let s = 0; s < gen.ids.length; ++s) {
    const seq = [...prompt, ...gen.ids.slice(0, s)];
    const { logits } = await graph.run([seq]);
    const full = row(logits, 0, seq.length - 1);
    diffs.push(maxAbsDiff(gen.rows[s], full));
    agree += argmax(full) === gen.ids[s] ? 1 : 0;
  }
  return { diffs, agree };
}

// The scoring graph's argmax at every position of the generated sequence.
async function checkScoring(file, opts, prompt, gen) {
  const scoring = await Graph.open(file, opts);
  if (scoring.decoder) usage(`--scoring ${file} is a decoder-layout graph`);
  const seq = [...prompt, ...gen.ids];
  const { logits } = await scoring.run([seq.slice(0, -1)]);
  let agree = 0;
  for (let s = 0; s < gen.ids.length; ++s) {
    agree += argmax(row(logits, 0, prompt.length - 1 + s)) === gen.ids[s] ? 1 : 0;
  }
  return agree;
}

// Batched prompts (left padding, then greedy steps with the cache; right padding, prefill) vs
// each prompt alone. Returns the largest logit difference seen.
async function checkBatch(graph, prompts, steps) {
  const L = Math.max(...prompts.map((p) => p.length)), pad = 0;
  const alone = [];
  for (const p of prompts) alone.push({ prefill: (await graph.run([p])).logits, gen: await greedy(graph, p, steps) });
  let worst = 0;
  // Left padding, positions as transformers.js/HF build them: cumsum(mask) - 1.
  let mask = prompts.map((p) => [...Array(L - p.length).fill(0), ...Array(p.length).fill(1)]);
  const tokens = prompts.map((p) => [...Array(L - p.length).fill(pad), ...p]);
  const positions = mask.map((m) => { let c = -1; return m.map((x) => (x ? ++c : 1)); });
  let { logits, cache } = await graph.run(tokens, { mask, positions });
  prompts.forEach((p, b) => {
    for (let t = 0; t < p.length; ++t) {
      worst = Math.max(worst, maxAbsDiff(row(logits, b, L - p.length + t), row(alone[b].prefill, 0, t)));
    }
  });
  for (let s = 0; s < steps; ++s) {
    const next = prompts.map((p, b) => [argmax(row(logits, b, logits.dims[1] - 1))]);
    prompts.forEach((p, b) => {
      worst = Math.max(worst, maxAbsDiff(row(logits, b, logits.dims[1] - 1), alone[b].gen.rows[s]));
      if (next[b][0] !== alone[b].gen.ids[s]) worst = Infinity;
    });
    if (s + 1 === steps) break;
    mask = mask.map((m) => [...m, 1]);
    const pos = prompts.map((p, b) => [p.length + s]);
    ({ logits, cache } = await graph.run(next, { mask, positions: pos, cache }));
  }
  // Right padding: prefill only (its cache has holes a next step would have to skip).
  const right = await graph.run(prompts.map((p) => [...p, ...Array(L - p.length).fill(pad)]), {
    mask: prompts.map((p) => [...Array(p.length).fill(1), ...Array(L - p.length).fill(0)]),
    positions: prompts.map(() => Array.from({ length: L }, (_, i) => i)),
  });
  prompts.forEach((p, b) => {
    for (let t = 0; t < p.length; ++t) {
      worst = Math.max(worst, maxAbsDiff(row(right.logits, b, t), row(alone[b].prefill, 0, t)));
    }
  });
  return worst;
}

// transformers.js on the folder, offline, greedy.
async function transformersJs(folder, opts, prompt, steps, stop) {
  const { AutoModelForCausalLM, Tensor, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  const abs = path.resolve(folder);
  env.localModelPath = path.dirname(abs) + path.sep;
  const model = await AutoModelForCausalLM.from_pretrained(path.basename(abs), {
    local_files_only: true, device: 'cpu', dtype: 'fp32', session_options: sessionOptions(opts),
  });
  const input_ids = new Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]);
  const attention_mask = new Tensor('int64', BigInt64Array.from(prompt, () => 1n), [1, prompt.length]);
  const out = await model.generate({ input_ids, attention_mask, max_new_tokens: steps, do_sample: false });
  await model.dispose();
  const ids = Array.from(out.data, Number).slice(prompt.length);
  if (ids.length && stop.includes(ids.at(-1))) ids.pop();  // transformers.js keeps the EOS
  return ids;
}

// The folder's tokenizer.json through transformers.js (null when the folder has none).
async function tokenizer(folder) {
  if (!fs.existsSync(path.join(folder, 'tokenizer.json'))) return null;
  const { AutoTokenizer, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  const abs = path.resolve(folder);
  env.localModelPath = path.dirname(abs) + path.sep;
  return AutoTokenizer.from_pretrained(path.basename(abs), { local_files_only: true });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const isFolder = fs.statSync(o.model).isDirectory();
  const config = isFolder ? readConfig(o.model) : null;
  const tok = isFolder ? await tokenizer(o.model) : null;
  if (o.prompt !== undefined && !tok) usage('--prompt needs an export folder with tokenizer.json');
  let prompt = o.promptIds ?? (config?.bos_token_id >= 0 ? [config.bos_token_id] : null);
  if (o.prompt !== undefined) prompt = tok(o.prompt).input_ids.tolist()[0].map(Number);
  if (!prompt?.length) usage('--prompt-ids is required when the model has no config.json with bos_token_id');
  const limit = config?.max_position_embeddings;
  if (limit && prompt.length + o.steps > limit) {
    usage(`${prompt.length} prompt tokens + --max-new-tokens ${o.steps} exceed max_position_embeddings ${limit}`);
  }
  const stop = [config?.eos_token_id, config?.bos_token_id].filter((x) => Number.isInteger(x) && x >= 0);
  const opts = { threads: o.threads };
  const graph = await Graph.open(o.model, opts);
  if (!graph.decoder) usage(`${o.model}: not a decoder-layout graph (inputs ${graph.session.inputNames})`);
  const r = { model: o.model, prompt };
  const gen = await greedy(graph, prompt, o.steps, stop);
  r.ids = gen.ids;
  console.log(`prompt ids:  ${prompt.join(' ')}`);
  console.log(`generated:   ${gen.ids.join(' ')}`);
  if (tok) {
    r.text = tok.decode([...prompt, ...gen.ids], { skip_special_tokens: true });
    console.log(`text:        ${JSON.stringify(r.text)}`);
  }
  let ok = true;
  const report = (name, good, detail) => {
    r[name] = detail;
    ok &&= good;
    console.log(`${name.padEnd(12)} ${JSON.stringify(detail)} ${good ? 'OK' : 'FAILED'}`);
  };
  if (o.fullWindow) {
    const { diffs, agree } = await checkFullWindow(graph, prompt, gen);
    const worst = Math.max(0, ...diffs);
    report('full_window', worst <= o.tol, {
      max_abs_logit_diff: worst, steps: gen.ids.length, tol: o.tol, argmax_agree: agree,
      per_step: diffs,
    });
  }
  if (o.scoring) {
    const agree = await checkScoring(o.scoring, opts, prompt, gen);
    report('scoring', agree === gen.ids.length, { argmax_agree: agree, steps: gen.ids.length });
  }
  if (o.batch) {
    const d = await checkBatch(graph, o.batch, o.batchSteps);
    report('batch', d <= o.tol, { prompts: o.batch.length, max_abs_logit_diff: d, tol: o.tol });
  }
  if (o.transformersJs) {
    if (!isFolder) usage('--transformers-js needs an export folder');
    const ids = await transformersJs(o.model, opts, prompt, o.steps, stop);
    report('transformers_js', ids.join(' ') === gen.ids.join(' '), { ids: ids.join(' ') });
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(r, null, 2) + '\n');
  console.log(ok ? 'generate: OK' : 'generate: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(`generate.mjs: ${e.message ?? e}`);
  process.exit(2);
});
