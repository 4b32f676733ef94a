#pragma once
// Every checkpoint a user holds, found from one path, with the tokenizer that goes with it:
//   a folder with config.json and model.safetensors (or shards)      Hugging Face, Mamba-1 or Mamba-2
//   a folder with config.json and pytorch_model.bin                   the original state-spaces files
//   a .gguf file                                                      llama.cpp's mamba / mamba2
//   a mamba.c model.bin (magic "Mamb"), or a folder holding one       Mamba-1
// The tokenizer: the folder's tokenizer.json; the GGUF's metadata; mamba.c's tokenizer.bin when it is the
// GPT-NeoX-20B vocabulary; otherwise the bundled GPT-NeoX-20B tokenizer when the vocabulary fits it
// (the state-spaces models use it and ship none); otherwise none (prompts are token ids).
#include <memory>
#include <string>

#include "engine/model.h"
#include "engine/tokenizer.h"

namespace mamba {

struct Checkpoint {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;  // null: none, prompts are token ids
  std::string path;                            // what was opened (a folder or a file)
  std::string format;                          // e.g. "safetensors", "PyTorch zip (pytorch_model.bin)", "GGUF v3", "mamba.c model.bin v1"
  std::string tokenizer_source;                // where the tokenizer came from, or why there is none, in words
};

// Throws mamba::Error naming the file and the problem; nothing of a failed load is kept.
Checkpoint load_checkpoint(const std::string& path, const LoadOptions& opt = {});

// True when `path` looks like something load_checkpoint opens (a folder with config.json or model.bin, a
// .gguf or mamba.c file); cheap, for file dialogs and drops.
bool is_checkpoint_path(const std::string& path);

// The bundled GPT-NeoX-20B tokenizer.json (env MAMBA_GPT_NEOX_TOKENIZER, next to the binary, or the
// source tree); empty when it cannot be found.
std::string gpt_neox_tokenizer_path();
constexpr int32_t kGptNeoxVocab = 50277;

}  // namespace mamba
