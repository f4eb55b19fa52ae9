#include "quant/integer_linear.h"

#include "core/error.h"
#include "model/proj.h"
#include "quant/quantize_model.h"

namespace sq {

namespace {
const QuantWeightLinear* QuantWeightsOf(const ActQuantLinear& src) {
  return dynamic_cast<const QuantWeightLinear*>(src.inner().get());
}
}  // namespace

bool Int4IntegerLinear::Supports(const ActQuantLinear& src) {
  const QuantWeightLinear* w = QuantWeightsOf(src);
  return w && w->weight()->grid.bits == 4 && src.act().enabled() && src.act().bits >= 2 &&
         src.act().bits <= 8;
}

Int4IntegerLinear::Int4IntegerLinear(const ActQuantLinear& src, Int4Kernel kernel)
    : act_(src.act()), kernel_(kernel == Int4Kernel::kAuto ? BestInt4Kernel() : kernel) {
  const QuantWeightLinear* w = QuantWeightsOf(src);
  Check(Supports(src), "Int4IntegerLinear: needs int4 weights and 2..8-bit activations, got " +
                           (w ? "w" + std::to_string(w->weight()->grid.bits)
                              : std::string("float weights")) +
                           " " + src.act().Describe());
  Check(Int4KernelSupported(kernel_), std::string("Int4IntegerLinear: this CPU cannot run the ") +
                                          Int4KernelName(kernel_) + " kernel");
  bias_ = w->bias();
  packed_ = PackInt4ForKernel(*w->weight());
}

void Int4IntegerLinear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == packed_.cols, [&] {
    return "Int4IntegerLinear: input has " + std::to_string(x.cols()) +
           " columns, weight expects " + std::to_string(packed_.cols);
  });
  // Reused across calls: a fresh multi-MB buffer per call costs page faults that showed up as
  // a third of a 1024 x 1024 layer's time in bench-kernels.
  thread_local QuantizedActs qa;
  QuantizeActs(x, act_, packed_.group, packed_.group_pad, &qa);
  Int4Gemm(qa, packed_, y, kernel_);
  if (bias_.size() > 0) y.rowwise() += bias_.transpose();
}

namespace {

// The integer replacement of `lin`, or null when it has none.
LinearPtr IntegerVersion(const LinearPtr& lin, Int4Kernel kernel) {
  return ReplaceInsideTransforms(lin, [&](const LinearPtr& inner) -> LinearPtr {
    const auto* q = dynamic_cast<const ActQuantLinear*>(inner.get());
    if (!q || !Int4IntegerLinear::Supports(*q)) return nullptr;
    return std::make_shared<Int4IntegerLinear>(*q, kernel);
  });
}

}  // namespace

int UseIntegerKernels(Model& m, Int4Kernel kernel) {
  int replaced = 0;
  for (int layer = 0; layer < static_cast<int>(m.linears.size()); ++layer) {
    for (Proj p : kAllProjs) {
      if (p == Proj::kLmHead && layer > 0) continue;
      auto& slot = LinearAt(m, layer, p);
      if (!slot) continue;
      if (auto integer = IntegerVersion(slot, kernel)) {
        slot = std::move(integer);
        ++replaced;
      }
    }
  }
  return replaced;
}

}  // namespace sq
