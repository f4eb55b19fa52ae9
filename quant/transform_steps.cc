#include "quant/transform_steps.h"

#include "core/error.h"
#include "quant/norm_fold.h"
#include "quant/rotate.h"
#include "quant/sink_aware.h"
#include "quant/smooth.h"

namespace sq {

Model SmoothWithStats(const Model& m, const QuantConfig& cfg, const ChannelAbsMax& stats,
                      size_t calib_windows, std::vector<std::string>& log) {
  SmoothOptions opt;
  opt.alpha = cfg.smooth_alpha;
  const TransformedModel t = SmoothQuant(Untransformed(m), stats, opt);
  log.push_back(t.steps.back() + " from " + std::to_string(calib_windows) + " calibration windows");
  return BuildModel(t);
}

namespace {

Model FoldNormsStep(const Model& m, const QuantConfig&, const std::vector<Window>&,
                    std::vector<std::string>& log) {
  TransformedModel t = FoldNorms(Untransformed(m));
  log.push_back(t.steps.back());
  return BuildModel(t);
}

Model SmoothStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                 std::vector<std::string>& log) {
  Check(!calib.empty(), "transform smooth needs calibration text (--calib FILE)");
  return SmoothWithStats(m, cfg, CollectChannelAbsMax(m, calib), calib.size(), log);
}

Model RotateStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>&,
                 std::vector<std::string>& log) {
  RotateOptions opt;
  opt.seed = cfg.seed;
  const TransformedModel t = RotateHadamard(Untransformed(m), opt);
  log.push_back(t.steps.back());
  return BuildModel(t);
}

Model SinkAwareStep(const Model& q, const QuantConfig& cfg, std::vector<std::string>& log) {
  SinkAwareOptions opt;
  opt.ratio = cfg.sink_ratio;
  log.push_back(opt.Describe());
  return MakeSinkAware(q, opt);
}

}  // namespace

std::map<std::string, TransformStep> OutlierTransformSteps() {
  return {{"fold-norms", FoldNormsStep}, {"smooth", SmoothStep}, {"rotate", RotateStep}};
}

std::map<std::string, PostQuantStep> OutlierPostSteps() { return {{"sink-aware", SinkAwareStep}}; }

std::vector<RecipeDef> OutlierRecipes() {
  auto rtn = [](QuantConfig& c) { c.gptq = false; };
  auto gptq = [](QuantConfig& c) { c.gptq = true; };
  std::vector<RecipeDef> r = {
      {"smooth", "SmoothQuant (alpha --alpha) on the calibration text, then RTN", {"smooth"}, rtn},
      {"rotate", "fold norms, Hadamard rotation (QuaRot), then RTN", {"fold-norms", "rotate"}, rtn},
      {"rotate-gptq", "fold norms, Hadamard rotation, then GPTQ", {"fold-norms", "rotate"}, gptq},
      {"smooth-rotate", "SmoothQuant, fold norms, Hadamard rotation, then RTN",
       {"smooth", "fold-norms", "rotate"}, rtn},
  };
  RecipeDef sink{"sink-aware",
                 "modifier (rtn+sink-aware, ...): position 0 and outlier tokens keep float "
                 "activations and KV",
                 {}, nullptr};
  sink.post = {"sink-aware"};
  sink.modifier = true;
  r.push_back(sink);
  return r;
}

}  // namespace sq
