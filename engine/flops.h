#pragma once
// Floating-point operations of a forward pass, by the formulas of docs/COMPARE.md: 2 per multiply-add of
// the projections, the conv and the scan's products; norms, activations and exponentials are not counted
// (O(T D) each). The counts are the algorithm's useful work: a device that pads the last chunk does more.
#include <cstdint>

#include "engine/backend.h"
#include "engine/config.h"

namespace mamba {

struct FlopCount {
  int64_t projections = 0;  // in_proj + out_proj, all layers
  int64_t conv = 0;         // depthwise causal conv, all layers
  int64_t scan = 0;         // the SSD, all layers
  int64_t lm_head = 0;      // logits rows
  int64_t total() const { return projections + conv + scan + lm_head; }
};

// One layer's SSD over T tokens from any initial state.
int64_t scan_flops_recurrent(const Config& c, int64_t T);
int64_t scan_flops_chunked(const Config& c, int64_t T, int64_t Q);

// A forward of T tokens with `logit_rows` rows of logits (1: prefill, T: every position). A chunked
// forward of one token runs the recurrence, as both backends do.
FlopCount forward_flops(const Config& c, int64_t T, ScanMode scan, int64_t Q, int64_t logit_rows);

}  // namespace mamba
