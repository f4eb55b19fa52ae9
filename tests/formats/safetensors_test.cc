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

TEST_CASE("streamed safetensors equal the in-memory writer's bytes", "[formats]") {
  const std::string dir = test::TempDir("st_stream");
  Buffer a = MakeBuffer(DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Buffer b = MakeBuffer(DType::kBF16, {4}, {0.5f, -1, 2, 8});
  WriteSafetensors(dir + "/whole.safetensors", {{"a", a.view}, {"b", b.view}}, {{"format", "pt"}});
  const std::vector<TensorSpec> specs = {{"a", DType::kF32, {2, 3}}, {"b", DType::kBF16, {4}}};
  const Buffer* buffers[] = {&a, &b};
  WriteSafetensorsStreaming(dir + "/streamed.safetensors", specs, [&](size_t i, std::ostream& out) {
    for (std::byte x : buffers[i]->bytes) out.put(static_cast<char>(x));  // byte by byte
  }, {{"format", "pt"}});
  std::ifstream w(dir + "/whole.safetensors", std::ios::binary);
  std::ifstream s(dir + "/streamed.safetensors", std::ios::binary);
  const std::string whole{std::istreambuf_iterator<char>(w), {}};
  const std::string streamed{std::istreambuf_iterator<char>(s), {}};
  CHECK(whole.size() > 8 + 24 + 8);
  CHECK(whole == streamed);
}

TEST_CASE("a streamed tensor of the wrong length is refused and nothing is written",
          "[formats]") {
  const std::string dir = test::TempDir("st_stream_short");
  const std::string path = dir + "/t.safetensors";
  const std::vector<TensorSpec> specs = {{"ok", DType::kF32, {2}}, {"short", DType::kF16, {3}}};
  auto fill = [](size_t i, std::ostream& out) { out.write("abcdefgh", i == 0 ? 8 : 4); };
  CHECK_THROWS_WITH(WriteSafetensorsStreaming(path, specs, fill),
                    Catch::Contains("tensor short got 4 bytes") && Catch::Contains("need 6"));
  CHECK(std::filesystem::is_empty(dir));
}
