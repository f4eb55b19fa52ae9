// The profiler: one ForwardObserver that streams every site of the forward pass into fixed-size
// statistics, and the detection of outlier channels, massive activations, attention sinks,
// residual sinks and outlier tokens from them (definitions, thresholds and JSON keys:
// docs/profile-schema.md).
//
// Legend: T = tokens of a window, d = hidden, f = intermediate, H = heads, Hkv = KV heads,
//         hd = head_dim, P = hd/2 rotary pairs, L = layers, K = first positions watched.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "calib/dataset.h"
#include "calib/stats.h"
#include "model/model.h"

namespace sq {

struct ProfileThresholds {
  double outlier_ratio = 20;        // channel absmax / median channel absmax of its site
  double massive_abs = 100;         // |x| above this ...
  double massive_rel = 1000;        // ... and above this times the median |x| of its token's row
  int sink_min_query = 16;          // queries at positions >= this are averaged
  int sink_positions = 4;           // key positions 0..K-1 watched as sink candidates
  double sink_mass = 0.3;           // mean attention on one position >= this: sink head
  double drain_ratio = 0.2;         // sink head with ||v_sink|| / median ||v|| <= this: no-op
  double residual_sink_factor = 10; // H_avg[j] / median H_avg >= this: residual sink
  double outlier_token_ratio = 64;  // down_proj-input row max / median row max (PrefixQuant)
  double gate_closed = 0.05;        // gate values below this count as closed
};

// One linear-input site (attn_input, o_input, ffn_input, down_input, head_input) of one layer.
struct SiteProfile {
  Site site;
  int layer;
  ChannelStats stats;
};

struct OutlierChannel {
  Site site;
  int layer, channel;
  double absmax, ratio;  // ratio = absmax / median channel absmax of the site
};

// One observed residual entry (the largest of a layer, or a massive activation's largest).
struct ResidualEntry {
  double value = 0;       // signed
  int channel = -1, position = -1, token = -1, window = -1;
  double row_median = 0;  // median |x| of its token's row
};

// Massive activations of one (layer, channel), aggregated over tokens.
struct MassiveActivation {
  int layer, channel;
  int64_t count = 0;                 // entries above both bounds
  ResidualEntry max;                 // the largest of them
  std::map<int, int64_t> positions;  // position -> count (bounded by ctx)
  std::map<int, int64_t> tokens;     // token id -> count (bounded by vocab)
};

struct ResidualLayer {
  int layer;  // -1: the embeddings
  double absmax = 0;
  LogHistogram abs_hist;
  ResidualEntry max;
};

// Attention of one head over queries at positions >= sink_min_query.
struct HeadAttentionProfile {
  int layer, head, kv_head;
  int64_t queries = 0;
  std::vector<double> first_mass;     // [K] mean probability on key position k
  double top_key_mass = 0;            // mean over queries of their largest probability
  int top_key_position = -1;          // the position most often most attended
  double top_key_share = 0;           // fraction of queries whose top key is there
  std::vector<double> value_ratio;    // [K] mean ||v_k|| / median ||v|| of its KV head
  std::vector<double> contribution;   // [K] mean p[t,k] ||v_k|| / ||o_t||
  double mean_output_norm = 0;        // mean ||o_t||, the head's output before o_proj
  double output_ratio = 0;            // mean ||o_t|| / median ||v||: small for a no-op head
  bool sink = false;
  int sink_position = -1;             // the first position with the largest mass, if sink
  bool noop = false;
};

struct ResidualSink {
  int dim;
  double h_avg, factor;             // factor = h_avg / median H_avg
  std::vector<double> attn_norm;    // [L] gamma[dim] of each layer's attention norm
  std::vector<double> ffn_norm;     // [L]
  double final_norm = 0;
  double gamma_ratio = 0;           // mean over norms of gamma[dim] / median gamma of that norm
};

struct OutlierToken {
  int layer, position, token;
  int64_t count = 0;      // windows where it was flagged
  double max_ratio = 0;   // row max / median row max in its window
  double max_value = 0;   // the row max |x|
};

// RoPE bands: rotary pair magnitudes sqrt(x_a^2 + x_b^2) (invariant under the rotation), over
// the rotated dims only (Phi-3's partial rotary). A NoPE layer (SmolLM3) keeps the same pairs
// for comparison, but nothing rotates them: `rope` is false.
struct RopeHead {
  int layer, head;
  bool rope = true;
  std::vector<double> pair_absmax;      // [P]
  std::vector<double> sink_key_share;   // [P] keys only: share of ||k_0||^2 per pair
  std::vector<double> other_key_share;  // [P] keys only: the same for positions >= 1
};

struct GateProfile {
  int layer, index;  // attention: index = head; GatedNorm: 0 attn norm, 1 ffn norm (final: L, 0)
  double mean = 0, closed = 0;  // mean gate, fraction below gate_closed
};

struct ProfileResult {
  ModelConfig config;
  ProfileThresholds thresholds;
  int windows = 0;
  int64_t tokens = 0;
  int64_t sink_windows = 0;  // windows long enough for the sink statistics
  std::vector<double> inv_freq;                 // [P]
  // [P]: the table of the LocalRope layers (Gemma 3's sliding layers), or empty.
  std::vector<double> local_inv_freq;
  std::vector<SiteProfile> sites;               // per layer: attn, o, ffn, down; then head
  std::vector<OutlierChannel> outlier_channels; // by ratio, descending
  std::vector<ResidualLayer> residual;          // layers -1..L-1
  std::vector<MassiveActivation> massive;       // by layer, then max |x| descending
  int massive_first_layer = -2;                 // -2: none
  std::vector<HeadAttentionProfile> heads;      // [L*H]
  std::vector<double> h_avg;                    // [d]
  double median_h_avg = 0;
  std::vector<ResidualSink> residual_sinks;     // by factor, descending
  std::vector<OutlierToken> outlier_tokens;     // by ratio, descending
  std::vector<RopeHead> rope_queries, rope_keys;
  std::vector<GateProfile> attn_gates, norm_gates;
  std::map<int, std::string> token_text;        // for every token id named above

  const SiteProfile* FindSite(Site s, int layer) const;
};

// Streams one forward pass per window. Call BeginWindow before each Forward, Finish once.
class Profiler : public ForwardObserver {
 public:
  Profiler(const Model& model, const ProfileThresholds& th);
  ~Profiler() override;

  void BeginWindow(std::span<const int> tokens);  // window-major: the next window
  void OnWindow(int window, std::span<const int> tokens) override;
  bool Wants(Site site, int layer) const override { return site != Site::kLogits; }
  void Observe(const Where& at, const Mat& x) override;
  void CombineRanks() override;  // every MPI rank's accumulators merged (core/dist.h)
  // Detection over the accumulated statistics; `token_text` names token ids.
  ProfileResult Finish(const std::function<std::string(int)>& token_text);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The token lists of `windows` to profile: in file order when `seed` is 0, else shuffled with
// that seed; then cut (the last one trimmed) so that `max_tokens` tokens are scored (0: all).
std::vector<std::vector<int>> SelectWindows(const std::vector<Window>& windows, long max_tokens,
                                            uint64_t seed);

// Runs `model` over every window with a Profiler. `progress` (may be empty) gets (done, total).
ProfileResult RunProfile(const Model& model, const std::vector<std::vector<int>>& windows,
                         const ProfileThresholds& th,
                         const std::function<std::string(int)>& token_text,
                         const std::function<void(int, int)>& progress = {});

}  // namespace sq
