#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "core/numeric.h"
#include "formats/safetensors.h"
#include "tests/test_paths.h"

using namespace sq;

namespace {

// Owned bytes of one tensor, so a TensorView can point at them.
struct Buffer {
  std::vector<std::byte> bytes;
  TensorView view;
};

Buffer MakeBuffer(DType dtype, std::vector<int64_t> shape, const std::vector<float>& values) {
  Buffer b;
  b.view.dtype = dtype;
  b.view.shape = std::move(shape);
  REQUIRE(static_cast<int64_t>(values.size()) == b.view.numel());
  b.bytes.resize(b.view.nbytes());
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(b.bytes.data() + 4 * i, &values[i], 4);
    } else {
      uint16_t h = dtype == DType::kF16 ? FloatToF16(values[i]) : FloatToBf16(values[i]);
      std::memcpy(b.bytes.data() + 2 * i, &h, 2);
    }
  }
  b.view.data = b.bytes.data();
  return b;
}

}  // namespace

TEST_CASE("safetensors round trip keeps F32, F16 and BF16 tensors bit for bit", "[formats]") {
  const std::string dir = test::TempDir("st_roundtrip");
  const std::string path = dir + "/t.safetensors";
  Buffer a = MakeBuffer(DType::kF32, {2, 3}, {1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f});
  Buffer b = MakeBuffer(DType::kF16, {3}, {0.5f, -65504.0f, 6.1e-5f});
  Buffer c = MakeBuffer(DType::kBF16, {1, 1, 3}, {1.0f, -3.0e38f, 0.0078125f});
  Buffer empty = MakeBuffer(DType::kF32, {0, 4}, {});
  empty.view.data = a.view.data;  // a zero-size tensor still needs a non-null pointer here
  WriteSafetensors(path, {{"zeta.a", a.view}, {"alpha.b", b.view}, {"mid.c", c.view},
                          {"empty", empty.view}},
                   {{"format", "pt"}});

  SafetensorsFile f = OpenSafetensors(path);
  REQUIRE(f.tensors.size() == 4);
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  for (const auto& [name, want] : {std::pair{"zeta.a", &a}, {"alpha.b", &b}, {"mid.c", &c}}) {
    const TensorView& got = f.tensors.at(name);
    CHECK(got.dtype == want->view.dtype);
    CHECK(got.shape == want->view.shape);
    REQUIRE(got.nbytes() == want->bytes.size());
    CHECK(std::memcmp(got.data, want->bytes.data(), got.nbytes()) == 0);
  }
  CHECK(f.tensors.at("empty").shape == std::vector<int64_t>{0, 4});
  CHECK(ToVec(f.tensors.at("alpha.b"))[1] == -65504.0f);
  CHECK(ToVec(f.tensors.at("mid.c"))[2] == 0.0078125f);

  // The header is padded so the data starts 8-byte aligned, and tensors are contiguous in the
  // given order (the spec forbids holes).
  const auto offset = [&](const char* n) { return f.tensors.at(n).data - f.file->data(); };
  CHECK(offset("zeta.a") % 8 == 0);
  CHECK(offset("alpha.b") == offset("zeta.a") + 24);
  CHECK(offset("mid.c") == offset("alpha.b") + 6);
  CHECK(f.file->size() == static_cast<size_t>(offset("mid.c") + 6));
}

TEST_CASE("safetensors reads the real bytelm-austen file", "[formats]") {
  const std::string path = test::RequireShared("models/bytelm-austen/model.safetensors");
  SafetensorsFile f = OpenSafetensors(path);
  CHECK(f.tensors.size() == 57);
  CHECK(f.metadata.at("format") == "pt");
  const TensorView& e = f.tensors.at("model.embed_tokens.weight");
  CHECK(e.dtype == DType::kF32);
  CHECK(e.shape == std::vector<int64_t>{264, 192});
  CHECK(ToVec(e)[0] == 0.0018114846898242831f);
  CHECK(f.tensors.at("model.layers.0.mlp.down_proj.weight").shape ==
        std::vector<int64_t>{192, 512});
  // Writing back what we read gives an identical set of tensors.
  const std::string out = test::TempDir("st_real") + "/copy.safetensors";
  std::vector<std::pair<std::string, TensorView>> all(f.tensors.begin(), f.tensors.end());
  WriteSafetensors(out, all, f.metadata);
  SafetensorsFile g = OpenSafetensors(out);
  REQUIRE(g.tensors.size() == f.tensors.size());
  for (const auto& [name, v] : f.tensors) {
    const TensorView& w = g.tensors.at(name);
    CHECK(w.shape == v.shape);
    CHECK(std::memcmp(w.data, v.data, v.nbytes()) == 0);
  }
}
