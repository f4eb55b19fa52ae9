#!/usr/bin/env bash
# The main job on a real small model: stories260K (Karpathy's llama2.c TinyStories Llama).
# Installs and builds if needed, obtains the model (../shared/models when present, otherwise
# its public home), then runs the pipeline: generate -> eval -> profile -> compare recipes ->
# export W4A4 ONNX and check it in ONNX Runtime. Outputs go to ./out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/sinkquant ] || bash scripts/setup.sh
SQ=build/sinkquant
OUT=out/demo
mkdir -p "$OUT"

# --- the model --------------------------------------------------------------------------
MODEL_DIR=../shared/models/stories260K
if [ ! -f "$MODEL_DIR/stories260K.bin" ]; then
  MODEL_DIR=.cache/stories260K
  mkdir -p "$MODEL_DIR"
  url=https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
  for f in stories260K.bin tok512.bin; do
    [ -f "$MODEL_DIR/$f" ] || curl -fsSL -o "$MODEL_DIR/$f" "$url/$f"
  done
fi
MODEL=$MODEL_DIR/stories260K.bin
TOK=$MODEL_DIR/tok512.bin

# --- the text: TinyStories validation stories (calibration and evaluation never overlap) ---
CORPORA=../shared/corpora
CALIB=$CORPORA/tinystories-calib.txt
VALID=$CORPORA/tinystories-valid.txt
if [ ! -f "$VALID" ]; then
  echo "demo: $VALID is missing; pass your own text with CALIB=... VALID=..." >&2
  exit 1
fi

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
has() { "$SQ" --help | grep -q "^  $1 "; }

step "greedy generation from BOS" "$SQ" generate --model "$MODEL" --tokenizer "$TOK" --steps 40
step "perplexity on held-out stories" "$SQ" eval --model "$MODEL" --tokenizer "$TOK" --data "$VALID" --json "$OUT/eval.json"
if has profile; then
  step "where are the outliers and sinks?" "$SQ" profile --model "$MODEL" --tokenizer "$TOK" --data "$CALIB" --out "$OUT/profile"
fi
if has compare; then
  step "which W4A4 recipe loses least?" "$SQ" compare --model "$MODEL" --tokenizer "$TOK" --calib "$CALIB" --data "$VALID" \
    --methods fp,rtn,gptq,smooth,rotate,rotate-gptq --w-bits 4 --a-bits 4 --max-tokens 10000 --json "$OUT/compare.json"
fi
if has quantize; then
  step "export a W4A4 ONNX model (with sinkquant's logits for the ONNX Runtime check)" \
    "$SQ" quantize --model "$MODEL" --tokenizer "$TOK" --calib "$CALIB" --method rtn --w-bits 4 --a-bits 4 --w-group 32 \
    --out "$OUT/stories260K-w4a4.onnx" --logits-out "$OUT/ref.json" --data "$VALID" --max-tokens 1500
  if [ -d scripts/onnx/node_modules ]; then
    # Exact to float precision until a window's first 4-bit rounding flip (MLAS and Eigen sum
    # in different orders); after one, this tiny W4A4 model's 1500-token perplexity can move by
    # a few percent, so the whole-text bound here is 5e-2 (see README, ONNX Runtime).
    step "run it in ONNX Runtime and compare" node scripts/onnx/verify.mjs --model "$OUT/stories260K-w4a4.onnx" --ref "$OUT/ref.json" --ppl-rtol 5e-2
  fi
  rm -rf "$OUT/stories260K-w4a4-rotate"  # an export folder is never replaced in place
  step "export a deployable W4A4 folder (KV-cache decoder, tokenizer, quantization.json)" \
    "$SQ" quantize --model "$MODEL" --tokenizer "$TOK" --method rotate --w-bits 4 --a-bits 4 --w-group 32 \
    --onnx-format matmulnbits --data "$VALID" --max-tokens 1500 --out "$OUT/stories260K-w4a4-rotate"
  if [ -d scripts/onnx/node_modules ]; then
    step "generate from it with the KV cache (ONNX Runtime, then transformers.js)" \
      node scripts/onnx/generate.mjs --model "$OUT/stories260K-w4a4-rotate" --max-new-tokens 40 \
      --check-full-window --batch "1,403,407,259,261,29;1,365;1,403,400" --transformers-js
  fi
fi
echo; echo "demo: outputs in $OUT"
