#include "kernels/decode_probes.h"

#include <cmath>
#include <vector>

#include "engine/probes.h"

namespace mamba {

void deliver_decode_probes(const DecodeProbeLayout& lay, int64_t L, const float* raw, int64_t steps, int64_t first, ProbeSink& sink) {
  const int64_t H = lay.H, stride = lay.stride();
  const size_t n = size_t(steps * H);
  std::vector<float> dt(n), sn(n), yn(n), rn(static_cast<size_t>(steps));
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t k = 0; k < steps; ++k) {
      const float* r = raw + (k * L + l) * stride;
      rn[size_t(k)] = std::sqrt(r[lay.resid()]);
      for (int64_t h = 0; h < H; ++h) {
        double s = 0, y = 0;
        for (int64_t q = 0; q < lay.parts; ++q) {
          s += r[lay.state(h, q)];
          y += r[lay.y(h, q)];
        }
        dt[size_t(k * H + h)] = r[lay.dt() + h];
        sn[size_t(k * H + h)] = float(std::sqrt(s));
        yn[size_t(k * H + h)] = float(std::sqrt(y));
      }
    }
    sink.layer({l, first, steps, H, dt.data(), sn.data(), yn.data(), rn.data()});
  }
}

}  // namespace mamba
