#pragma once
// Probes: the values a layer really used, per token position, handed by a backend to an observer.
//
// Hook points, per layer l and position t (absolute: the number of tokens consumed before it):
//   dt          (H)  the step after softplus and the time_step_limit clamp
//   decay       (H)  exp(dt * A): how much of the head's state survives the step (derived from dt here)
//   state_norm  (S)  ||h_t||_F, the head's (P, N) SSM state after token t
//   y_norm      (S)  ||y_t||, the head's P outputs before the gate: the SSD output plus D * x
//   resid_norm  (1)  ||r||, the residual stream entering the layer (the embedding row for layer 0)
// Mamba-2: H = S = heads. Mamba-1: H = E channels (dt per channel; decay = exp(dt * mean_n A[c, n]), the
// geometric mean of the channel's N decays), and the norms over S groups of E/S consecutive channels
// (probe_groups(config): groups of up to 64 channels), each group's (E/S, N) state and E/S outputs.
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
// state_norm and y_norm are (T, S) with S = probe_groups(config); S = 0 means S = H.
struct LayerProbe {
  int64_t layer = 0;
  int64_t first = 0;
  int64_t T = 0, H = 0;
  const float* dt = nullptr;
  const float* state_norm = nullptr;
  const float* y_norm = nullptr;
  const float* resid_norm = nullptr;
  int64_t S = 0;
  int64_t groups() const { return S > 0 ? S : H; }
};

// Width of state_norm / y_norm rows: the heads of Mamba-2, the channel groups of Mamba-1.
int64_t probe_groups(const Config& c);

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

// A run of consecutive complete positions, all layers. (count, L, H) / (count, L, S) / (count, L), row-major.
struct ProbeFrames {
  int64_t first = 0, count = 0, L = 0, H = 0;
  int64_t S = 0;                          // width of state_norm / y_norm (= H for Mamba-2)
  std::vector<float> dt, decay;           // (count, L, H)
  std::vector<float> state_norm, y_norm;  // (count, L, S)
  std::vector<float> resid_norm;
};

// Keeps the last `window` positions in a ring (4 * L * (H + 2S + 1) bytes each: dt per head, ||h||, ||y||
// per head or channel group and ||r|| per layer; decay is recomputed from dt and A when frames are read,
// exactly as the layer did).
// Positions may arrive again (a restored snapshot replays them): the newest values win.
class ProbeRecorder final : public ProbeSink {
 public:
  static constexpr int64_t kDefaultWindow = 65536;
  ProbeRecorder(const Config& c, const Weights& w, int64_t window = kDefaultWindow);

  void layer(const LayerProbe& p) override;

  int64_t layers() const { return m_L; }
  int64_t heads() const { return m_H; }
  int64_t groups() const { return m_S; }
  int64_t window() const { return m_window; }
  static int64_t bytes_per_position(int64_t L, int64_t H) { return 4 * L * (3 * H + 1); }
  static int64_t bytes_per_position(int64_t L, int64_t H, int64_t S) { return 4 * L * (H + 2 * S + 1); }
  // kDefaultWindow positions, or fewer where they would pass kDefaultBytes (Mamba-1's dt per channel makes
  // a position of the 2.8b model 1.3 MB), but at least kMinWindow.
  static constexpr int64_t kDefaultBytes = int64_t(512) << 20, kMinWindow = 256;
  static int64_t default_window(int64_t L, int64_t H, int64_t S);
  static int64_t default_window(const Config& c);
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
  int64_t stride() const { return m_H + 2 * m_S + 1; }  // floats per layer and position
  int64_t m_L = 0, m_H = 0, m_S = 0, m_window = 0;
  std::vector<float> m_A;     // (L, H)
  std::vector<float> m_ring;  // (window, L, H + 2S + 1), grown as positions arrive
  int64_t m_end = 0;          // one past the newest complete position
  int64_t m_held = 0;         // complete positions in the ring, ending at m_end
};

}  // namespace mamba
