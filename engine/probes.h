#pragma once
// Probes: the values a layer really used, per token position, handed by a backend to an observer.
//
// Hook points, per layer l and position t (absolute: the number of tokens consumed before it):
//   dt          (H)  the step after softplus and the time_step_limit clamp
//   decay       (H)  exp(dt * A): how much of the head's state survives the step (derived from dt here)
//   state_norm  (H)  ||h_t||_F, the head's (P, N) SSM state after token t
//   y_norm      (H)  ||y_t||, the head's P outputs before the gate: the SSD output plus D * x
//   resid_norm  (1)  ||r||, the residual stream entering the layer (the embedding row for layer 0)
// Every backend, scan and path (prefill, decode, decode chains) reports the same definitions; with no sink
// (ForwardOptions::probes / DecodeRequest::probes null) nothing is computed.
//
// Residuals (ForwardOptions::residuals, prefill only): the residual stream after layer l, i.e. what enters
// layer l + 1 (after the last layer: what norm_f reads), (T, D) fp32 — the values the scan comparison
// (engine/compare.h) measures against the float64 reference.
#include <cstdint>
#include <vector>

namespace mamba {

struct Config;
struct Weights;

// One layer's values for T consecutive positions starting at `first`. Row-major (T, H) / (T).
struct LayerProbe {
  int64_t layer = 0;
  int64_t first = 0;
  int64_t T = 0, H = 0;
  const float* dt = nullptr;
  const float* state_norm = nullptr;
  const float* y_norm = nullptr;
  const float* resid_norm = nullptr;
};

// Receives every layer of every position a backend runs, layers in order for each position; a position
// is complete once its last layer has arrived.
struct ProbeSink {
  virtual ~ProbeSink() = default;
  virtual void layer(const LayerProbe& p) = 0;
};

// Receives the residual stream after every layer of a forward, layers in order: r (T, D) row-major for
// positions [first, first + T). The pointer is valid during the call only.
struct ResidualSink {
  virtual ~ResidualSink() = default;
  virtual void residual(int64_t layer, int64_t first, int64_t T, int64_t D, const float* r) = 0;
};

// A run of consecutive complete positions, all layers. (count, L, H) / (count, L), row-major.
struct ProbeFrames {
  int64_t first = 0, count = 0, L = 0, H = 0;
  std::vector<float> dt, decay, state_norm, y_norm;
  std::vector<float> resid_norm;
};

// Keeps the last `window` positions in a ring (4 * L * (3H + 1) bytes each: dt, ||h||, ||y|| per head and
// ||r|| per layer; decay is recomputed from dt and A when frames are read, exactly as the layer did).
// Positions may arrive again (a restored snapshot replays them): the newest values win.
class ProbeRecorder final : public ProbeSink {
 public:
  static constexpr int64_t kDefaultWindow = 65536;
  ProbeRecorder(const Config& c, const Weights& w, int64_t window = kDefaultWindow);

  void layer(const LayerProbe& p) override;

  int64_t layers() const { return m_L; }
  int64_t heads() const { return m_H; }
  int64_t window() const { return m_window; }
  static int64_t bytes_per_position(int64_t L, int64_t H) { return 4 * L * (3 * H + 1); }
  // Complete positions held: [begin(), end()). end() is one past the newest complete position.
  int64_t begin() const { return m_end - m_held; }
  int64_t end() const { return m_end; }
  // Copies positions [from, to) clamped to what is held.
  ProbeFrames frames(int64_t from, int64_t to) const;
  // Forgets everything at and after `pos` (the sequence was cut back, e.g. by restoring a snapshot).
  void truncate(int64_t pos);
  void clear();

 private:
  float* slot(int64_t pos);
  const float* slot(int64_t pos) const;
  int64_t m_L = 0, m_H = 0, m_window = 0;
  std::vector<float> m_A;     // (L, H)
  std::vector<float> m_ring;  // (window, L, 3H + 1), grown as positions arrive
  int64_t m_end = 0;          // one past the newest complete position
  int64_t m_held = 0;         // complete positions in the ring, ending at m_end
};

}  // namespace mamba
