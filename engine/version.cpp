#include "engine/version.h"

namespace mamba {
const char* engine_version() { return MAMBA_VERSION; }
}  // namespace mamba
