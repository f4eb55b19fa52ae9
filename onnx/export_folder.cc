#include "onnx/export_folder.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "formats/tokenizer.h"

namespace sq {
namespace {

namespace fs = std::filesystem;

// A float as the double its shortest decimal spelling names (1e-05, not 9.999999747e-06).
double Decimal(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf) - 1, v);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

// The Llama fields a loader reads to drive the graph: transformers.js sizes the empty KV cache
// of the first step from num_key_value_heads/head_dim/num_hidden_layers and picks its decoder
// class from model_type. The graph itself carries everything the model computes (gates, q/k
// norm, RoPE pairing and scaling, rotations, quantization); "sinkquant" says what it was.
nlohmann::ordered_json ConfigJson(const ModelConfig& c, const OnnxExportOptions& opt,
                                  bool external_data) {
  return {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", c.hidden},
      {"intermediate_size", c.intermediate},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab},
      {"max_position_embeddings", c.max_position},
      {"rms_norm_eps", Decimal(c.norm_eps)},
      {"rope_theta", Decimal(c.rope_theta)},
      {"tie_word_embeddings", c.tie_embeddings},
      {"bos_token_id", c.bos_id},
      {"eos_token_id", c.eos_id},
      {"use_cache", true},
      {"torch_dtype", "float32"},
      {"transformers.js_config",
       {{"dtype", "fp32"}, {"use_external_data_format", external_data}}},
      {"sinkquant",
       {{"source_architecture", c.architecture},
        {"onnx_format", opt.format == OnnxFormat::kQdq ? "qdq" : "matmulnbits"},
        {"attn_output_gate", c.attn_output_gate},
        {"qk_norm", c.qk_norm},
        {"gated_norm_rank", c.gated_norm_rank},
        {"note", "onnx/model.onnx computes the whole model; the Llama fields above describe "
                 "its inputs and KV cache"}}},
  };
}

void WriteJson(const fs::path& path, const nlohmann::ordered_json& j) {
  WriteFileAtomic(path.string(), j.dump(2) + "\n");
}

void CopyTokenizer(const std::string& tokenizer, int vocab, int max_position, const fs::path& dir) {
  const fs::path src(tokenizer);
  if (src.extension() == ".json") {
    fs::copy_file(src, dir / "tokenizer.json");
    for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
      if (fs::exists(src.parent_path() / name)) fs::copy_file(src.parent_path() / name, dir / name);
    }
    return;
  }
  // A llama2.c tokenizer: the tokenizer.json `sinkquant convert` writes adds BOS itself.
  WriteHfTokenizerFromLlama2c(tokenizer, vocab, (dir / "tokenizer.json").string());
  WriteJson(dir / "tokenizer_config.json",
            {{"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", "<s>"},
             {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"model_max_length", max_position},
             {"tokenizer_class", "LlamaTokenizerFast"}});
}

fs::path Normalized(const std::string& dir) {
  fs::path out = fs::path(dir).lexically_normal();
  return out.has_filename() ? out : out.parent_path();  // "dir/" -> "dir"
}

}  // namespace

void CheckNewExportFolder(const std::string& dir) {
  Check(!dir.empty(), "--out: empty folder name");
  const fs::path out = Normalized(dir);
  Check(!fs::exists(out),
        "--out " + dir + " already exists; the export folder must be new (remove it or pick "
        "another name)");
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  Check(fs::is_directory(parent), "--out " + dir + ": the folder " + parent.string() +
                                      " it goes in does not exist");
}

OnnxExportReport ExportOnnxFolder(const Model& m, const std::string& dir,
                                  const OnnxExportOptions& opt, const OnnxFolderContents& contents) {
  Check(opt.layout == OnnxLayout::kDecoder, "an export folder holds the decoder layout");
  CheckNewExportFolder(dir);
  const fs::path out = Normalized(dir);
  const fs::path tmp = out.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp);
  OnnxExportReport r;
  try {
    fs::create_directory(tmp);
    fs::create_directory(tmp / "onnx");
    OnnxExportOptions o = opt;
    o.data_suffix = "_data";  // onnx/model.onnx_data
    r = ExportOnnx(m, (tmp / "onnx" / "model.onnx").string(), o);
    const bool external = !r.files.data_path.empty();
    WriteJson(tmp / "config.json", ConfigJson(m.config, opt, external));
    WriteJson(tmp / "generation_config.json",
              {{"bos_token_id", m.config.bos_id}, {"eos_token_id", m.config.eos_id},
               {"max_length", m.config.max_position}});
    CopyTokenizer(contents.tokenizer_path, m.config.vocab, m.config.max_position, tmp);
    WriteJson(tmp / "quantization.json", contents.quantization);
    CheckNewExportFolder(dir);
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) throw Error("cannot rename " + tmp.string() + " to " + out.string() + ": " + ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  r.files.model_path = (out / "onnx" / "model.onnx").string();
  if (!r.files.data_path.empty()) r.files.data_path = r.files.model_path + "_data";
  return r;
}

}  // namespace sq
