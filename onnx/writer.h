// Writing ONNX models through Debian's generated protobuf classes (`onnx/onnx-ml.pb.h`, via
// `onnx/onnx_pb.h`, which defines the ONNX_API macro it needs).
//
// OnnxBuilder collects nodes and initializers of one graph and writes `model.onnx` plus, for
// tensors over a size threshold, `model.onnx.data` beside it (ONNX external data), so models
// past protobuf's 2 GB message limit still export. External tensors stream to disk as they are
// added; nothing big is held twice. Both files are written under temporary names and renamed
// into place by Save(): an interrupted export leaves no file at the output path.
//
// onnx 1.12's enums predate INT4/UINT4 (ONNX 1.16); `TensorProto.data_type` is a plain int32,
// so we write the numbers directly (INT4 = 22, UINT4 = 21, from onnx.proto).
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace onnx {
class ModelProto;
class GraphProto;
class TensorProto;
}  // namespace onnx

namespace sq {

// TensorProto.DataType numbers (onnx.proto).
enum class OnnxType : int32_t {
  kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7, kBool = 9, kUint4 = 21, kInt4 = 22,
};

// Packs 4-bit values two per byte, element 0 in the LOW nibble; an odd count pads the last
// byte with 0 (ONNX's INT4/UINT4 raw_data layout). `values` are taken modulo 16, so int4
// values in [-8, 7] cast to uint8 pack as their two's complement nibble.
std::string PackNibbles(std::span<const uint8_t> values);

// One graph input/output dimension: a fixed size or a symbolic name ("batch").
using OnnxDim = std::variant<int64_t, std::string>;

// A node attribute. Integer lists are `std::vector<int64_t>`.
struct OnnxAttr {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>, std::string> value;
};

struct OnnxWriteOptions {
  // Initializers whose raw bytes exceed this go to the external data file (onnx's own
  // converter uses 1024). 0 would externalize every tensor.
  size_t external_threshold = 1024;
  std::string producer = "sinkquant";
  // The external data file is `out_path` + this: ".data" (onnx's convention) or "_data" (the
  // name transformers.js looks for beside onnx/model.onnx).
  std::string data_suffix = ".data";
};

struct OnnxFileSizes {
  std::string model_path, data_path;  // data_path empty when no tensor went external
  uint64_t model_bytes = 0, data_bytes = 0;
};

class OnnxBuilder {
 public:
  // Writes `opset 21` for the default domain and IR version 10 (INT4 needs both).
  explicit OnnxBuilder(std::string out_path, OnnxWriteOptions opt = {});
  ~OnnxBuilder();  // removes the temporary files unless Save() succeeded
  OnnxBuilder(const OnnxBuilder&) = delete;
  OnnxBuilder& operator=(const OnnxBuilder&) = delete;

  void AddInput(const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims);
  void AddOutput(const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims);

  // Initializers (constant tensors). Each returns `name`, which must be unique.
  std::string Float(const std::string& name, const std::vector<int64_t>& shape,
                    std::span<const float> v);
  std::string Int64(const std::string& name, const std::vector<int64_t>& shape,
                    std::span<const int64_t> v);
  std::string Uint8(const std::string& name, const std::vector<int64_t>& shape,
                    std::span<const uint8_t> v);
  std::string Int8(const std::string& name, const std::vector<int64_t>& shape,
                   std::span<const int8_t> v);
  std::string Int4(const std::string& name, const std::vector<int64_t>& shape,
                   std::span<const int8_t> v);
  std::string Uint4(const std::string& name, const std::vector<int64_t>& shape,
                    std::span<const uint8_t> v);
  // Shorthands for small constants.
  std::string Scalar(const std::string& name, float v) { return Float(name, {}, {&v, 1}); }
  std::string Ints(const std::string& name, std::vector<int64_t> v) {
    return Int64(name, {static_cast<int64_t>(v.size())}, v);
  }

  // Adds a node and returns its outputs. Outputs are named `out` (first) and `out:1`, ...;
  // an empty `out` gets a fresh unique name. A non-empty `domain` gets opset 1 imported
  // (com.microsoft contrib ops are versioned 1).
  std::vector<std::string> NodeN(const std::string& op, const std::vector<std::string>& inputs,
                                 int n_outputs, const std::vector<OnnxAttr>& attrs = {},
                                 std::string out = "", const std::string& domain = "");
  std::string Node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<OnnxAttr>& attrs = {}, std::string out = "",
                   const std::string& domain = "") {
    return NodeN(op, inputs, 1, attrs, std::move(out), domain)[0];
  }
  // A name no tensor or node output has yet: "prefix", else "prefix_1", ... (it is taken
  // once a tensor or node uses it).
  std::string Unique(const std::string& prefix);

  int64_t initializer_bytes() const { return initializer_bytes_; }  // raw bytes of all tensors
  // Writes the files (temp + rename; the data file first) and returns their sizes. Throws
  // Error naming the path. The builder cannot be used afterwards.
  OnnxFileSizes Save();

 private:
  // `raw` is read, not kept: an external tensor goes straight to the data file, so a 2 GB
  // embedding costs no copy here.
  std::string AddTensor(const std::string& name, OnnxType type, const std::vector<int64_t>& shape,
                        std::span<const char> raw);
  void ImportDomain(const std::string& domain);

  std::string out_path_, data_path_, model_tmp_, data_tmp_;
  OnnxWriteOptions opt_;
  std::unique_ptr<onnx::ModelProto> model_;
  onnx::GraphProto* graph_ = nullptr;
  std::ofstream data_;     // the external data file, opened at the first external tensor
  uint64_t data_size_ = 0;
  int64_t initializer_bytes_ = 0;
  std::set<std::string> names_;  // every tensor name used so far
  bool saved_ = false;
};

}  // namespace sq
