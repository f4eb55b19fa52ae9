#include "onnx/writer.h"

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h (ONNX_ML=1)
#include <unistd.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/input_file.h"

namespace sq {

namespace {

constexpr int64_t kIrVersion = 10;     // INT4/UINT4 need IR >= 10
constexpr int64_t kDefaultOpset = 21;  // blocked DequantizeLinear and int4 inputs need >= 21
// External tensors start at multiples of this; large ones at the allocation granularity so
// a reader may memory-map them.
constexpr uint64_t kAlign = 64, kAlignLarge = 65536, kLargeTensor = 1 << 20;
constexpr uint64_t kProtobufLimit = 2000000000;  // just under protobuf's 2 GB message limit

template <class T>
std::span<const char> Bytes(std::span<const T> v) {
  return {reinterpret_cast<const char*>(v.data()), v.size_bytes()};
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void SetDims(onnx::ValueInfoProto* vi, OnnxType type, const std::vector<OnnxDim>& dims) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(type));
  auto* shape = tt->mutable_shape();
  for (const OnnxDim& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

void SetAttr(onnx::AttributeProto* a, const OnnxAttr& attr) {
  a->set_name(attr.name);
  if (auto* i = std::get_if<int64_t>(&attr.value)) {
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(*i);
  } else if (auto* f = std::get_if<float>(&attr.value)) {
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(*f);
  } else if (auto* v = std::get_if<std::vector<int64_t>>(&attr.value)) {
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : *v) a->add_ints(x);
  } else {
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(std::get<std::string>(attr.value));
  }
}

void RemoveQuietly(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

}  // namespace

std::string PackNibbles(std::span<const uint8_t> values) {
  std::string out((values.size() + 1) / 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t nib = values[i] & 0x0f;
    out[i / 2] = static_cast<char>(static_cast<uint8_t>(out[i / 2]) | (i % 2 ? nib << 4 : nib));
  }
  return out;
}

OnnxBuilder::OnnxBuilder(std::string out_path, OnnxWriteOptions opt)
    : out_path_(std::move(out_path)), opt_(std::move(opt)), model_(new onnx::ModelProto) {
  const std::string pid = std::to_string(::getpid());
  data_path_ = out_path_ + opt_.data_suffix;
  model_tmp_ = out_path_ + ".tmp." + pid;
  data_tmp_ = data_path_ + ".tmp." + pid;
  model_->set_ir_version(kIrVersion);
  model_->set_producer_name(opt_.producer);
  auto* op = model_->add_opset_import();
  op->set_domain("");
  op->set_version(kDefaultOpset);
  graph_ = model_->mutable_graph();
  graph_->set_name("sinkquant");
}

OnnxBuilder::~OnnxBuilder() {
  if (saved_) return;
  if (data_.is_open()) data_.close();
  RemoveQuietly(data_tmp_);
  RemoveQuietly(model_tmp_);
}

void OnnxBuilder::AddInput(const std::string& name, OnnxType type,
                           const std::vector<OnnxDim>& dims) {
  SetDims(graph_->add_input(), type, dims);
  graph_->mutable_input(graph_->input_size() - 1)->set_name(name);
}

void OnnxBuilder::AddOutput(const std::string& name, OnnxType type,
                            const std::vector<OnnxDim>& dims) {
  SetDims(graph_->add_output(), type, dims);
  graph_->mutable_output(graph_->output_size() - 1)->set_name(name);
}

std::string OnnxBuilder::Unique(const std::string& prefix) {
  std::string name = prefix;
  for (int i = 1; names_.count(name); ++i) name = prefix + "_" + std::to_string(i);
  return name;
}

std::string OnnxBuilder::AddTensor(const std::string& name, OnnxType type,
                                   const std::vector<int64_t>& shape, std::span<const char> raw) {
  Check(!saved_, "OnnxBuilder: tensor " + name + " added after Save()");
  Check(names_.insert(name).second, "OnnxBuilder: duplicate tensor name " + name);
  auto* t = graph_->add_initializer();
  t->set_name(name);
  t->set_data_type(static_cast<int32_t>(type));
  for (int64_t d : shape) t->add_dims(d);
  initializer_bytes_ += static_cast<int64_t>(raw.size());
  if (raw.size() <= opt_.external_threshold) {
    t->set_raw_data(raw.data(), raw.size());
    return name;
  }
  if (!data_.is_open()) {
    data_.open(data_tmp_, std::ios::binary | std::ios::trunc);
    Check(data_.good(), data_path_ + ": cannot write (is the folder there and writable?)");
  }
  const uint64_t align = raw.size() >= kLargeTensor ? kAlignLarge : kAlign;
  const uint64_t offset = (data_size_ + align - 1) / align * align;
  if (offset > data_size_) data_.write(std::string(offset - data_size_, '\0').data(),
                                       static_cast<std::streamsize>(offset - data_size_));
  data_.write(raw.data(), static_cast<std::streamsize>(raw.size()));
  Check(data_.good(), data_path_ + ": write failed (disk full?)");
  data_size_ = offset + raw.size();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const std::string& k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", std::filesystem::path(data_path_).filename().string());
  add("offset", std::to_string(offset));
  add("length", std::to_string(raw.size()));
  return name;
}

std::string OnnxBuilder::Float(const std::string& name, const std::vector<int64_t>& shape,
                               std::span<const float> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  return AddTensor(name, OnnxType::kFloat, shape, Bytes(v));
}

std::string OnnxBuilder::Int64(const std::string& name, const std::vector<int64_t>& shape,
                               std::span<const int64_t> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  return AddTensor(name, OnnxType::kInt64, shape, Bytes(v));
}

std::string OnnxBuilder::Uint8(const std::string& name, const std::vector<int64_t>& shape,
                               std::span<const uint8_t> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  return AddTensor(name, OnnxType::kUint8, shape, Bytes(v));
}

std::string OnnxBuilder::Int8(const std::string& name, const std::vector<int64_t>& shape,
                              std::span<const int8_t> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  return AddTensor(name, OnnxType::kInt8, shape, Bytes(v));
}

std::string OnnxBuilder::Int4(const std::string& name, const std::vector<int64_t>& shape,
                              std::span<const int8_t> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  std::vector<uint8_t> u(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    Check(v[i] >= -8 && v[i] <= 7, "OnnxBuilder: " + name + " has an INT4 value " +
                                       std::to_string(v[i]) + " outside [-8, 7]");
    u[i] = static_cast<uint8_t>(v[i]);
  }
  const std::string packed = PackNibbles(u);
  return AddTensor(name, OnnxType::kInt4, shape, packed);
}

std::string OnnxBuilder::Uint4(const std::string& name, const std::vector<int64_t>& shape,
                               std::span<const uint8_t> v) {
  Check(Numel(shape) == static_cast<int64_t>(v.size()), "OnnxBuilder: " + name + " shape/size");
  for (uint8_t x : v) Check(x <= 15, "OnnxBuilder: " + name + " has a UINT4 value above 15");
  const std::string packed = PackNibbles(v);
  return AddTensor(name, OnnxType::kUint4, shape, packed);
}

void OnnxBuilder::ImportDomain(const std::string& domain) {
  for (const auto& op : model_->opset_import()) {
    if (op.domain() == domain) return;
  }
  auto* op = model_->add_opset_import();
  op->set_domain(domain);
  op->set_version(1);
}

std::vector<std::string> OnnxBuilder::NodeN(const std::string& op,
                                            const std::vector<std::string>& inputs, int n_outputs,
                                            const std::vector<OnnxAttr>& attrs, std::string out,
                                            const std::string& domain) {
  Check(!saved_, "OnnxBuilder: node " + op + " added after Save()");
  out = Unique(out.empty() ? op : out);
  names_.insert(out);
  auto* node = graph_->add_node();
  node->set_op_type(op);
  node->set_name(out);
  if (!domain.empty()) {
    node->set_domain(domain);
    ImportDomain(domain);
  }
  for (const std::string& in : inputs) node->add_input(in);
  std::vector<std::string> outs;
  for (int i = 0; i < n_outputs; ++i) {
    outs.push_back(i == 0 ? out : Unique(out + ":" + std::to_string(i)));
    names_.insert(outs.back());
    node->add_output(outs.back());
  }
  for (const OnnxAttr& a : attrs) SetAttr(node->add_attribute(), a);
  return outs;
}

OnnxFileSizes OnnxBuilder::Save() {
  Check(!saved_, "OnnxBuilder: Save() called twice");
  const uint64_t proto_bytes = model_->ByteSizeLong();
  Check(proto_bytes < kProtobufLimit,
        out_path_ + ": the model proto is " + std::to_string(proto_bytes) +
            " bytes, over protobuf's 2 GB limit (lower the external data threshold)");
  OnnxFileSizes sizes;
  sizes.model_path = out_path_;
  CheckOutputPath(out_path_);
  const bool has_data = data_.is_open();
  if (has_data) {
    data_.close();
    Check(!data_.fail(), data_path_ + ": write failed (disk full?)");
    CheckOutputPath(data_path_);
  }
  // Both files are complete before either is renamed into place, so a failure leaves neither
  // (the destructor removes the temporaries). Two renames cannot be one atomic step, so an
  // existing model goes first: a kill between the renames then leaves a data file with no
  // model, never an old model beside new data it does not describe.
  {
    std::ofstream os(model_tmp_, std::ios::binary | std::ios::trunc);
    Check(os.good(), out_path_ + ": cannot write (is the folder there and writable?)");
    Check(model_->SerializeToOstream(&os), out_path_ + ": protobuf serialization failed");
    os.close();
    Check(!os.fail(), out_path_ + ": write failed (disk full?)");
  }
  std::error_code ec;
  if (has_data) {
    if (std::filesystem::exists(data_path_, ec)) {
      std::filesystem::remove(out_path_, ec);
      Check(!ec, out_path_ + ": cannot remove the model this export replaces: " + ec.message());
    }
    std::filesystem::rename(data_tmp_, data_path_, ec);
    Check(!ec, data_path_ + ": cannot rename into place: " + ec.message());
    sizes.data_path = data_path_;
    sizes.data_bytes = data_size_;
  }
  std::filesystem::rename(model_tmp_, out_path_, ec);
  Check(!ec, out_path_ + ": cannot rename into place: " + ec.message());
  // A data file left by an earlier export of the same path belongs to no model now.
  if (sizes.data_path.empty()) RemoveQuietly(data_path_);
  sizes.model_bytes = std::filesystem::file_size(out_path_);
  saved_ = true;
  return sizes;
}

}  // namespace sq
