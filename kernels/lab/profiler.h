#pragma once
// Lab build: an event timer for a breakdown of where device time goes. While one is attached (attach()), the
// backend runs its operations one by one without graphs, and each LAB_MARK(label, stream) (kernels/lab.h)
// closes the previous operation and opens `label`. Timing one op at a time serialises launches, so the sum is
// an upper bound on graph-replay time.
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

#include "kernels/cuda_memory.h"

namespace mamba {

class OpProfiler {
 public:
  void mark(const char* label, cudaStream_t s);  // closes the previous op and opens `label` ("" closes only)
  void collect();                                // synchronises and adds this round's times into totals
  void clear() {
    m_totals.clear();
    m_counts.clear();
  }
  const std::map<std::string, double>& totals_ms() const { return m_totals; }
  const std::map<std::string, int64_t>& counts() const { return m_counts; }

 private:
  std::vector<Event> m_events;
  std::vector<std::string> m_labels;
  size_t m_used = 0;
  std::map<std::string, double> m_totals;
  std::map<std::string, int64_t> m_counts;
};

namespace lab {
void attach(OpProfiler* p);  // null detaches; one per process
}  // namespace lab

}  // namespace mamba
