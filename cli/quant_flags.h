// The quantization flags of every command that quantizes (`compare`, `eval`, `quantize`),
// parsed and bounded here once, so a setting measured with one command is accepted, with the
// same meaning and the same errors, by the others.
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"
#include "core/model_config.h"
#include "quant/quantize_model.h"

namespace sq {

// The bit widths a quantizer supports; 16 means float (anything else is refused, never
// silently run in float).
inline const std::vector<int> kBitsChoices = {2, 3, 4, 5, 6, 7, 8, 16};

// What `eval` and `quantize` do without flags: nothing is quantized (every width 16).
QuantConfig FloatDefaults();

// --w-bits --a-bits --kv-bits --w-group --kv-group --a-clip --a-clip-min --w-asym
// --no-clip-search --act-order --gptq-block --gptq-damp --keep-float --mixed-layers
// --mixed-bits --alpha --sink-ratio --outlier-channels --outlier-ratio --outlier-bits
// --learn-steps --learn-lr
// --learn-tokens --seed. An absent flag keeps its value in `defaults` (`compare` defaults to W4A4,
// `eval` and `quantize` to float).
QuantConfig ParseQuantConfig(Args& a, const QuantConfig& defaults);

// "W4A8", and where `sweep` (--pareto-bits) also "W4A4KV4" (the KV width defaults to
// `kv_bits`), "W4A4+2L" (the 2 layers most sensitive to those bits at W8A8) and "W4A4+32C"
// (+outliers with 32 channels per linear at 8 bits); any case.
// Throws Error naming --`flag` for anything else or a width not in kBitsChoices.
BitSetting ParseBitSetting(const std::string& flag, const std::string& item, int kv_bits,
                           bool sweep);

// The usage lines of the flags above, for each command's --help.
inline constexpr const char* kQuantFlagsUsage =
    "  [--w-bits 2..8|16] [--w-group G (0 = per channel)] [--w-asym] [--no-clip-search]\n"
    "  [--act-order] [--gptq-block N] [--gptq-damp F] [--a-bits 2..8|16] [--a-clip R]\n"
    "  [--kv-bits 2..8|16] [--kv-group G] [--keep-float LIST (default lm_head; 'none')]\n"
    "  [--mixed-layers LIST (layers at --mixed-bits, default W8A8)]\n"
    "  [--alpha 0.5 (smooth)] [--sink-ratio 64 (+sink-aware)] [--a-clip-min 0.5 (+act-clip)]\n"
    "  [--outlier-channels 32] [--outlier-ratio R (per linear only channels >= R x median)]\n"
    "  [--outlier-bits 8] (+outliers)\n"
    "  [--learn-steps 100] [--learn-lr 0.05] [--learn-tokens 4096] (rotate-learned)\n"
    "  [--seed N]\n";

// --method NAME (one recipe, with +modifiers; --gptq is short for --method gptq), --calib FILE
// and --calib-tokens N, as `eval` and `quantize` take them.
struct MethodFlags {
  std::string method;  // "" when nothing is quantized
  std::string calib;
  long calib_tokens = 0;
  bool quant = false;  // a bit width below 16 or a --method: quantize at all
};
// Also refuses a recipe-only flag the method does not read (CheckFlagsRead).
MethodFlags ParseMethodFlags(Args& a, const QuantConfig& c);

// Refuses a flag of RecipeOnlyFlags() that was given but that none of `methods` ("fp" and ""
// read none) reads: "--alpha: not read by --method rotate (read by smooth, smooth-rotate)".
// A setting that would change nothing is a mistake, never silently ignored. `flag` names the
// flag that chose the methods. Throws Error for an unknown method first.
void CheckFlagsRead(Args& a, const std::vector<std::string>& methods, const QuantConfig& base,
                    const std::string& flag);

// --ctx 0 means min(max_position_embeddings, 512); a larger --ctx than the model allows is refused.
int ResolveCtx(int ctx, const ModelConfig& c);

}  // namespace sq
