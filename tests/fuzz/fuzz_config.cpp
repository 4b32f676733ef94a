// libFuzzer target: config.json in every accepted form (HF Mamba2Config and MambaConfig, mamba_ssm's for both
// architectures), with the Infinity/NaN extension. A config that loads must have consistent derived sizes; anything but success
// or a mamba::Error naming the file is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/config.h"
#include "engine/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const mamba::Config c = mamba::Config::from_json_text(text, "fuzz/config.json");
    if (c.d_inner != c.n_heads * c.head_dim) std::abort();
    if (c.mamba1()) {  // every channel its own head; x_proj gives dt (rank R), B and C
      if (c.head_dim != 1 || c.n_groups != 1 || c.conv_dim != c.d_inner || c.d_in_proj != 2 * c.d_inner) std::abort();
      if (c.dt_rank < 1 || c.d_x_proj != c.dt_rank + 2 * c.d_state) std::abort();
    } else {
      if (c.d_inner != c.expand * c.d_model || c.n_heads % c.n_groups != 0) std::abort();
      if (c.conv_dim != c.d_inner + 2 * c.n_groups * c.d_state || c.d_in_proj != 2 * c.d_inner + 2 * c.n_groups * c.d_state + c.n_heads)
        std::abort();
    }
    if (c.n_params() <= 0 || c.state_floats_per_layer() <= 0 || c.summary().empty()) std::abort();
  } catch (const mamba::Error& e) {
    if (std::string(e.what()).rfind("fuzz/config.json", 0) != 0) std::abort();
  }
  return 0;
}
