#include <catch2/catch.hpp>

#include <set>

#include "core/error.h"
#include "model/proj.h"
#include "model/random_weights.h"
#include "tests/test_util.h"

using namespace sq;

TEST_CASE("Proj: every projection is read at one site, and each site's readers are a run",
          "[model]") {
  int seen = 0;
  for (Site site : kLayerInputSites) {
    const std::span<const Proj> readers = ProjsReading(site);
    REQUIRE_FALSE(readers.empty());
    for (Proj p : readers) CHECK(InputSite(p) == site);
    seen += static_cast<int>(readers.size());
  }
  REQUIRE(ProjsReading(Site::kHeadInput).size() == 1);
  CHECK(ProjsReading(Site::kHeadInput).front() == Proj::kLmHead);
  CHECK(seen + 1 == static_cast<int>(kAllProjs.size()));
  CHECK(ProjsReading(Site::kResidual).empty());
  CHECK(ProjsReading(Site::kQuery).empty());
  CHECK(IsLayerLinearInput(Site::kDownInput));
  CHECK_FALSE(IsLayerLinearInput(Site::kHeadInput));
  CHECK(std::vector<Proj>(ProjsReading(Site::kAttnInput).begin(),
                          ProjsReading(Site::kAttnInput).end()) ==
        std::vector<Proj>{Proj::kQ, Proj::kK, Proj::kV});
}

TEST_CASE("Proj: names parse back, tensor names too, and a bad name is refused", "[model]") {
  std::set<std::string> names;
  for (Proj p : kAllProjs) {
    CHECK(ParseProj(ProjName(p)) == p);
    CHECK(ParseProj(RoleName(WeightRole(p))) == p);
    names.insert(ProjName(p));
  }
  CHECK(names.size() == kAllProjs.size());
  CHECK(ParseProjList("").empty());
  CHECK(ParseProjList("q,ffn_down") == std::vector<Proj>{Proj::kQ, Proj::kDown});
  CHECK_THROWS_WITH(ParseProj("qkv"), Catch::Contains("unknown linear 'qkv'"));
}

TEST_CASE("LinearAt: each projection's slot holds the linear of its weight", "[model]") {
  const ModelConfig c = test::SmallConfig({});
  const Model m = BuildDenseModel(c, RandomWeights(c, 3));
  for (int l = 0; l < c.n_layers; ++l) {
    for (Proj p : kAllProjs) {
      const auto* dense = dynamic_cast<const DenseLinear*>(LinearAt(m, l, p).get());
      REQUIRE(dense != nullptr);
      CHECK(dense->in_features() == (p == Proj::kO      ? c.q_dim()
                                     : p == Proj::kDown ? c.intermediate
                                                        : c.hidden));
    }
  }
  CHECK(LinearAt(m, 0, Proj::kLmHead) == m.lm_head);
  CHECK(LinearAt(m, 1, Proj::kUp) == m.linears[1].up);
}
