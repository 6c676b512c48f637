#pragma once
// Deterministic convolutions (--deterministic on|off), process-wide.
//
// On (the default): on CUDA, each convolution pass uses the first algorithm cuDNN's heuristics rank
// (cudnnGet*Algorithm_v7) that is deterministic (no atomics): the same GPU and cuDNN give the same
// algorithms and bit-identical results run after run, which the tests and --resume rely on.
// Off: each pass is timed once per problem on the call's own buffers (cudnnFind*AlgorithmEx) and
// the fastest algorithm is kept, non-deterministic ones included (the backward passes' atomics add
// in a varying order: results change in the last bits from run to run).
// The CPU is deterministic either way: the setting changes nothing there.
//
// The choice is part of the algorithm cache's key, so it may change at any time; a problem met in
// both modes is chosen once in each.
#include <string>
#include <string_view>

#include "chex/device.h"

namespace chex {

bool deterministic();
void set_deterministic(bool on);

// "on" -> true, "off" -> false; anything else is an error naming `option` and the two choices.
bool parse_on_off(std::string_view option, std::string_view text);

// One line for a program's start: how its convolutions are chosen and what TF32 they use on
// `device`, e.g. "convolutions on cuda:0: deterministic (cuDNN heuristics), TF32 on for
// convolutions, off for matmuls".
std::string convolution_mode(Device device);

}  // namespace chex
