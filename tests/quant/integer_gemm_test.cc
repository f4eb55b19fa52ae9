#include "quant/integer_gemm.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "calib/dataset.h"
#include "calib/eval.h"
#include "model/loader.h"
#include "quant/integer_linear.h"
#include "quant/quant_linear.h"
#include "quant/quantize_model.h"
#include "tests/test_paths.h"
#include "tests/test_util.h"

using namespace sq;
using sq::test::RandomMat;

namespace {

// Shapes that hit every tail: tokens not a multiple of the 4-row tile, channels not a multiple
// of a 32-channel panel or of a panel pair, groups not a multiple of 4, a short last group.
struct Shape {
  int t, k, n, group;
  bool sym;
  int a_bits;
};
const Shape kShapes[] = {
    {1, 64, 32, 0, true, 4},
    {5, 70, 37, 32, true, 4},
    {9, 256, 96, 128, true, 4},
    {4, 128, 64, 32, false, 4},
    {7, 70, 33, 0, false, 4},
    {3, 130, 70, 64, true, 8},
    {13, 96, 160, 32, true, 4},
    {2, 30, 5, 7, false, 3},
    {6, 256, 128, 0, true, 4},
    // Past the AMX kernel's 32-token blocks (with tails), padded groups of 64 and 128 columns,
    // per channel at 64 x 5 columns, and a group of 32 that AMX leaves to the VNNI kernel.
    {70, 256, 96, 128, true, 4},
    {33, 320, 70, 0, false, 4},
    {64, 192, 33, 64, true, 8},
    {40, 96, 64, 32, true, 4},
    // 16 panels: the AMX kernel's work items take several panels each (chunks of 4 with one
    // thread), unpacked side by side.
    {40, 128, 512, 64, false, 4},
};

std::string Describe(const Shape& s) {
  std::ostringstream o;
  o << "T " << s.t << " K " << s.k << " N " << s.n << " G " << s.group << (s.sym ? " sym" : " asym")
    << " a" << s.a_bits;
  return o.str();
}

std::vector<Int4Kernel> PackedKernels() {
  std::vector<Int4Kernel> ks;
  for (Int4Kernel k :
       {Int4Kernel::kScalar, Int4Kernel::kAvx2, Int4Kernel::kAvx512Vnni, Int4Kernel::kAmxInt8}) {
    if (Int4KernelSupported(k)) ks.push_back(k);
  }
  return ks;
}

}  // namespace

TEST_CASE("packing keeps every weight code at its place", "[kernels]") {
  for (const Shape& s : kShapes) {
    INFO(Describe(s));
    const QuantizedWeight qw = QuantizeRtn(RandomMat(s.n, s.k, 11), {4, s.group, s.sym, false});
    const PackedInt4 p = PackInt4ForKernel(qw);
    CHECK(p.n_groups == qw.n_groups());
    CHECK(p.group_pad % 4 == 0);
    for (int n = 0; n < s.n; ++n) {
      for (int k = 0; k < s.k; ++k) {
        const int g = k / qw.group, z = p.panel_zeros(n / kPanel, g)[n % kPanel];
        REQUIRE(p.UnsignedCode(n, k) - z == qw.Code(n, k) - qw.Params(n, g).zero);
        REQUIRE(p.panel_scales(n / kPanel, g)[n % kPanel] == qw.Params(n, g).scale);
      }
    }
  }
}

TEST_CASE("packing rejects weights that are not 4-bit", "[kernels]") {
  const QuantizedWeight qw = QuantizeRtn(RandomMat(8, 16, 1), {8, 0, true, false});
  CHECK_THROWS_WITH(PackInt4ForKernel(qw), Catch::Contains("8 bits"));
}

TEST_CASE("activation codes times scale reproduce FakeQuantRows bit for bit", "[kernels]") {
  for (bool simd : {true, false}) {
    for (float clip : {1.0f, 0.9f}) {
      for (int bits : {4, 8}) {
        INFO("simd " << simd << " clip " << clip << " bits " << bits);
        Mat x = RandomMat(6, 70, 21, 3.0f);
        x.row(2).setZero();         // the eps path: codes 0, never NaN
        x(4, 7) = 0.5f * 3.0f / 7;  // ties and large values exercise half-to-even and clamping
        x(4, 9) = 100.0f;
        const ActQuantSpec spec{bits, clip};
        QuantizedActs qa;
        QuantizeActs(x, spec, 32, 32, &qa, simd);
        Mat fq = x;
        FakeQuantRows(fq, spec);
        for (int t = 0; t < 6; ++t) {
          int32_t sums[3] = {0, 0, 0};
          for (int k = 0; k < 70; ++k) {
            const int code = qa.row(t)[(k / 32) * 32 + k % 32];
            REQUIRE(static_cast<float>(code) * qa.scales[t] == fq(t, k));
            sums[k / 32] += code;
          }
          for (int g = 0; g < 3; ++g) REQUIRE(qa.sums[t * 3 + g] == sums[g]);
          CHECK(qa.row(t)[2 * 32 + 6] == 0);  // padding of the short last group
        }
      }
    }
  }
  QuantizedActs qa;
  CHECK_THROWS(QuantizeActs(Mat::Ones(2, 8), {16, 1.0f}, 8, 8, &qa));
}

TEST_CASE("every packed kernel equals the scalar reference bit for bit", "[kernels]") {
  INFO("best kernel on this CPU: " << Int4KernelName(BestInt4Kernel()));
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    INFO(Describe(s));
    const QuantizedWeight qw = QuantizeRtn(RandomMat(s.n, s.k, ++seed), {4, s.group, s.sym, true});
    const PackedInt4 p = PackInt4ForKernel(qw);
    QuantizedActs qa;
    QuantizeActs(RandomMat(s.t, s.k, ++seed, 2.0f), {s.a_bits, 1.0f}, p.group, p.group_pad, &qa);
    Mat ref;
    Int4GemmReference(qa, qw, ref);
    REQUIRE(ref.allFinite());
    REQUIRE(ref.cwiseAbs().maxCoeff() > 0);
    for (Int4Kernel k : PackedKernels()) {
      INFO("kernel " << Int4KernelName(k));
      Mat y;
      Int4Gemm(qa, p, y, k);
      REQUIRE(y.rows() == s.t);
      REQUIRE(y.cols() == s.n);
      CHECK(y == ref);
    }
  }
}

TEST_CASE("the fast kernels are really there on a CPU that has them", "[kernels]") {
  // This machine has AVX-512 VNNI; a build that lost the target attributes would fall back.
  if (Int4KernelSupported(Int4Kernel::kAmxInt8)) {
    CHECK(BestInt4Kernel() == Int4Kernel::kAmxInt8);
  } else if (__builtin_cpu_supports("avx512vnni")) {
    CHECK(BestInt4Kernel() == Int4Kernel::kAvx512Vnni);
  }
  CHECK(Int4KernelSupported(BestInt4Kernel()));
}

TEST_CASE("the integer linear equals the fake-quant W4A4 linear bit for bit", "[kernels]") {
  // ActQuantLinear over QuantWeightLinear multiplies the codes in an Eigen GEMM (exact: integers below 2^24) and applies
  // the scales in the kernels' order, so the SIMD integer kernels must give the same floats.
  // Against the plain dequantized product fakequant(x) deq(W)^T, summed in float, both differ
  // by float rounding only: a few ulps of the row's magnitude.
  constexpr float kRelTol = 2e-6f;
  uint64_t seed = 300;
  for (const Shape& s : kShapes) {
    INFO(Describe(s));
    const Mat x = RandomMat(s.t, s.k, ++seed, 2.0f);
    auto qw = std::make_shared<const QuantizedWeight>(
        QuantizeRtn(RandomMat(s.n, s.k, ++seed), {4, s.group, s.sym, true}));
    const Vec bias = RandomMat(s.n, 1, ++seed).col(0);
    const ActQuantSpec act{s.a_bits, 0.95f};
    const ActQuantLinear fq(std::make_shared<QuantWeightLinear>(qw, bias), act);
    const Int4IntegerLinear integer(fq);
    CHECK(integer.in_features() == s.k);
    CHECK(integer.out_features() == s.n);
    Mat y_fq, y_int;
    fq.Apply(x, y_fq);
    integer.Apply(x, y_int);
    CHECK(y_int == y_fq);
    Mat xq = x;
    FakeQuantRows(xq, act);
    Mat y_deq = xq * qw->Dequantize().transpose();
    y_deq.rowwise() += bias.transpose();
    CHECK((y_int - y_deq).cwiseAbs().maxCoeff() <= kRelTol * y_deq.cwiseAbs().maxCoeff());
  }
}

TEST_CASE("ActQuantLinear multiplies codes exactly where float sums would round", "[kernels]") {
  // 8-bit weights and activations per channel over K = 4096: a group's code products reach
  // 128 * 127 * 4096 > 2^24, past float's exact integers; the product is summed in double.
  const int K = 4096;
  Mat x = Mat::Constant(1, K, 1.0f);
  Mat w = Mat::Constant(2, K, 1.0f);
  w(1, 0) = -1.0f;  // row 1: the sum is K - 2, odd scale pattern
  auto qw = std::make_shared<const QuantizedWeight>(QuantizeRtn(w, {8, 0, true, false}));
  const ActQuantLinear lin(std::make_shared<QuantWeightLinear>(qw), {8, 1.0f});
  Mat y;
  lin.Apply(x, y);
  // Codes: x -> 127 (scale 1/127), w -> 127 (scale 1/127); 127*127*K = 66064384 > 2^24 is
  // exact in double and rounds to a multiple of 4 in float.
  const double dot0 = 127.0 * 127 * K, dot1 = 127.0 * 127 * (K - 2);
  const float s = 1.0f / 127.0f;
  CHECK(y(0, 0) == static_cast<float>(dot0) * (s) * s);
  CHECK(y(0, 1) == static_cast<float>(dot1) * (s) * s);
}

TEST_CASE("Int4IntegerLinear refuses what the kernels do not compute", "[kernels]") {
  auto q8 = std::make_shared<const QuantizedWeight>(
      QuantizeRtn(RandomMat(8, 16, 1), {8, 0, true, false}));
  auto w4a = [](std::shared_ptr<const QuantizedWeight> w, ActQuantSpec act) {
    return ActQuantLinear(std::make_shared<QuantWeightLinear>(std::move(w)), act);
  };
  CHECK_FALSE(Int4IntegerLinear::Supports(w4a(q8, {4, 1.0f})));
  auto q4 = std::make_shared<const QuantizedWeight>(
      QuantizeRtn(RandomMat(8, 16, 1), {4, 0, true, false}));
  CHECK_FALSE(Int4IntegerLinear::Supports(w4a(q4, {16, 1.0f})));
  CHECK(Int4IntegerLinear::Supports(w4a(q4, {4, 1.0f})));
  CHECK_THROWS(Int4IntegerLinear(w4a(q4, {16, 1.0f})));
}

namespace {

// Runs each linear's fake-quant and integer versions on the real input the fake-quant model
// feeds that linear, and records the largest difference relative to the output's magnitude.
class CompareLinears : public ForwardObserver {
 public:
  CompareLinears(const Model& fq, const Model& integer) : fq_(fq), int_(integer) {}
  void Observe(const Where& at, const Mat& x) override {
    if (!IsLayerLinearInput(at.site)) return;
    for (Proj p : ProjsReading(at.site)) {
      Mat y_fq, y_int;
      LinearAt(fq_, at.layer, p)->Apply(x, y_fq);
      LinearAt(int_, at.layer, p)->Apply(x, y_int);
      max_rel =
          std::max(max_rel, (y_int - y_fq).cwiseAbs().maxCoeff() / y_fq.cwiseAbs().maxCoeff());
      ++compared;
    }
  }
  float max_rel = 0;
  int compared = 0;

 private:
  const Model& fq_;
  const Model& int_;
};

struct Stories {
  LoadedModel lm;
  std::vector<Window> windows;
};
Stories LoadStories() {
  Stories s{LoadModel(test::RequireShared("models/stories260K/stories260K.bin"), ""), {}};
  const std::string valid = ReadTextFile(test::RequireShared("corpora/tinystories-valid.txt"));
  s.windows = MakeWindows(valid, *s.lm.tokenizer, {256, 4000}, "tinystories-valid");
  return s;
}

}  // namespace

TEST_CASE("stories260K W4A4: each integer linear equals its fake-quant linear on real activations",
          "[kernels]") {
  const Stories st = LoadStories();
  REQUIRE(st.windows.size() >= 3);
  for (int group : {0, 32}) {
    INFO("w_group " << group);
    QuantConfig cfg;
    cfg.w_group = group;
    cfg.a_bits = 4;
    const Model fq = QuantizeModel(st.lm.model, cfg, {});
    Model integer = fq;
    // 7 linears per layer; the lm_head stays float by default.
    REQUIRE(UseIntegerKernels(integer) == 7 * st.lm.model.config.n_layers);
    CompareLinears cmp(fq, integer);
    for (int w = 0; w < 3; ++w) Forward(fq, st.windows[w].tokens, &cmp);
    CHECK(cmp.compared == 3 * 7 * st.lm.model.config.n_layers);
    CHECK(cmp.max_rel == 0);  // the same floats from two different computations
  }
}

// End to end the two paths give the same logits, so the same perplexity (the issue asks 1e-5
// relative). Exactness matters here: W4A4 amplifies rounding, since an activation within an ulp
// of a rounding boundary takes the other code when one path rounds differently, and that step
// propagates; summing deq(x) deq(W) in float instead moved the perplexity by 7e-4 to 1.8e-3.
TEST_CASE("stories260K W4A4 end to end: integer logits and perplexity equal the fake-quant path",
          "[kernels]") {
  const Stories st = LoadStories();
  for (int group : {0, 32}) {
    INFO("w_group " << group);
    QuantConfig cfg;
    cfg.w_group = group;
    cfg.a_bits = 4;
    const Model fq = QuantizeModel(st.lm.model, cfg, {});
    Model integer = fq;
    UseIntegerKernels(integer);
    const PplResult p_fq = EvaluatePerplexity(fq, st.windows);
    const PplResult p_int = EvaluatePerplexity(integer, st.windows);
    const PplResult p_float = EvaluatePerplexity(st.lm.model, st.windows);
    INFO("ppl float " << p_float.ppl << " fake-quant " << p_fq.ppl << " integer " << p_int.ppl);
    CHECK(p_int.tokens == p_fq.tokens);
    CHECK(p_int.ppl == p_fq.ppl);
    CHECK(Forward(integer, st.windows[0].tokens) == Forward(fq, st.windows[0].tokens));
    // W4A4 costs quality: the quantized model must sit clearly above float.
    CHECK(p_int.ppl > 1.1 * p_float.ppl);
  }
}
