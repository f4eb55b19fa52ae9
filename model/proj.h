// The linear projections of a decoder layer (and the lm_head), and which observed input each
// reads. This is the one place that says "q, k and v read kAttnInput": calibration, transforms,
// GPTQ and reports ask these tables instead of spelling the pairing out.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model_weights.h"
#include "model/model.h"
#include "model/observer.h"

namespace sq {

enum class Proj { kQ, kK, kV, kO, kGate, kUp, kDown, kLmHead };

// Every projection in forward order.
inline constexpr std::array<Proj, 8> kAllProjs = {Proj::kQ,    Proj::kK,  Proj::kV,
                                                  Proj::kO,    Proj::kGate, Proj::kUp,
                                                  Proj::kDown, Proj::kLmHead};

// The observed inputs that a decoder layer's linears read, in forward order. The lm_head reads
// kHeadInput, once after the last layer.
inline constexpr std::array<Site, 4> kLayerInputSites = {Site::kAttnInput, Site::kOInput,
                                                         Site::kFfnInput, Site::kDownInput};

const char* ProjName(Proj p);  // "q", "k", "v", "o", "gate", "up", "down", "lm_head"
Role WeightRole(Proj p);       // the tensor that holds its weight (Role::kAttnQ, ...)
Site InputSite(Proj p);        // the observed input it reads

// The projections that read `site`, in forward order; empty for a site no linear reads.
std::span<const Proj> ProjsReading(Site site);
// Whether `site` is in kLayerInputSites.
bool IsLayerLinearInput(Site site);

// "q" or its tensor name "attn_q", ..., "lm_head"; throws Error listing the names.
Proj ParseProj(const std::string& name);
// A comma-separated list ("lm_head,down"); "none" or "" is empty.
std::vector<Proj> ParseProjList(const std::string& list);

// The Linear that runs projection `p` of `layer` (layer ignored for kLmHead).
std::shared_ptr<const Linear>& LinearAt(Model& m, int layer, Proj p);
const std::shared_ptr<const Linear>& LinearAt(const Model& m, int layer, Proj p);

}  // namespace sq
