// Graph legend: B = batch, T = seq (new tokens), P = past (cached tokens), S = P + T, d = hidden,
// H = heads, Hkv = KV heads, hd = head_dim, V = vocab. Activations are [B, T, ...] throughout;
// attention works in [B, H, T, hd] against keys [B, H, S, hd].
//
// Both layouts share one graph: Block/Attention are written once and only the inputs, the RoPE
// rows, the attention mask (DecoderInputs + DecoderPrologue or ScoringPrologue) and the KV cache
// (Cache, called from Attention) differ.
#include "onnx/export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <typeinfo>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/ops.h"
#include "quant/kv_quant.h"
#include "quant/online_rotation.h"
#include "quant/outlier_channels.h"
#include "quant/quant_linear.h"
#include "quant/quantizer.h"

namespace sq {

MatMulNBitsWeight PackMatMulNBits(const QuantizedWeight& w, const std::string& name) {
  Check(w.grid.bits == 4, "--onnx-format matmulnbits: " + name + " has " +
                              std::to_string(w.grid.bits) + "-bit weights; MatMulNBits is "
                              "written for 4 bits only (use --onnx-format qdq)");
  const int64_t N = w.rows, K = w.cols;
  const bool per_channel = w.n_groups() == 1, sym = w.grid.sym;
  // A per-channel scale simply repeats in every block.
  int64_t bs = 0;
  if (per_channel) {
    for (bs = 16; bs < 128 && bs < K;) bs *= 2;
  } else {
    for (int64_t cand : {256, 128, 64, 32, 16}) {
      if (w.group % cand == 0) {
        bs = cand;
        break;
      }
    }
  }
  Check(bs > 0, "--onnx-format matmulnbits: " + name + " has groups of " +
                    std::to_string(w.group) + " columns, not a multiple of 16 (use qdq)");
  MatMulNBitsWeight out;
  const int64_t nb = (K + bs - 1) / bs;
  out.block_size = bs;
  out.n_blocks = nb;
  out.b.assign(N * nb * bs / 2, 0);
  out.zero_points.assign(sym ? 0 : N * ((nb + 1) / 2), 0);
  out.scales.resize(N * nb);
  for (int64_t n = 0; n < N; ++n) {
    uint8_t* row = out.b.data() + n * nb * bs / 2;
    for (int64_t k = 0; k < K; ++k) {
      const int u = w.Code(n, k) + (sym ? 8 : 0);
      row[k / 2] |= static_cast<uint8_t>((k % 2) ? u << 4 : u);
    }
    for (int64_t blk = 0; blk < nb; ++blk) {
      const QuantParams qp = w.Params(n, per_channel ? 0 : w.GroupOf(blk * bs));
      out.scales[n * nb + blk] = qp.scale;
      if (!sym) {
        out.zero_points[n * ((nb + 1) / 2) + blk / 2] |=
            static_cast<uint8_t>(blk % 2 ? qp.zero << 4 : qp.zero);
      }
    }
  }
  return out;
}

namespace {

using Ints = std::vector<int64_t>;

constexpr const char* kMsDomain = "com.microsoft";

// A matrix's values in row-major order, not copied (an initializer is written from them at once).
template <class M>  // a Mat or a ConstMatMap
std::span<const float> Flat(const M& m) {
  return {m.data(), static_cast<size_t>(m.size())};
}

// A 2-D weight as a float matrix: a view of its own memory when it is stored as F32 (the
// transformed model's embedding and lm_head: 2 GB each at 8B, never copied for the export),
// else widened into `storage`.
ConstMatMap FloatView(const TensorView& t, Mat& storage) {
  if (t.dtype == DType::kF32) {
    return {reinterpret_cast<const float*>(t.data), t.rows(), t.cols()};
  }
  storage = ToMat(t);
  return {storage.data(), storage.rows(), storage.cols()};
}

// Writes the graph of one model into an OnnxBuilder.
class GraphWriter {
 public:
  GraphWriter(const Model& m, OnnxBuilder& b, const OnnxExportOptions& opt, OnnxExportReport& r)
      : m_(m), c_(m.config), b_(b), opt_(opt), r_(r) {}

  void Build() {
    if (decoder()) {
      DecoderInputs();
      DecoderPrologue();
    } else {
      b_.AddInput("input_ids", OnnxType::kInt64, {kBatch, kSeq});
      ScoringPrologue();
    }
    std::string h = b_.Node("Gather", {Embedding(), "input_ids"}, {{"axis", int64_t{0}}},
                            "embed");  // [B, T, d]
    if (c_.embed_scale != 1.0f) h = Op("Mul", {h, F(c_.embed_scale)}, "embed_scaled");  // Gemma
    for (int l = 0; l < c_.n_layers; ++l) h = Block(l, h);
    const std::string p = "final_norm";
    const std::string x = Norm(h, m_.weights.final_norm, m_.weights.final_norm_gate, p);
    const std::string logits =
        Softcap(Linear(*m_.lm_head, x, "lm_head", m_.weights.lm_head), c_.final_softcap, "final");
    b_.Node("Identity", {logits}, {}, "logits");
    b_.AddOutput("logits", OnnxType::kFloat, {kBatch, kSeq, int64_t{c_.vocab}});
    for (const std::string& present : presents_) {
      b_.AddOutput(present, OnnxType::kFloat, CacheDims(kTotal));
    }
  }

 private:
  // ---- constants (cached by value) ------------------------------------------------------
  std::string I(const Ints& v) {
    std::string key;
    for (int64_t x : v) key += std::to_string(x) + ",";
    auto [it, fresh] = ints_.try_emplace(key);
    if (fresh) it->second = b_.Ints(b_.Unique("const_i64"), v);
    return it->second;
  }
  std::string IScalar(int64_t v) {  // a rank-0 int64
    auto [it, fresh] = int_scalars_.try_emplace(v);
    if (fresh) it->second = b_.Int64(b_.Unique("const_i64_scalar"), {}, {&v, 1});
    return it->second;
  }
  std::string F(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    auto [it, fresh] = floats_.try_emplace(bits);
    if (fresh) it->second = b_.Scalar(b_.Unique("const_f32"), v);
    return it->second;
  }
  std::string Op(const std::string& op, const std::vector<std::string>& in, const std::string& name,
                 const std::vector<OnnxAttr>& attrs = {}) {
    return b_.Node(op, in, attrs, name);
  }

  // ---- layouts --------------------------------------------------------------------------
  // Symbolic dimension names as Hugging Face Optimum writes them.
  inline static const OnnxDim kBatch = std::string("batch_size");
  inline static const OnnxDim kSeq = std::string("sequence_length");
  inline static const OnnxDim kPast = std::string("past_sequence_length");
  inline static const OnnxDim kTotal = std::string("past_sequence_length + sequence_length");

  bool decoder() const { return opt_.layout == OnnxLayout::kDecoder; }
  std::vector<OnnxDim> CacheDims(const OnnxDim& len) const {
    return {kBatch, int64_t{c_.n_kv_heads}, len, int64_t{c_.head_dim}};
  }
  static std::string CacheName(const std::string& kind, int l, const std::string& kv) {
    std::string name = kind;  // (not kind + "." + ...: GCC 12 warns falsely on that)
    name += "." + std::to_string(l) + "." + kv;
    return name;
  }

  // Optimum's decoder inputs: attention_mask covers past and new tokens (1 = attend).
  void DecoderInputs() {
    b_.AddInput("input_ids", OnnxType::kInt64, {kBatch, kSeq});
    b_.AddInput("attention_mask", OnnxType::kInt64, {kBatch, kTotal});
    b_.AddInput("position_ids", OnnxType::kInt64, {kBatch, kSeq});
    for (int l = 0; l < c_.n_layers; ++l) {
      for (const char* kv : {"key", "value"}) {
        b_.AddInput(CacheName("past_key_values", l, kv), OnnxType::kFloat, CacheDims(kPast));
      }
    }
  }

  // The same table values sinkquant uses (MakeRopeTable is per position, so a longer table
  // has identical rows): [max_position, hd/2] each. With longrope the short_factor table of
  // a sequence of original_max_position tokens comes first, then the long_factor table of
  // max_position rows, and RopeOffset picks the rows of the half HF would use.
  // `rc` is the layer's RoPE config (LayerRopeConfig).
  static RopeTable ExportedRopeTable(const ModelConfig& rc) {
    if (!rc.rope_scaling.longrope) return MakeRopeTable(rc, rc.max_position);
    const int orig = rc.rope_scaling.original_max_position, rows = orig + rc.max_position;
    const RopeTable s = MakeRopeTable(rc, orig, orig),
                    l = MakeRopeTable(rc, rc.max_position, orig + 1);
    RopeTable both{Mat(rows, s.cos.cols()), Mat(rows, s.cos.cols())};
    both.cos << s.cos, l.cos;
    both.sin << s.sin, l.sin;
    return both;
  }
  std::pair<std::string, std::string> RopeTables(const ModelConfig& rc, const std::string& p) {
    const RopeTable rope = ExportedRopeTable(rc);
    const int64_t rows = rope.cos.rows(), half = rc.rope_dim() / 2;
    return {b_.Float(p + "/cos_table", {rows, half}, Flat(rope.cos)),
            b_.Float(p + "/sin_table", {rows, half}, Flat(rope.sin))};
  }

  // The first table row for a forward call whose sequence is `len` tokens long (a rank-0
  // int64): 0, or with longrope past original_max_position the start of the long_factor
  // half, as HF's longrope_frequency_update switches per call.
  std::string RopeOffset(const ModelConfig& rc, const std::string& len, const std::string& p) {
    const int64_t orig = rc.rope_scaling.original_max_position;
    const std::string is_long = Op("Greater", {len, IScalar(orig)}, p + "/is_long");
    return Op("Mul",
              {Op("Cast", {is_long}, p + "/is_long_i64", {{"to", int64_t{7}}}), IScalar(orig)},
              p + "/offset");
  }

  // The table rows of the decoder's positions: position_ids, shifted into the long_factor half
  // when longrope's sequence, max(position_ids) + 1 as HF counts it, is long.
  std::string DecoderRopeRows(const ModelConfig& rc, const std::string& p) {
    if (!rc.rope_scaling.longrope) return "position_ids";
    const std::string max_pos =
        Op("ReduceMax", {"position_ids"}, p + "/max_pos", {{"keepdims", int64_t{0}}});
    const std::string len = Op("Add", {max_pos, IScalar(1)}, p + "/seq_len");
    return Op("Add", {"position_ids", RopeOffset(rc, len, p)}, p + "/rows");
  }

  // cos and sin of layer `l`'s RoPE, built on first use: one pair per distinct table (Gemma 3's
  // local layers have their own). Decoder: [B, T, 1, hd/2]; scoring: [T, 1, hd/2].
  const std::pair<std::string, std::string>& RopeOf(int l) {
    const bool local = LocalRope(c_, l);
    auto [it, fresh] = rope_.try_emplace(local);
    if (!fresh) return it->second;
    const ModelConfig rc = LayerRopeConfig(c_, l);
    const std::string p = local ? "rope_local" : "rope";
    it->second = decoder() ? DecoderRope(rc, p) : ScoringRope(rc, p);
    return it->second;
  }

  // Decoder: the table rows gathered at position_ids.
  std::pair<std::string, std::string> DecoderRope(const ModelConfig& rc, const std::string& p) {
    auto [cos_table, sin_table] = RopeTables(rc, p);
    const std::string rows = DecoderRopeRows(rc, p);
    auto table = [&](const std::string& full, const std::string& name) {
      const std::string g =
          Op("Gather", {full, rows}, name + "/gather", {{"axis", int64_t{0}}});  // [B, T, hd/2]
      return Op("Unsqueeze", {g, I({2})}, name);                                 // [B, T, 1, hd/2]
    };
    return {table(cos_table, p + "/cos"), table(sin_table, p + "/sin")};
  }

  // Scoring: the tables sliced to the T rows of positions 0..T-1.
  std::pair<std::string, std::string> ScoringRope(const ModelConfig& rc, const std::string& p) {
    auto [cos_table, sin_table] = RopeTables(rc, p);
    std::string first = I({0}), last = seq_len_;  // [1] each: the rows [first, last) of the tables
    if (rc.rope_scaling.longrope) {
      first = Op("Unsqueeze", {RopeOffset(rc, seq_len_scalar_, p), I({0})}, p + "/first");
      last = Op("Add", {first, seq_len_}, p + "/last");
    }
    auto table = [&](const std::string& full, const std::string& name) {
      const std::string s = Op("Slice", {full, first, last, I({0})}, name + "/slice");  // [T, hd/2]
      return Op("Unsqueeze", {s, I({1})}, name);  // [T, 1, hd/2]: broadcasts over B and heads
    };
    return {table(cos_table, p + "/cos"), table(sin_table, p + "/sin")};
  }

  // Decoder: the mask "key after the query in the cache, or a key the attention_mask drops".
  // The query of new token i sits at cache index P + i, with P = S - T read off the mask's shape.
  void DecoderPrologue() {
    const std::string t = Op("Gather", {Op("Shape", {"input_ids"}, "seq/shape"), IScalar(1)},
                             "seq/len");                                           // T
    const std::string s = Op("Gather", {Op("Shape", {"attention_mask"}, "total/shape"),
                                        IScalar(1)}, "total/len");                 // S
    const std::string past = Op("Sub", {s, t}, "past/len");                        // P
    const std::string qpos = Op("Range", {past, s, IScalar(1)}, "mask/query_pos");  // [T]
    const std::string kpos = Op("Range", {IScalar(0), s, IScalar(1)}, "mask/key_pos");  // [S]
    const std::string future = Op("Greater", {Op("Unsqueeze", {kpos, I({0})}, "mask/key"),
                                              Op("Unsqueeze", {qpos, I({1})}, "mask/query")},
                                  "mask/future");                                  // [T, S]
    // Sliding windows count token positions: position_ids for the queries and, for the keys,
    // cumsum(attention_mask) - 1 (how the caller numbers positions). Without padding these are
    // the cache indices HF's mask compares; with left padding each prompt keeps its own window.
    const std::string kreal =
        Op("Sub", {Op("CumSum", {"attention_mask", IScalar(1)}, "mask/key_count"), IScalar(1)},
           "mask/key_position");
    key_pos_ = Op("Unsqueeze", {kreal, I({1, 2})}, "mask/key_pos_4d");               // [B,1,1,S]
    query_pos_ = Op("Unsqueeze", {"position_ids", I({1, 3})}, "mask/query_pos_4d");  // [B,1,T,1]
    const std::string dropped = Op("Equal", {"attention_mask", IScalar(0)}, "mask/dropped");
    const std::string pad = Op("Unsqueeze", {dropped, I({1, 2})}, "mask/padding");  // [B,1,1,S]
    blocked_ = Op("Or", {future, pad}, "mask/blocked");                            // [B,1,T,S]
    // The lowest float, not -inf: a padding query whose keys are all dropped gets a uniform
    // (finite, ignored) row instead of NaN, which would reach real tokens through 0 * NaN.
    // exp(lowest - max) is exactly 0, so unpadded rows are the same as with -inf.
    fill_ = F(std::numeric_limits<float>::lowest());
  }

  // Scoring: the sequence length (for ScoringRope) and the causal mask [T, T].
  void ScoringPrologue() {
    const std::string shape = Op("Shape", {"input_ids"}, "seq/shape");                  // [2]
    seq_len_ = Op("Slice", {shape, I({1}), I({2}), I({0})}, "seq/len");                 // [1]
    seq_len_scalar_ = Op("Gather", {shape, IScalar(1)}, "seq/len_scalar");              // []
    const std::string pos =
        Op("Range", {IScalar(0), seq_len_scalar_, IScalar(1)}, "mask/pos");             // [T]
    query_pos_ = Op("Unsqueeze", {pos, I({1})}, "mask/query");                          // [T, 1]
    key_pos_ = Op("Unsqueeze", {pos, I({0})}, "mask/key");                              // [1, T]
    blocked_ = Op("Greater", {key_pos_, query_pos_}, "mask/future");  // [T, T]: key after query
    fill_ = F(-std::numeric_limits<float>::infinity());
  }

  // The mask of a layer with sliding window `w` (0: the causal mask itself): also blocked are
  // keys at cache positions <= query - w (HF keeps kv > q - w), built once per window size.
  std::string Blocked(int w) {
    if (w == 0) return blocked_;
    auto [it, fresh] = windowed_.try_emplace(w);
    if (!fresh) return it->second;
    const std::string p = "mask/window" + std::to_string(w);
    const std::string back = Op("Sub", {query_pos_, key_pos_}, p + "/distance");  // [T, S]
    const std::string old = Op("Greater", {back, IScalar(w - 1)}, p + "/too_old");
    it->second = Op("Or", {blocked_, old}, p);
    return it->second;
  }

  std::string Embedding() {
    const TensorView& e = m_.weights.embed;
    Mat widened;
    const ConstMatMap values = FloatView(e, widened);
    embed_ = b_.Float("embed.weight", {e.rows(), e.cols()}, Flat(values));
    return embed_;
  }

  // ---- blocks ---------------------------------------------------------------------------
  std::string Block(int l, std::string h) {
    const LayerWeights& L = m_.weights.layers[l];
    const LayerLinears& lin = m_.linears[l];
    std::string p = "l";  // (not "l" + ...: GCC 12 warns falsely on that)
    p += std::to_string(l) + "/";
    std::string x = Norm(h, L.attn_norm, L.attn_norm_gate, p + "attn_norm");
    const std::string attn = Attention(l, x, p);                                  // [B, T, H*hd]
    std::string y = Linear(*lin.o, attn, p + "o_proj", L.wo);
    if (c_.post_norms) y = PostNorm(lin, y, L.attn_post_norm, p + "attn_post_norm");  // Gemma
    h = Op("Add", {h, y}, p + "attn_residual");
    x = Norm(h, L.ffn_norm, L.ffn_norm_gate, p + "ffn_norm");
    const std::string g = Linear(*lin.gate, x, p + "gate_proj", L.w_gate);       // [B, T, f]
    const std::string u = Linear(*lin.up, x, p + "up_proj", L.w_up);
    y = Linear(*lin.down, GatedActivation(g, u, p), p + "down_proj", L.w_down);
    if (c_.post_norms) y = PostNorm(lin, y, L.ffn_post_norm, p + "ffn_post_norm");
    return Op("Add", {h, y}, p + "ffn_residual");
  }

  // Gemma's post-norm of a branch output, then the residual stream's rotation when it is rotated
  // (PostNorm in model/model.cc: Q cannot fold through the norm's weight, so it runs here).
  std::string PostNorm(const LayerLinears& lin, const std::string& y, const TensorView& w,
                       const std::string& p) {
    const std::string n = RmsNorm(y, w, p);
    return lin.post_out ? Rotate(n, HeadRotationOf(*lin.post_out), p + "/rotate") : n;
  }

  // act(gate) * up: SwiGLU, or Gemma's GeGLU with ONNX's Gelu(approximate="tanh") (opset 20+),
  // the formula of GeluTanh.
  std::string GatedActivation(const std::string& g, const std::string& u, const std::string& p) {
    if (c_.ffn_activation == FfnActivation::kGeluTanh) {
      const std::string gelu = Op("Gelu", {g}, p + "gelu", {{"approximate", std::string("tanh")}});
      return Op("Mul", {gelu, u}, p + "geglu");
    }
    const std::string silu = Op("Mul", {g, Op("Sigmoid", {g}, p + "silu/sigmoid")}, p + "silu");
    return Op("Mul", {silu, u}, p + "swiglu");
  }

  // tanh(x / cap) * cap as Softcap computes it; cap 0 leaves x alone.
  std::string Softcap(const std::string& x, float cap, const std::string& p) {
    if (cap <= 0) return x;
    const std::string t =
        Op("Tanh", {Op("Div", {x, F(cap)}, p + "/softcap_div")}, p + "/softcap_tanh");
    return Op("Mul", {t, F(cap)}, p + "/softcap");
  }

  // x * (1 / sqrt(mean(x^2) + eps)) * w over the last axis, as RmsNorm computes it.
  std::string RmsNorm(const std::string& x, const TensorView& w, const std::string& p) {
    const std::string sq = Op("Mul", {x, x}, p + "/square");
    const std::string ms = Op("ReduceMean", {sq, I({-1})}, p + "/mean", {{"keepdims", int64_t{1}}});
    const std::string rs = Op("Sqrt", {Op("Add", {ms, F(c_.norm_eps)}, p + "/add_eps")}, p + "/rms");
    std::string y = Op("Mul", {x, Op("Reciprocal", {rs}, p + "/inv_rms")}, p + "/normed");
    if (w.empty()) return y;
    const std::string wn = b_.Float(p + ".weight", {w.numel()}, Flat(ToMat(w)));
    return Op("Mul", {y, wn}, p + "/scaled");
  }

  // RMSNorm, then GatedNorm's gate y * sigmoid(up @ silu(down @ y)) when present.
  std::string Norm(const std::string& x, const TensorView& w, const NormGate& gate,
                   const std::string& p) {
    const std::string y = RmsNorm(x, w, p);
    if (!gate.present()) return y;
    const Mat down_t = ToMat(gate.down).transpose(), up_t = ToMat(gate.up).transpose();
    const std::string dn = b_.Float(p + ".gate_down.weight_t", {down_t.rows(), down_t.cols()},
                                    Flat(down_t));  // [d, r]
    const std::string un = b_.Float(p + ".gate_up.weight_t", {up_t.rows(), up_t.cols()},
                                    Flat(up_t));    // [r, d]
    const std::string z = Op("MatMul", {y, dn}, p + "/gate_down");
    const std::string s = Op("Mul", {z, Op("Sigmoid", {z}, p + "/gate_silu/sigmoid")},
                             p + "/gate_silu");
    const std::string g = Op("Sigmoid", {Op("MatMul", {s, un}, p + "/gate_up")}, p + "/gate");
    return Op("Mul", {y, g}, p + "/gated");
  }

  std::string Attention(int l, const std::string& x, const std::string& p) {
    const LayerWeights& L = m_.weights.layers[l];
    const LayerLinears& lin = m_.linears[l];
    const int64_t H = c_.n_heads, Hkv = c_.n_kv_heads, hd = c_.head_dim;
    const std::string q = Linear(*lin.q, x, p + "q_proj", L.wq);  // [B, T, H*hd] (or 2*H*hd)
    const std::string k = Linear(*lin.k, x, p + "k_proj", L.wk);  // [B, T, Hkv*hd]
    const std::string v = Linear(*lin.v, x, p + "v_proj", L.wv);
    std::string q4, gate4;
    if (c_.attn_output_gate) {  // per head: [query | gate]
      const std::string qg = Op("Reshape", {q, I({0, 0, H, 2, hd})}, p + "q_gate_split");
      q4 = Op("Gather", {qg, IScalar(0)}, p + "query", {{"axis", int64_t{3}}});  // [B, T, H, hd]
      gate4 = Op("Gather", {qg, IScalar(1)}, p + "gate", {{"axis", int64_t{3}}});
    } else {
      q4 = Op("Reshape", {q, I({0, 0, H, hd})}, p + "query");
    }
    std::string k4 = Op("Reshape", {k, I({0, 0, Hkv, hd})}, p + "key");    // [B, T, Hkv, hd]
    std::string v4 = Op("Reshape", {v, I({0, 0, Hkv, hd})}, p + "value");
    if (c_.qk_norm) {
      q4 = RmsNorm(q4, L.q_norm, p + "q_norm");
      k4 = RmsNorm(k4, L.k_norm, p + "k_norm");
    }
    if (c_.rope(l)) {  // NoPE layers (SmolLM3) attend by content alone
      q4 = Rope(q4, H, RopeOf(l), p + "q_rope");
      k4 = Rope(k4, Hkv, RopeOf(l), p + "k_rope");
    }
    if (lin.qk) {  // kv-rotate: [B, T, n, hd] x [hd, hd], so the cache holds rotated keys
      const Rotation& r = HeadRotationOf(*lin.qk);
      q4 = Rotate(q4, r, p + "q_rotate");
      k4 = Rotate(k4, r, p + "k_rotate");
    }
    if (m_.kv_quant) {
      k4 = KvQuant(k4, p + "k_quant");
      v4 = KvQuant(v4, p + "v_quant");
    }
    const Ints heads_first = {0, 2, 1, 3};
    std::string kh = Op("Transpose", {k4}, p + "k_heads", {{"perm", heads_first}});  // [B,Hkv,T,hd]
    std::string vh = Op("Transpose", {v4}, p + "v_heads", {{"perm", heads_first}});
    if (decoder()) {  // the cache holds keys after RoPE and KV quantization: [B, Hkv, S, hd]
      kh = Cache(l, "key", kh);
      vh = Cache(l, "value", vh);
    }
    if (H != Hkv) {  // GQA: head h reads KV head h / (H / Hkv)
      kh = RepeatKv(kh, p + "k_repeat");
      vh = RepeatKv(vh, p + "v_repeat");
    }
    const std::string qt = Op("Transpose", {q4}, p + "q_t", {{"perm", heads_first}});
    const std::string kt = Op("Transpose", {kh}, p + "k_t", {{"perm", Ints{0, 1, 3, 2}}});
    const std::string& vt = vh;
    std::string s =
        Op("Mul", {Op("MatMul", {qt, kt}, p + "qk"), F(c_.attention_scale())}, p + "scores");
    s = Softcap(s, c_.attn_softcap, p + "scores");  // Gemma 2, before the mask as HF does
    s = Op("Where", {Blocked(c_.window(l)), fill_, s}, p + "masked");
    const std::string pr = Op("Softmax", {s}, p + "probs", {{"axis", int64_t{-1}}});  // [B,H,T,S]
    std::string o = Op("MatMul", {pr, vt}, p + "attn");                               // [B,H,T,hd]
    o = Op("Transpose", {o}, p + "attn_t", {{"perm", Ints{0, 2, 1, 3}}});             // [B,T,H,hd]
    if (lin.attn_out) o = RotateBack(o, HeadRotationOf(*lin.attn_out), p + "v_unrotate");
    if (c_.attn_output_gate) {
      o = Op("Mul", {o, Op("Sigmoid", {gate4}, p + "gate_sigmoid")}, p + "attn_gated");
    }
    return Op("Reshape", {o, I({0, 0, H * hd})}, p + "attn_out");
  }

  static const Rotation& HeadRotationOf(const HeadRotation& h) {
    const auto* r = dynamic_cast<const Rotation*>(&h);
    if (!r) {
      throw Error(std::string("ONNX export: unknown head rotation ") + typeid(h).name() +
                  " (only Rotation is exported)");
    }
    return *r;
  }

  // Rotates x [B, T, n, hd] with the pairing of the config. Partial rotary (Phi-3): only the
  // first rope_dim dims rotate, the rest are concatenated back unchanged.
  // `cs` is the layer's (cos, sin) from RopeOf.
  std::string Rope(const std::string& x, int64_t n, const std::pair<std::string, std::string>& cs,
                   const std::string& p) {
    const int64_t hd = c_.head_dim, rot = c_.rope_dim();
    if (rot == hd) return RopeDims(x, n, rot, cs, p);
    const auto parts =
        b_.NodeN("Split", {x, I({rot, hd - rot})}, 2, {{"axis", int64_t{-1}}}, p + "/partial");
    return Op("Concat", {RopeDims(parts[0], n, rot, cs, p + "/rot"), parts[1]}, p,
              {{"axis", int64_t{-1}}});
  }

  // Rotates all `dim` dims of each head of x [B, T, n, dim].
  std::string RopeDims(const std::string& x, int64_t n, int64_t dim,
                       const std::pair<std::string, std::string>& cs, const std::string& p) {
    const int64_t hd = dim, half = hd / 2;
    const std::string &cos_t = cs.first, &sin_t = cs.second;
    auto rotate = [&](const std::string& x0, const std::string& x1, std::string* y0,
                      std::string* y1) {
      *y0 =
          Op("Sub", {Op("Mul", {x0, cos_t}, p + "/x0_cos"), Op("Mul", {x1, sin_t}, p + "/x1_sin")},
             p + "/y0");
      *y1 =
          Op("Add", {Op("Mul", {x1, cos_t}, p + "/x1_cos"), Op("Mul", {x0, sin_t}, p + "/x0_sin")},
             p + "/y1");
    };
    std::string y0, y1;
    if (c_.rope_pairing == RopePairing::kHalf) {  // (x[i], x[i + hd/2])
      const auto parts = b_.NodeN("Split", {x, I({half, half})}, 2, {{"axis", int64_t{-1}}},
                                  p + "/split");
      rotate(parts[0], parts[1], &y0, &y1);
      return Op("Concat", {y0, y1}, p, {{"axis", int64_t{-1}}});
    }
    // kAdjacent: (x[2i], x[2i+1])
    const std::string x5 = Op("Reshape", {x, I({0, 0, n, half, 2})}, p + "/pairs");
    const std::string x0 = Op("Gather", {x5, IScalar(0)}, p + "/even", {{"axis", int64_t{4}}});
    const std::string x1 = Op("Gather", {x5, IScalar(1)}, p + "/odd", {{"axis", int64_t{4}}});
    rotate(x0, x1, &y0, &y1);
    const std::string y = Op("Concat", {Op("Unsqueeze", {y0, I({-1})}, p + "/y0_u"),
                                        Op("Unsqueeze", {y1, I({-1})}, p + "/y1_u")},
                             p + "/interleave", {{"axis", int64_t{-1}}});
    return Op("Reshape", {y, I({0, 0, n, hd})}, p);
  }

  // present.{l}.{kv} = past_key_values.{l}.{kv} followed by the new tokens' x [B, Hkv, T, hd].
  std::string Cache(int l, const std::string& kv, const std::string& x) {
    const std::string present = CacheName("present", l, kv);
    Op("Concat", {CacheName("past_key_values", l, kv), x}, present, {{"axis", int64_t{2}}});
    presents_.push_back(present);
    return present;
  }

  // [B, Hkv, S, hd] -> [B, H, S, hd], each KV head repeated H / Hkv times in a row.
  std::string RepeatKv(const std::string& x, const std::string& p) {
    const int64_t rep = c_.heads_per_kv();
    const std::string u = Op("Unsqueeze", {x, I({2})}, p + "/unsqueeze");  // [B, Hkv, 1, S, hd]
    const std::string t = Op("Tile", {u, I({1, 1, rep, 1, 1})}, p + "/tile");
    return Op("Reshape", {t, I({0, c_.n_heads, -1, c_.head_dim})}, p);
  }

  // GroupKvQuantizer::Apply in the same float op order, on x [B, T, Hkv, hd].
  std::string KvQuant(const std::string& x, const std::string& p) {
    const auto* kv = dynamic_cast<const GroupKvQuantizer*>(m_.kv_quant.get());
    if (!kv) {
      throw Error(std::string("ONNX export: unknown KV quantizer ") +
                  typeid(*m_.kv_quant).name() + " (only GroupKvQuantizer is exported)");
    }
    const int64_t hd = c_.head_dim, G = kv->group() == 0 ? hd : kv->group();
    Check(hd % G == 0, "ONNX export: KV group " + std::to_string(G) + " does not divide head_dim");
    const float qmax = static_cast<float>((1 << kv->bits()) - 1);
    const std::string xg = Op("Reshape", {x, I({0, 0, c_.n_kv_heads, hd / G, G})}, p + "/groups");
    const std::vector<OnnxAttr> keep = {{"keepdims", int64_t{1}}};
    const std::string lo = Op("Min", {Op("ReduceMin", {xg, I({-1})}, p + "/min", keep), F(0.0f)},
                              p + "/lo");
    const std::string hi = Op("Max", {Op("ReduceMax", {xg, I({-1})}, p + "/max", keep), F(0.0f)},
                              p + "/hi");
    const std::string range = Op("Max", {Op("Sub", {hi, lo}, p + "/range"), F(kActScaleEps)},
                                 p + "/range_eps");
    const std::string s = Op("Div", {range, F(qmax)}, p + "/scale");
    const std::string z0 = Op("Round", {Op("Div", {Op("Neg", {lo}, p + "/neg_lo"), s}, p + "/z_div")},
                              p + "/z_round");
    const std::string z = Op("Clip", {z0, F(0.0f), F(qmax)}, p + "/zero");
    const std::string q0 = Op("Round", {Op("Div", {xg, s}, p + "/div")}, p + "/round");
    const std::string q = Op("Clip", {Op("Add", {q0, z}, p + "/add_zero"), F(0.0f), F(qmax)},
                             p + "/code");
    const std::string y = Op("Mul", {Op("Sub", {q, z}, p + "/sub_zero"), s}, p + "/dequant");
    return Op("Reshape", {y, I({0, 0, c_.n_kv_heads, hd})}, p);
  }

  // ---- linears --------------------------------------------------------------------------
  // FakeQuantRows (ActQuantSpec::RowScale, then the codes) in the same float op order.
  std::string ActQuant(const std::string& x, const ActQuantSpec& a, const std::string& p) {
    const auto [codes, s] = ActCodes(x, a, p);
    return Op("Mul", {codes, s}, p);
  }

  // QuantizeActRows: the codes (as floats) and the per-token scale [.., 1].
  std::pair<std::string, std::string> ActCodes(const std::string& x, const ActQuantSpec& a,
                                               const std::string& p) {
    const float qmax = a.qmax(), qmin = a.qmin();
    std::string amax = Op("ReduceMax", {Op("Abs", {x}, p + "/abs"), I({-1})}, p + "/absmax",
                          {{"keepdims", int64_t{1}}});
    if (a.clip != 1.0f) amax = Op("Mul", {amax, F(a.clip)}, p + "/clip");
    amax = Op("Max", {amax, F(kActScaleEps)}, p + "/absmax_eps");
    const std::string s = Op("Div", {amax, F(qmax)}, p + "/scale");
    const std::string r = Op("Round", {Op("Div", {x, s}, p + "/div")}, p + "/round");
    return {Op("Clip", {r, F(qmin), F(qmax)}, p + "/code"), s};
  }

  std::string AddBias(const std::string& y, const Vec& bias, const std::string& p) {
    if (bias.size() == 0) return y;
    const std::string bn = b_.Float(p + ".bias", {bias.size()}, {bias.data(), size_t(bias.size())});
    return Op("Add", {y, bn}, p + "/bias");
  }

  // y = lin(x) for x [B, T, in]; `source` is the checkpoint's view of the weight (for the
  // size report).
  std::string Linear(const sq::Linear& lin, const std::string& x, const std::string& p,
                     const TensorView& source) {
    if (!IsTiedHead(lin)) {  // a tied lm_head is the embedding table: no bytes of its own
      r_.linear_source_bytes += static_cast<int64_t>(source.nbytes());
      r_.linear_f32_bytes += int64_t{4} * lin.in_features() * lin.out_features();
    }
    return LinearOp(lin, x, p);
  }

  bool IsTiedHead(const sq::Linear& lin) const {
    const auto* d = dynamic_cast<const DenseLinear*>(&lin);
    return d && d->weight().data == m_.weights.embed.data &&
           d->weight().shape == m_.weights.embed.shape;
  }

  std::string LinearOp(const sq::Linear& lin, const std::string& x, const std::string& p) {
    if (const auto* d = dynamic_cast<const DenseLinear*>(&lin)) return Dense(*d, x, p);
    if (const auto* a = dynamic_cast<const ActQuantLinear*>(&lin)) {
      if (!a->act().enabled()) return LinearOp(*a->inner(), x, p);
      ++r_.act_quantized_linears;
      return LinearOp(*a->inner(), ActQuant(x, a->act(), p + "/act_quant"), p);
    }
    if (const auto* q = dynamic_cast<const QuantWeightLinear*>(&lin)) {
      ++r_.quantized_linears;
      const std::string y = opt_.format == OnnxFormat::kQdq ? Qdq(*q->weight(), x, p)
                                                             : MatMulNBits(*q->weight(), x, p);
      return AddBias(y, q->bias(), p);
    }
    if (const auto* rot = dynamic_cast<const OnlineRotation*>(&lin)) {
      return LinearOp(*rot->inner(), Rotate(x, *rot->rotation(), p), p);
    }
    if (const auto* o = dynamic_cast<const OutlierChannelsLinear*>(&lin)) {
      const auto& [masked, gathered] = SplitChannels(x, o->channels(), o->in_features(), p);
      const std::string main = LinearOp(*o->inner(), masked, p);
      return Op("Add", {main, SideOp(*o->side(), gathered, p + ".outliers")}, p + "/add_outliers");
    }
    throw Error(std::string("ONNX export: ") + p + " is a Linear of unknown kind (" +
                typeid(lin).name() + "); refusing to export a graph that would compute "
                "something else");
  }

  // +outliers: x with `channels` zeroed (Mul by a 0/1 mask) and x[..., channels] (Gather),
  // computed once for the linears that share x and the channels (q/k/v, gate/up).
  const std::pair<std::string, std::string>& SplitChannels(const std::string& x,
                                                           const std::vector<int>& channels,
                                                           int64_t width, const std::string& p) {
    auto [it, fresh] = split_.try_emplace({x, channels});
    if (!fresh) return it->second;
    std::vector<float> mask(width, 1.0f);
    for (int c : channels) mask[c] = 0.0f;
    const std::vector<int64_t> idx(channels.begin(), channels.end());
    const std::string m = b_.Float(b_.Unique(p + ".outlier_mask"), {width}, mask);
    const std::string i = b_.Int64(b_.Unique(p + ".outlier_channels"), {int64_t(idx.size())}, idx);
    it->second = {Op("Mul", {x, m}, p + "/mask_outliers"),
                  Op("Gather", {x, i}, p + "/gather_outliers", {{"axis", int64_t{-1}}})};
    return it->second;
  }

  // An outlier side (8-bit weights: no MatMulNBits form). With quantized activations it is
  // written as QuantWeightLinear::ApplyToCodes computes it: the code products summed by a float
  // MatMul (exact in any order while FloatSumsExact holds: up to 1024 channels at 8 bits), times
  // the weight scale, times the token scale. The same floats as sinkquant, so 8-bit rounding in
  // ORT never flips against it (a QDQ product rounds differently, and the large outlier values
  // make those flips frequent). Weight-only: QDQ, as QuantWeightLinear::Apply.
  std::string SideOp(const sq::Linear& side, const std::string& x, const std::string& p) {
    const auto* a = dynamic_cast<const ActQuantLinear*>(&side);
    const auto* q = dynamic_cast<const QuantWeightLinear*>(a ? a->inner().get() : &side);
    Check(q != nullptr && q->weight()->n_groups() == 1,
          "ONNX export: " + p + " is an outlier side of unknown kind");
    ++r_.outlier_sides;  // part of a linear already counted
    if (!a || !a->act().enabled()) return AddBias(Qdq(*q->weight(), x, p), q->bias(), p);
    const QuantizedWeight& w = *q->weight();
    const auto [codes, s] = ActCodes(x, a->act(), p + "/act_quant");
    Mat wc;
    w.CentredCodes(0, w.rows, 0, wc);  // [N, K]
    const Mat wct = wc.transpose();
    const Vec sw = w.scales.col(0);
    const int64_t before = b_.initializer_bytes();
    const std::string wcn = b_.Float(p + ".weight_codes", {wct.rows(), wct.cols()}, Flat(wct));
    const std::string swn =
        b_.Float(p + ".weight_scale", {sw.size()}, {sw.data(), size_t(sw.size())});
    r_.linear_bytes += b_.initializer_bytes() - before;
    const std::string dot = Op("MatMul", {codes, wcn}, p + "/code_dot");
    const std::string y = Op("Mul", {Op("Mul", {dot, swn}, p + "/weight_scale"), s}, p);
    return AddBias(y, q->bias(), p);
  }

  // x Q over the last axis (the product Rotation::ApplyRef computes): a Hadamard as its two
  // Kronecker factors, any other Q as one constant MatMul. q/k/v and gate/up share one rotated
  // input, computed once.
  std::string Rotate(const std::string& x, const Rotation& q, const std::string& p) {
    auto [it, fresh] = rotated_.try_emplace({x, &q});
    if (!fresh) return it->second;
    if (q.is_hadamard()) {
      it->second = RotateFactored(x, q, p);
      return it->second;
    }
    auto [qit, new_q] = rotations_.try_emplace(&q);
    if (new_q) {
      const Mat& m = q.matrix();  // [n, n]
      qit->second = b_.Float(b_.Unique(p + ".online_rotation"), {m.rows(), m.cols()}, Flat(m));
    }
    it->second = Op("MatMul", {x, qit->second}, p + "/rotate");
    return it->second;
  }

  // The constants of one Hadamard's KroneckerFactors, written once per rotation.
  struct FactorNames {
    std::string signs, left, right;
    int64_t p = 0, m = 0;
  };

  // x Q for a Hadamard Q (quant/hadamard.h's KroneckerFactors): x * scaled_signs, read as
  // [.., p, m], right-multiplied by `right` and left-multiplied by `left`, then given x's shape
  // back (any rank: per head or the whole row). (p + m) n multiply-adds a row instead of n^2,
  // and two small initializers instead of an n x n one (822 MB at 8B's down_proj).
  std::string RotateFactored(const std::string& x, const Rotation& q, const std::string& p) {
    auto [fit, fresh] = factors_.try_emplace(&q);
    if (fresh) {
      const KroneckerFactors f = q.Factors();
      const std::string name = p + ".online_hadamard";
      FactorNames& c = fit->second;
      c.p = f.left.rows(), c.m = f.right.rows();
      c.signs = b_.Float(b_.Unique(name + ".signs"), {f.scaled_signs.size()}, Flat(f.scaled_signs));
      c.left = b_.Float(b_.Unique(name + ".left"), {c.p, c.p}, Flat(f.left));
      c.right = b_.Float(b_.Unique(name + ".right"), {c.m, c.m}, Flat(f.right));
    }
    const FactorNames& c = fit->second;
    std::string y =
        Op("Reshape", {Op("Mul", {x, c.signs}, p + "/signs"), I({-1, c.p, c.m})}, p + "/blocks");
    if (c.m > 1) y = Op("MatMul", {y, c.right}, p + "/right");
    if (c.p > 1) y = Op("MatMul", {c.left, y}, p + "/left");
    return Op("Reshape", {y, Op("Shape", {x}, p + "/shape")}, p + "/rotate");
  }

  // x Q^T as a constant MatMul over the last axis (Rotation::ApplyTransposed).
  std::string RotateBack(const std::string& x, const Rotation& q, const std::string& p) {
    auto [it, fresh] = inverse_rotations_.try_emplace(&q);
    if (fresh) {
      const Mat m = q.matrix().transpose();
      it->second = b_.Float(b_.Unique(p + ".rotation_t"), {m.rows(), m.cols()}, Flat(m));
    }
    return Op("MatMul", {x, it->second}, p);
  }

  std::string Dense(const DenseLinear& d, const std::string& x, const std::string& p) {
    ++r_.float_linears;
    const TensorView& w = d.weight();
    std::string wt;
    if (IsTiedHead(d)) {
      // Tied lm_head: reuse the embedding table (ORT folds the constant Transpose).
      wt = Op("Transpose", {embed_}, p + ".weight_t", {{"perm", Ints{1, 0}}});
    } else {
      Mat widened;
      const Mat t = FloatView(w, widened).transpose();  // [in, out]
      widened = Mat();
      wt = b_.Float(p + ".weight_t", {t.rows(), t.cols()}, Flat(t));
      r_.linear_bytes += static_cast<int64_t>(t.size()) * 4;
    }
    const std::string y = Op("MatMul", {x, wt}, p);
    return d.bias().empty() ? y : AddBias(y, ToVec(d.bias()), p);
  }

  // Codes [K, N] (transposed) -> DequantizeLinear (blocked along K, or per output channel) ->
  // MatMul. Codes of <= 4 bits are INT4/UINT4, wider ones INT8/UINT8.
  std::string Qdq(const QuantizedWeight& w, const std::string& x, const std::string& p) {
    const int64_t N = w.rows, K = w.cols, ng = w.n_groups();
    const bool sym = w.grid.sym, nibble = w.grid.bits <= 4, per_channel = ng == 1;
    std::vector<int8_t> codes(K * N);
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t n = 0; n < N; ++n) codes[k * N + n] = static_cast<int8_t>(w.Code(n, k));
    }
    auto ints = [&](const std::string& name, const Ints& shape, const std::vector<int8_t>& v) {
      std::vector<uint8_t> u(v.begin(), v.end());
      if (nibble) return sym ? b_.Int4(name, shape, v) : b_.Uint4(name, shape, u);
      return sym ? b_.Int8(name, shape, v) : b_.Uint8(name, shape, u);
    };
    const int64_t before = b_.initializer_bytes();
    const std::string wq = ints(p + ".weight_q", {K, N}, codes);
    std::vector<float> scales(ng * N);
    std::vector<int8_t> zeros(sym ? 0 : ng * N);
    for (int64_t g = 0; g < ng; ++g) {
      for (int64_t n = 0; n < N; ++n) {
        const QuantParams qp = w.Params(n, g);
        scales[g * N + n] = qp.scale;
        if (!sym) zeros[g * N + n] = static_cast<int8_t>(qp.zero);
      }
    }
    const Ints sshape = per_channel ? Ints{N} : Ints{ng, N};
    std::vector<std::string> in = {wq, b_.Float(p + ".weight_scale", sshape, scales)};
    if (!sym) in.push_back(ints(p + ".weight_zero", sshape, zeros));
    r_.linear_bytes += b_.initializer_bytes() - before;
    std::vector<OnnxAttr> attrs = {{"axis", int64_t{per_channel ? 1 : 0}}};
    if (!per_channel) attrs.push_back({"block_size", int64_t{w.group}});
    const std::string wt = Op("DequantizeLinear", in, p + ".weight_t", attrs);  // [K, N]
    return Op("MatMul", {x, wt}, p);
  }

  // com.microsoft MatMulNBits with the weight packed by PackMatMulNBits.
  std::string MatMulNBits(const QuantizedWeight& w, const std::string& x, const std::string& p) {
    const MatMulNBitsWeight packed = PackMatMulNBits(w, p);
    const int64_t N = w.rows, K = w.cols, bs = packed.block_size;
    const int64_t before = b_.initializer_bytes();
    std::vector<std::string> in = {
        x, b_.Uint8(p + ".weight_nbits", {N, packed.n_blocks, bs / 2}, packed.b),
        b_.Float(p + ".weight_scale", {N * packed.n_blocks}, packed.scales)};
    if (!packed.zero_points.empty()) {
      in.push_back(b_.Uint8(p + ".weight_zero", {N * ((packed.n_blocks + 1) / 2)}, packed.zero_points));
    }
    r_.linear_bytes += b_.initializer_bytes() - before;
    return b_.Node("MatMulNBits", in,
                   {{"K", K}, {"N", N}, {"bits", int64_t{4}}, {"block_size", bs}}, p, kMsDomain);
  }

  const Model& m_;
  const ModelConfig& c_;
  OnnxBuilder& b_;
  const OnnxExportOptions& opt_;
  OnnxExportReport& r_;
  std::map<std::string, std::string> ints_;
  std::map<int64_t, std::string> int_scalars_;
  std::map<uint32_t, std::string> floats_;
  std::map<std::pair<std::string, const Rotation*>, std::string> rotated_;
  std::map<const Rotation*, std::string> rotations_;          // dense Q constants
  std::map<const Rotation*, FactorNames> factors_;            // Hadamard Q constants
  std::map<const Rotation*, std::string> inverse_rotations_;  // Q^T constants
  // +outliers: (masked x, gathered x) per (x, channels)
  std::map<std::pair<std::string, std::vector<int>>, std::pair<std::string, std::string>> split_;
  std::string embed_;
  std::map<bool, std::pair<std::string, std::string>> rope_;  // LocalRope -> (cos, sin)
  std::string seq_len_, seq_len_scalar_;                      // scoring: T as [1] and as a scalar
  std::string blocked_, fill_;  // attention mask (true = masked out) and the score it gets
  std::string query_pos_, key_pos_;      // cache positions [T, 1] and [1, S] the masks compare
  std::map<int, std::string> windowed_;  // sliding window -> its mask
  std::vector<std::string> presents_;  // decoder: cache outputs in input order
};

}  // namespace

OnnxExportReport ExportOnnx(const Model& m, const std::string& path, const OnnxExportOptions& opt) {
  Check(!path.empty(), "ONNX export: empty output path");
  Check(m.config.head_dim % 2 == 0, "ONNX export: head_dim must be even for RoPE");
  OnnxExportReport r;
  OnnxWriteOptions wo;
  wo.external_threshold = opt.external_threshold;
  wo.data_suffix = opt.data_suffix;
  OnnxBuilder b(path, wo);
  GraphWriter(m, b, opt, r).Build();
  r.total_initializer_bytes = b.initializer_bytes();
  r.other_bytes = r.total_initializer_bytes - r.linear_bytes;
  r.files = b.Save();
  return r;
}

PplResult WriteReferenceLogits(const Model& m, const std::vector<Window>& windows,
                               const std::string& json_path) {
  const std::string logits_path = json_path + ".f32";
  PplResult r;
  WriteFileAtomic(logits_path, [&](std::ostream& os) {
    r = EvaluatePerplexity(m, windows, nullptr, [&](int, const Window&, const Mat& logits) {
      os.write(reinterpret_cast<const char*>(logits.data()),
               static_cast<std::streamsize>(logits.size() * sizeof(float)));
    });
  });
  nlohmann::json wj = nlohmann::json::array();
  for (const Window& w : windows) wj.push_back({{"tokens", w.tokens}, {"first_target", w.first_target}});
  const nlohmann::json j = {
      {"format", "sinkquant-reference-logits-1"},
      {"vocab", m.config.vocab},
      {"logits_file", std::filesystem::path(logits_path).filename().string()},
      {"logits_layout", "float32 little-endian, [T, vocab] per window, windows in order"},
      {"ppl", r.ppl}, {"nll", r.nll}, {"tokens", r.tokens},
      {"windows", wj}};
  WriteFileAtomic(json_path, j.dump() + "\n");
  return r;
}

}  // namespace sq
