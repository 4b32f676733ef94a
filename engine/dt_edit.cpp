#include "engine/dt_edit.h"

#include <algorithm>
#include <cstdio>

#include "engine/config.h"
#include "engine/error.h"

namespace mamba {

std::string DtEdit::describe() const {
  char buf[160];
  std::string what;
  if (scale != 1.f) {
    std::snprintf(buf, sizeof buf, "dt x%g", double(scale));
    what = buf;
  }
  if (lo > 0.f || std::isfinite(hi)) {
    std::snprintf(buf, sizeof buf, "%sdt clamped to [%g, %g]", what.empty() ? "" : ", ", double(lo), double(hi));
    what += buf;
  }
  if (what.empty()) what = "dt unchanged";
  std::snprintf(buf, sizeof buf, " in L%lld H%lld", (long long)layer, (long long)head);
  return what + buf;
}

void check_dt_edits(std::span<const DtEdit> edits, const Config& c) {
  for (const DtEdit& e : edits) {
    if (e.layer < 0 || e.layer >= c.n_layer)
      throw Error("dt edit: layer " + std::to_string(e.layer) + " is out of range (the model has " + std::to_string(c.n_layer) + ")");
    if (e.head < 0 || e.head >= c.n_heads)
      throw Error("dt edit: head " + std::to_string(e.head) + " is out of range (the model has " + std::to_string(c.n_heads) + ")");
    if (!(e.scale >= 0.f) || !std::isfinite(e.scale)) throw Error("dt edit: the scale must be a finite number >= 0");
    if (!(e.lo >= 0.f) || std::isnan(e.hi) || !(e.lo <= e.hi) || !std::isfinite(e.lo))
      throw Error("dt edit: the clamp range must satisfy 0 <= lo <= hi");
  }
}

void apply_dt_edits(std::span<const DtEdit> edits, int64_t layer, float* dt, int64_t T, int64_t H) {
  for (const DtEdit& e : edits) {
    if (e.layer != layer) continue;
    for (int64_t t = 0; t < T; ++t) {
      float& v = dt[t * H + e.head];
      v = std::clamp(v * e.scale, e.lo, e.hi);
    }
  }
}

}  // namespace mamba
