#pragma once
// Writing a file so that a crash, a full disk or a read-only folder never leaves half of it: the bytes go
// to a temporary file in the same folder, which is flushed to the disk and then renamed over the target.
// Readers see the old file or the complete new one, nothing in between.
#include <string>
#include <string_view>

namespace mamba {

// On failure the target is untouched, no temporary file is left behind, and a mamba::Error names the
// file and the cause ("<path>: cannot write (No space left on device)").
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace mamba
