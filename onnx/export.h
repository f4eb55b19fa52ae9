// ONNX export of a Model (float or quantized) as a graph ONNX Runtime runs, in one of two layouts:
//   decoder (Hugging Face Optimum's, what generation libraries run):
//     in:  input_ids int64 [batch, seq], attention_mask int64 [batch, past + seq] (1 = attend),
//          position_ids int64 [batch, seq], past_key_values.{i}.key|value f32 [batch, kv_heads,
//          past, head_dim];
//     out: logits f32 [batch, seq, vocab], present.{i}.key|value [batch, kv_heads, past + seq,
//          head_dim] (keys after RoPE; both after KV quantization, as sinkquant simulates it).
//     Attention is causal in cache order AND limited to keys the attention_mask keeps, so left
//     or right padding works; RoPE reads position_ids.
//   scoring: input_ids int64 [batch, seq] -> logits f32 [batch, seq, vocab], positions 0..seq-1.
// The whole forward pass of model/model.cc in standard ops (opset 21, IR 10): RMSNorm from
// Mul/ReduceMean/Add/Sqrt/Reciprocal, GatedNorm gates, RoPE from constant cos/sin tables gathered
// at position_ids (or sliced to the sequence), masked attention with GQA, gated attention,
// q/k-norm, SwiGLU; Gemma's embedding scale, post-norms (the residual rotation after them when
// rotated), GeGLU (Gelu approximate="tanh", opset 20+), score and logit soft-caps, and one RoPE
// table per kind of layer (Gemma 3's local layers). Quantized linears (quant/quant_linear.h) become INT4/UINT4 initializers + (blocked)
// DequantizeLinear + MatMul, or com.microsoft MatMulNBits; their input is fake-quantized per
// token with standard ops in the exact float op order of FakeQuantRows. A Linear kind the exporter does not know is refused
// with an Error: it never writes something that computes differently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "model/model.h"
#include "onnx/writer.h"
#include "quant/quantizer.h"

namespace sq {

enum class OnnxFormat {
  kQdq,          // INT4 initializer -> DequantizeLinear (axis, block_size) -> MatMul
  kMatMulNBits,  // com.microsoft MatMulNBits (uint8 [N, K/bs, bs/2], scales, zero points)
};

enum class OnnxLayout { kDecoder, kScoring };

// A 4-bit weight in com.microsoft MatMulNBits's layout: B uint8 [N, n_blocks, block_size / 2]
// (column n, element k in block k / block_size, low nibble when k is even), scales
// [N * n_blocks], zero points packed the same way (empty when symmetric: the default 8 is how
// signed int4 codes are stored, u = q + 8). Each block lies inside one quantization group (a
// group may span several blocks, which repeat its scale). Throws Error naming `name` for other
// widths and for groups that are not a multiple of 16.
struct MatMulNBitsWeight {
  int64_t block_size = 0, n_blocks = 0;
  std::vector<uint8_t> b, zero_points;
  std::vector<float> scales;
};
MatMulNBitsWeight PackMatMulNBits(const QuantizedWeight& w, const std::string& name);

struct OnnxExportOptions {
  OnnxFormat format = OnnxFormat::kQdq;
  OnnxLayout layout = OnnxLayout::kDecoder;
  size_t external_threshold = 1024;  // initializers with more bytes go to `<out><data_suffix>`
  std::string data_suffix = ".data";
};

struct OnnxExportReport {
  OnnxFileSizes files;
  int quantized_linears = 0;      // linears written with integer weights
  int float_linears = 0;          // linears written as float MatMuls
  int act_quantized_linears = 0;  // linears whose input is fake-quantized per token
  int outlier_sides = 0;          // +outliers: linears with an outlier-channel side linear
  // Linear weights as written (codes + scales + zero points) and the same weights in f32 and
  // in the checkpoint's own dtype. Biases, norms, embeddings and tables are `other_bytes`.
  int64_t linear_bytes = 0, linear_f32_bytes = 0, linear_source_bytes = 0;
  int64_t other_bytes = 0;
  int64_t total_initializer_bytes = 0;
};

// Writes `m` to `path` (and `path`.data for large tensors), atomically.
OnnxExportReport ExportOnnx(const Model& m, const std::string& path,
                            const OnnxExportOptions& opt = {});

// Reference data for scripts/onnx/verify.mjs: runs `m` over `windows` (EvaluatePerplexity) and
// writes `json_path` (the token ids of every window, first_target, vocab, sinkquant's ppl and
// nll) and `json_path`.f32 (the logits of every window, [T, V] row-major float32 little endian,
// windows one after another). Both atomically. Returns the perplexity result.
PplResult WriteReferenceLogits(const Model& m, const std::vector<Window>& windows,
                               const std::string& json_path);

}  // namespace sq
