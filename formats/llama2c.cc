#include "formats/llama2c.h"

#include <cstring>
#include <filesystem>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/input_file.h"
#include "formats/checkpoint.h"
#include "formats/mmap.h"
#include "formats/tokenizer.h"

namespace sq {

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);

// Hands out consecutive float32 arrays of the file, checking each fits.
class Cursor {
 public:
  Cursor(const MappedFile& f, size_t offset) : f_(f), offset_(offset) {}

  // The next array [n0, n1, ...] as one view; `what` names it in errors.
  TensorView Take(std::vector<int64_t> shape, const std::string& what) {
    TensorView v;
    v.dtype = DType::kF32;
    v.shape = std::move(shape);
    const size_t bytes = v.nbytes();
    Check(offset_ + bytes <= f_.size(),
          f_.path() + ": file ends inside " + what + " (needs " + std::to_string(offset_ + bytes) +
              " bytes, file has " + std::to_string(f_.size()) + ")");
    v.data = f_.data() + offset_;
    offset_ += bytes;
    return v;
  }
  // The next [L, rows, cols] array, sliced into one [rows, cols] view per layer (or [cols]
  // per layer when rows == 0).
  std::vector<TensorView> TakeLayers(int L, int64_t rows, int64_t cols, const std::string& what) {
    std::vector<int64_t> one = rows ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
    TensorView all = Take({L, rows ? rows * cols : cols}, what);
    std::vector<TensorView> out(L);
    for (int l = 0; l < L; ++l) {
      out[l].dtype = DType::kF32;
      out[l].shape = one;
      out[l].data = all.data + static_cast<size_t>(l) * all.cols() * sizeof(float);
    }
    return out;
  }
  size_t offset() const { return offset_; }

 private:
  const MappedFile& f_;
  size_t offset_;
};

ModelConfig ConfigFromHeader(const int32_t h[7], const std::string& path) {
  const std::string src = path + " (llama2.c header)";
  for (int i = 0; i < 7; ++i) {
    static const char* kNames[7] = {"dim", "hidden_dim", "n_layers", "n_heads",
                                    "n_kv_heads", "vocab_size", "seq_len"};
    Check(i == 5 || h[i] > 0, src + ": " + kNames[i] + " must be positive, got " +
                                  std::to_string(h[i]));
  }
  Check(h[5] != 0 && h[5] > -(1 << 30), src + ": vocab_size " + std::to_string(h[5]) + " is invalid");
  Check(h[0] % h[3] == 0, src + ": dim " + std::to_string(h[0]) + " is not a multiple of n_heads " +
                              std::to_string(h[3]));
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.hidden = h[0];
  c.intermediate = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab = h[5] > 0 ? h[5] : -h[5];
  c.max_position = h[6];
  c.head_dim = c.hidden / c.n_heads;
  c.rope_pairing = RopePairing::kAdjacent;
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-5f;
  c.bos_id = 1;
  c.eos_id = 2;
  c.tie_embeddings = h[5] > 0;
  ValidateConfig(c, src);
  return c;
}

}  // namespace

void LoadLlama2c(const std::string& path, ModelConfig* config, ModelWeights* weights) {
  auto file = std::make_shared<MappedFile>(path);
  Check(file->size() >= kHeaderBytes,
        path + ": file is " + std::to_string(file->size()) +
            " bytes, shorter than the 28-byte llama2.c header");
  int32_t h[7];
  std::memcpy(h, file->data(), kHeaderBytes);  // little-endian host assumed, as run.c does
  const ModelConfig c = ConfigFromHeader(h, path);
  const int L = c.n_layers;
  const int64_t d = c.hidden, f = c.intermediate, kv = c.kv_dim(), V = c.vocab;

  ModelWeights w;
  w.layers.resize(L);
  Cursor cur(*file, kHeaderBytes);
  w.embed = cur.Take({V, d}, "token_embedding_table");
  auto rms_att = cur.TakeLayers(L, 0, d, "rms_att_weight");
  auto wq = cur.TakeLayers(L, c.q_dim(), d, "wq");
  auto wk = cur.TakeLayers(L, kv, d, "wk");
  auto wv = cur.TakeLayers(L, kv, d, "wv");
  auto wo = cur.TakeLayers(L, d, c.q_dim(), "wo");
  auto rms_ffn = cur.TakeLayers(L, 0, d, "rms_ffn_weight");
  auto w1 = cur.TakeLayers(L, f, d, "w1");
  auto w2 = cur.TakeLayers(L, d, f, "w2");
  auto w3 = cur.TakeLayers(L, f, d, "w3");
  w.final_norm = cur.Take({d}, "rms_final_weight");
  cur.Take({c.max_position, c.head_dim / 2}, "freq_cis_real");  // unused: we compute RoPE
  cur.Take({c.max_position, c.head_dim / 2}, "freq_cis_imag");
  w.lm_head = c.tie_embeddings ? w.embed : cur.Take({V, d}, "wcls");
  Check(cur.offset() == file->size(),
        path + ": file has " + std::to_string(file->size()) + " bytes, the header implies exactly " +
            std::to_string(cur.offset()) + " (trailing data: wrong format or a corrupt header)");
  for (int l = 0; l < L; ++l) {
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = rms_att[l];
    lw.wq = wq[l];
    lw.wk = wk[l];
    lw.wv = wv[l];
    lw.wo = wo[l];
    lw.ffn_norm = rms_ffn[l];
    lw.w_gate = w1[l];
    lw.w_down = w2[l];
    lw.w_up = w3[l];
  }
  w.storage.push_back(file);
  ValidateWeights(c, w, path, [](TensorId id) {
    std::string name = RoleName(id.role);
    if (id.layer >= 0) name += " of layer " + std::to_string(id.layer);
    return name;
  });
  *config = c;
  *weights = std::move(w);
}

std::string FindLlama2cTokenizer(const std::string& model_path, int vocab) {
  const auto dir = std::filesystem::path(model_path).parent_path();
  for (const std::string& name : {"tok" + std::to_string(vocab) + ".bin", std::string("tokenizer.bin")}) {
    const auto p = dir / name;
    if (std::filesystem::is_regular_file(p)) return p.string();
  }
  return "";
}

namespace {

// new row (h, p * hd/2 + i) <- old row (h, 2i + p) when `to_half`; the inverse otherwise.
Mat PermuteRows(const Mat& w, int n_heads, bool to_half) {
  Check(n_heads > 0 && w.rows() % (2 * n_heads) == 0,
        "RoPE permutation: " + std::to_string(w.rows()) + " rows do not split into " +
            std::to_string(n_heads) + " heads of even width");
  const int hd = static_cast<int>(w.rows() / n_heads), half = hd / 2;
  Mat out(w.rows(), w.cols());
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < half; ++i) {
      for (int p = 0; p < 2; ++p) {
        const int half_row = h * hd + p * half + i, adj_row = h * hd + 2 * i + p;
        if (to_half) {
          out.row(half_row) = w.row(adj_row);
        } else {
          out.row(adj_row) = w.row(half_row);
        }
      }
    }
  }
  return out;
}

}  // namespace

Mat PermuteAdjacentToHalf(const Mat& w, int n_heads) { return PermuteRows(w, n_heads, true); }
Mat PermuteHalfToAdjacent(const Mat& w, int n_heads) { return PermuteRows(w, n_heads, false); }

void Llama2cToHf(const ModelConfig& c, const ModelWeights& w, ModelConfig* out_config,
                 ModelWeights* out_weights) {
  Check(c.rope_pairing == RopePairing::kAdjacent,
        "Llama2cToHf: the model already uses rotate_half pairing");
  Check(!c.attn_output_gate && !c.qkv_bias, "Llama2cToHf: expects a plain llama2.c model");
  ModelWeights out = w;
  for (auto& L : out.layers) {
    L.wq = out.Own(PermuteAdjacentToHalf(ToMat(L.wq), c.n_heads), L.wq.shape);
    L.wk = out.Own(PermuteAdjacentToHalf(ToMat(L.wk), c.n_kv_heads), L.wk.shape);
  }
  *out_config = c;
  out_config->rope_pairing = RopePairing::kHalf;
  *out_weights = std::move(out);
}

namespace {

namespace fs = std::filesystem;

// Refuses an `out` that exists and is non-empty (unless `force`) before any work is done.
void CheckOutDir(const fs::path& out, bool force) {
  // Replacing a symlink would swap the link, not the folder it names: refused like a device.
  Check(!fs::is_symlink(out), "--out " + out.string() + " is a symlink: refusing to replace it");
  if (!fs::exists(out)) return;
  Check(fs::is_directory(out), "--out " + out.string() + " exists and is not a folder");
  Check(force || fs::is_empty(out),
        "--out " + out.string() + " exists and is not empty (pass --force to replace it)");
}

// Refuses an `out` folder that holds `input` (at any depth, however either is spelled):
// replacing it would delete the input.
void CheckOutDirDoesNotHold(const fs::path& out, const std::string& input) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(input, ec);
  if (ec || !fs::exists(out)) return;
  for (p = p.parent_path(); !p.empty(); p = p.parent_path()) {
    Check(!SameFile(p.string(), out.string()),
          "--out " + out.string() + " holds the input " + input + ": refusing to replace it");
    if (p == p.root_path()) break;
  }
}

// Renames the finished `tmp` folder to `out`, replacing an existing `out` (checked before).
void MoveIntoPlace(const fs::path& tmp, const fs::path& out) {
  const fs::path old = out.string() + ".old." + std::to_string(::getpid());
  const bool had_old = fs::exists(out);
  if (had_old) fs::rename(out, old);
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) {
    if (had_old) fs::rename(old, out);
    throw Error("cannot rename " + tmp.string() + " to " + out.string() + ": " + ec.message());
  }
  if (had_old) fs::remove_all(old);
}

void WriteTokenizerConfig(const fs::path& dir, const ModelConfig& c) {
  nlohmann::ordered_json t = {{"add_bos_token", true},  {"add_eos_token", false},
                              {"bos_token", "<s>"},      {"eos_token", "</s>"},
                              {"unk_token", "<unk>"},    {"model_max_length", c.max_position},
                              {"tokenizer_class", "LlamaTokenizerFast"}};
  WriteFileAtomic((dir / "tokenizer_config.json").string(), t.dump(2) + "\n");
  nlohmann::ordered_json g = {{"bos_token_id", c.bos_id}, {"eos_token_id", c.eos_id}};
  WriteFileAtomic((dir / "generation_config.json").string(), g.dump(2) + "\n");
}

}  // namespace

ConvertSummary ConvertLlama2cToHf(const std::string& model_bin, const std::string& tokenizer_bin,
                                  const std::string& out_dir, bool force) {
  fs::path out = fs::path(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  CheckOutDir(out, force);
  ModelConfig c;
  ModelWeights w;
  LoadLlama2c(model_bin, &c, &w);
  ConvertSummary s;
  s.tokenizer_bin = tokenizer_bin.empty() ? FindLlama2cTokenizer(model_bin, c.vocab) : tokenizer_bin;
  Check(!s.tokenizer_bin.empty(), model_bin + ": no tokenizer.bin or tok" + std::to_string(c.vocab) +
                                      ".bin beside it; pass --tokenizer");
  CheckOutDirDoesNotHold(out, model_bin);
  CheckOutDirDoesNotHold(out, s.tokenizer_bin);
  ModelWeights hf;
  Llama2cToHf(c, w, &s.config, &hf);

  const fs::path tmp = out.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp);
  try {
    WriteHfCheckpoint(tmp.string(), s.config, hf);
    WriteHfTokenizerFromLlama2c(s.tokenizer_bin, c.vocab, (tmp / "tokenizer.json").string());
    WriteTokenizerConfig(tmp, s.config);
    MoveIntoPlace(tmp, out);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  return s;
}

}  // namespace sq
