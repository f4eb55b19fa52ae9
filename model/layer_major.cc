#include "model/layer_major.h"

#include <algorithm>
#include <chrono>

#include "core/dist.h"
#include "core/error.h"
#include "formats/mmap.h"

namespace sq {

namespace {

int WindowsOf(const LayerMajorStream& s, size_t n) {
  return s.windows < 0 ? static_cast<int>(n) : std::min<int>(s.windows, static_cast<int>(n));
}

void Tell(const LayerMajorStream& s, int w, std::span<const int> tokens) {
  if (s.obs) s.obs->OnWindow(w, tokens);
}

// Whether the observer of a stream without logits still needs the head's sites.
bool WantsHead(const LayerMajorStream& s, int n_layers) {
  if (!s.obs) return false;
  for (Site site : {Site::kNormGate, Site::kHeadInput, Site::kLogits}) {
    if (s.obs->Wants(site, n_layers)) return true;
  }
  return false;
}

// Adds the time `fn` takes to the stream's clock, if it has one.
template <typename Fn>
void Timed(const LayerMajorStream& s, Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  if (s.seconds) {
    *s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
}

// Each observer once, in stream order (the same on every rank: the calls are collective).
void CombineObservers(std::span<const LayerMajorStream> streams) {
  std::vector<ForwardObserver*> done;
  for (const LayerMajorStream& st : streams) {
    if (!st.obs || std::find(done.begin(), done.end(), st.obs) != done.end()) continue;
    st.obs->CombineRanks();
    done.push_back(st.obs);
  }
}

}  // namespace

void ForwardLayerMajor(std::span<const LayerMajorStream> streams,
                       const std::vector<std::span<const int>>& windows,
                       const LayerMajorLogits& on_logits, const LayerMajorProgress& progress,
                       const LayerMajorHooks& hooks, WindowSplit split) {
  Check(!streams.empty(), "ForwardLayerMajor: no models to run");
  const ModelConfig& c = streams[0].model->config;
  for (const auto& w : windows) CheckSequence(c, w);  // every rank checks all: errors agree
  for (const LayerMajorStream& s : streams) {
    Check(s.model->config.n_layers == c.n_layers, "ForwardLayerMajor: models differ in depth");
  }
  const dist::Block mine = split == WindowSplit::kRankBlocks ? dist::BlockOf(windows.size())
                                                             : dist::Block{0, windows.size()};
  long tokens = 0;
  for (size_t w = mine.begin; w < mine.end; ++w) tokens += static_cast<long>(windows[w].size());
  // hidden[s][i]: stream s's residual stream of window mine.begin + i entering the next layer.
  std::vector<std::vector<Mat>> hidden(streams.size());
  for (size_t s = 0; s < streams.size(); ++s) {
    const LayerMajorStream& st = streams[s];
    const size_t last = std::min<size_t>(mine.end, WindowsOf(st, windows.size()));
    if (st.final_states) {
      Check(!st.obs && st.final_states->size() == last - mine.begin,
            "ForwardLayerMajor: a replayed stream needs one state per window and no observer");
      hidden[s] = *st.final_states;
      continue;
    }
    for (size_t w = mine.begin; w < last; ++w) {
      Tell(st, static_cast<int>(w), windows[w]);
      Timed(st, [&] { hidden[s].push_back(Embed(*st.model, windows[w])); });
      if (st.obs && st.obs->Wants(Site::kResidual, -1)) {
        st.obs->Observe({Site::kResidual, -1}, hidden[s].back());
      }
    }
  }
  if (progress) progress(0, c.n_layers, 0);
  for (int l = 0; l < c.n_layers; ++l) {
    if (hooks.before_layer) hooks.before_layer(l);
    for (size_t s = 0; s < streams.size(); ++s) {
      const LayerMajorStream& st = streams[s];
      if (st.final_states) continue;  // replayed: its layers ran in an earlier pass
      for (size_t i = 0; i < hidden[s].size(); ++i) {
        Tell(st, static_cast<int>(mine.begin + i), windows[mine.begin + i]);
        Timed(st, [&] { ForwardBlock(*st.model, l, hidden[s][i], st.obs); });
      }
    }
    for (const LayerMajorStream& st : streams) ReleaseLayerPages(*st.model, l);
    if (hooks.after_layer) hooks.after_layer(l);
    if (progress) progress(l + 1, c.n_layers, tokens);
  }
  if (hooks.before_head) hooks.before_head();
  std::vector<Mat> logits(streams.size());
  for (size_t w = mine.begin; w < mine.end; ++w) {
    const size_t i = w - mine.begin;
    for (size_t s = 0; s < streams.size(); ++s) {
      const LayerMajorStream& st = streams[s];
      logits[s].resize(0, 0);
      if (i >= hidden[s].size()) continue;
      if (st.record_final_states) st.record_final_states->push_back(hidden[s][i]);
      Tell(st, static_cast<int>(w), windows[w]);
      if (st.logits || WantsHead(st, c.n_layers)) {
        Timed(st, [&] { logits[s] = Head(*st.model, hidden[s][i], st.obs); });
      }
      hidden[s][i].resize(0, 0);  // done with this window's state
      if (!st.logits) logits[s].resize(0, 0);
    }
    if (on_logits) on_logits(static_cast<int>(w), logits);
  }
  if (split == WindowSplit::kRankBlocks) CombineObservers(streams);
}

void ObserveLayerMajor(const Model& m, const std::vector<std::span<const int>>& windows,
                       ForwardObserver& obs) {
  const LayerMajorStream stream{&m, &obs, -1, false};
  ForwardLayerMajor({&stream, 1}, windows, {});
}

void ReleaseLayerPages(const Model& m, int l) {
  ForEachTensor(m.config, m.weights, [&](TensorId id, const TensorView& v) {
    if (id.layer == l && !v.empty()) ReleaseMappedPages(v.data, v.nbytes());
  });
}

}  // namespace sq
