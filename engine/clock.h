#pragma once
// The one clock the engine and its tools time things with: seconds on the steady clock (monotonic, so
// differences are durations; the origin means nothing).
#include <chrono>

namespace mamba {

inline double now_seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace mamba
