#include "quant/int4_integer_linear.h"

#include "core/error.h"
#include "quant/quantize_model.h"

namespace sq {

bool Int4IntegerLinear::Supports(const Int4Linear& src) {
  return src.weight() != nullptr && src.weight()->grid.bits == 4 && src.act().enabled() &&
         src.act().bits >= 2 && src.act().bits <= 8;
}

Int4IntegerLinear::Int4IntegerLinear(const Int4Linear& src, Int4Kernel kernel)
    : act_(src.act()),
      bias_(src.bias()),
      kernel_(kernel == Int4Kernel::kAuto ? BestInt4Kernel() : kernel) {
  Check(Supports(src), "Int4IntegerLinear: needs int4 weights and 2..8-bit activations, got " +
                           (src.weight() ? "w" + std::to_string(src.weight()->grid.bits)
                                         : std::string("float weights")) +
                           " " + src.act().Describe());
  Check(Int4KernelSupported(kernel_), std::string("Int4IntegerLinear: this CPU cannot run the ") +
                                          Int4KernelName(kernel_) + " kernel");
  packed_ = PackInt4ForKernel(*src.weight());
}

void Int4IntegerLinear::Apply(const Mat& x, Mat& y) const {
  Check(x.cols() == packed_.cols, "Int4IntegerLinear: input has " + std::to_string(x.cols()) +
                                      " columns, weight expects " + std::to_string(packed_.cols));
  // Reused across calls: a fresh multi-MB buffer per call costs page faults that showed up as
  // a third of a 1024 x 1024 layer's time in bench-kernels.
  thread_local QuantizedActs qa;
  QuantizeActs(x, act_, packed_.group, packed_.group_pad, &qa);
  Int4Gemm(qa, packed_, y, kernel_);
  if (bias_.size() > 0) y.rowwise() += bias_.transpose();
}

namespace {

// The integer replacement of `lin`, or null when it has none.
std::shared_ptr<const Linear> IntegerVersion(const std::shared_ptr<const Linear>& lin,
                                             Int4Kernel kernel) {
  if (const auto* q = dynamic_cast<const Int4Linear*>(lin.get())) {
    if (!Int4IntegerLinear::Supports(*q)) return nullptr;
    return std::make_shared<Int4IntegerLinear>(*q, kernel);
  }
  if (const auto* t = dynamic_cast<const InputTransformLinear*>(lin.get())) {
    auto inner = IntegerVersion(t->inner(), kernel);
    return inner ? t->WithInner(std::move(inner)) : nullptr;
  }
  return nullptr;
}

}  // namespace

int UseIntegerKernels(Model& m, Int4Kernel kernel) {
  int replaced = 0;
  for (int layer = 0; layer < static_cast<int>(m.linears.size()); ++layer) {
    for (Role role : LinearRoles()) {
      if (role == Role::kLmHead && layer > 0) continue;
      auto& slot = LinearAt(m, layer, role);
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
