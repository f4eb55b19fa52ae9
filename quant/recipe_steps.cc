#include "quant/recipe_steps.h"

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

LearnRotationOptions LearnOptions(const QuantConfig& cfg) {
  LearnRotationOptions opt;
  opt.steps = cfg.learn_steps;
  opt.lr = cfg.learn_lr;
  opt.tokens = cfg.learn_tokens;
  opt.seed = cfg.seed;
  return opt;
}

LearnedRotation LearnAndLog(const Mat& samples, const QuantConfig& cfg,
                            std::vector<std::string>& log) {
  LearnedRotation learned = LearnRotation(samples, LearnOptions(cfg));
  log.push_back("learn-rotation(" + learned.Summary() + ")");
  return learned;
}

Model RotateWithLearned(const Model& m, const QuantConfig& cfg, const LearnedRotation& learned,
                        std::vector<std::string>& log) {
  RotateOptions opt;
  opt.seed = cfg.seed;
  opt.residual_q = learned.q;
  const TransformedModel t = RotateHadamard(Untransformed(m), opt);
  log.push_back(t.steps.back());
  return BuildModel(t);
}

Model RotateLearnedStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>& calib,
                        std::vector<std::string>& log) {
  Check(!calib.empty(), "transform rotate-learned needs calibration text (--calib FILE)");
  const Mat samples = CollectResidualInputs(m, calib, cfg.learn_tokens);
  return RotateWithLearned(m, cfg, LearnAndLog(samples, cfg, log), log);
}

Model KvRotateStep(const Model& m, const QuantConfig& cfg, const std::vector<Window>&,
                   std::vector<std::string>& log) {
  const TransformedModel t = RotateKvCache(Untransformed(m), cfg.seed);
  log.push_back(t.steps.back());
  return BuildModel(t);
}

Model SinkAwareStep(const Model& q, const QuantConfig& cfg, std::vector<std::string>& log) {
  SinkAwareOptions opt;
  opt.ratio = cfg.sink_ratio;
  log.push_back(opt.Describe());
  return MakeSinkAware(q, opt);
}

void SmoothSettings(const QuantConfig& cfg, SettingList& out) {
  out.push_back({"smooth_alpha", std::to_string(cfg.smooth_alpha)});
}

void LearnRotationSettings(const QuantConfig& cfg, SettingList& out) {
  out.push_back({"learn_steps", std::to_string(cfg.learn_steps)});
  out.push_back({"learn_lr", std::to_string(cfg.learn_lr)});
  out.push_back({"learn_tokens", std::to_string(cfg.learn_tokens)});
}

void SinkAwareSettings(const QuantConfig& cfg, SettingList& out) {
  out.push_back({"sink_ratio", std::to_string(cfg.sink_ratio)});
}

}  // namespace sq
