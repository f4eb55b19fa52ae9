// libFuzzer target: a llama2.c .bin (7 int32 header + float32 arrays). A file that loads must
// have every weight view inside the file.
#include <cstdint>

#include "core/error.h"
#include "formats/llama2c.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sq::fuzz::WriteScratch("model.bin", data, size);
  try {
    sq::ModelConfig c;
    sq::ModelWeights w;
    sq::LoadLlama2c(path, &c, &w);
    volatile float sum = 0;
    auto touch = [&](const sq::TensorView& v) {
      if (v.nbytes() == 0) return;
      const auto* p = reinterpret_cast<const uint8_t*>(v.data);
      sum += p[0] + p[v.nbytes() - 1];
    };
    touch(w.embed);
    touch(w.lm_head);
    touch(w.final_norm);
    for (const auto& l : w.layers) {
      touch(l.wq), touch(l.wk), touch(l.wv), touch(l.wo), touch(l.attn_norm);
    }
  } catch (const sq::Error&) {
  }
  return 0;
}
