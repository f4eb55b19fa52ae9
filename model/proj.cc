#include "model/proj.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"

namespace sq {

namespace {
struct ProjInfo {
  const char* name;
  Role weight;
  Site input;
};

constexpr ProjInfo kInfo[] = {
    {"q", Role::kAttnQ, Site::kAttnInput},      {"k", Role::kAttnK, Site::kAttnInput},
    {"v", Role::kAttnV, Site::kAttnInput},      {"o", Role::kAttnO, Site::kOInput},
    {"gate", Role::kFfnGate, Site::kFfnInput},  {"up", Role::kFfnUp, Site::kFfnInput},
    {"down", Role::kFfnDown, Site::kDownInput}, {"lm_head", Role::kLmHead, Site::kHeadInput}};

const ProjInfo& Info(Proj p) { return kInfo[static_cast<int>(p)]; }
}  // namespace

const char* ProjName(Proj p) { return Info(p).name; }
Role WeightRole(Proj p) { return Info(p).weight; }
Site InputSite(Proj p) { return Info(p).input; }

// The projections reading one site are adjacent in kAllProjs (checked by a test): the run of
// kInfo's input column equal to `site`.
std::span<const Proj> ProjsReading(Site site) {
  size_t first = 0;
  while (first < kAllProjs.size() && InputSite(kAllProjs[first]) != site) ++first;
  size_t end = first;
  while (end < kAllProjs.size() && InputSite(kAllProjs[end]) == site) ++end;
  return std::span<const Proj>(kAllProjs).subspan(first, end - first);
}

bool IsLayerLinearInput(Site site) {
  return std::find(kLayerInputSites.begin(), kLayerInputSites.end(), site) !=
         kLayerInputSites.end();
}

Proj ParseProj(const std::string& name) {
  for (Proj p : kAllProjs) {
    if (name == ProjName(p) || name == RoleName(WeightRole(p))) return p;
  }
  throw Error("unknown linear '" + name + "' (expected q, k, v, o, gate, up, down, lm_head)");
}

std::vector<Proj> ParseProjList(const std::string& list) {
  std::vector<Proj> out;
  if (list == "none" || list.empty()) return out;
  for (const std::string& name : SplitList(list, ',')) out.push_back(ParseProj(name));
  return out;
}

std::shared_ptr<const Linear>& LinearAt(Model& m, int layer, Proj p) {
  if (p == Proj::kLmHead) return m.lm_head;
  LayerLinears& L = m.linears.at(layer);
  switch (p) {
    case Proj::kQ: return L.q;
    case Proj::kK: return L.k;
    case Proj::kV: return L.v;
    case Proj::kO: return L.o;
    case Proj::kGate: return L.gate;
    case Proj::kUp: return L.up;
    case Proj::kDown: return L.down;
    case Proj::kLmHead: break;
  }
  return m.lm_head;
}

const std::shared_ptr<const Linear>& LinearAt(const Model& m, int layer, Proj p) {
  return LinearAt(const_cast<Model&>(m), layer, p);
}

}  // namespace sq
