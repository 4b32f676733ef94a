#include "app/cli_args.h"

#include <charconv>

namespace mamba::cli {

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string tok = text.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ec != std::errc() || p != tok.data() + tok.size() || v < 0)
      throw UsageError(flag + " needs comma-separated non-negative integers, got '" + text + "'");
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

const CLI::Validator NonNegative(
    [](std::string& v) { return !v.empty() && v.front() == '-' ? std::string("must be >= 0, got ") + v : std::string(); }, ">=0",
    "NonNegative");

void add_model_option(CLI::App* sub, ModelArgs& m) {
  m.option =
      sub->add_option(
             "-m,--model", m.dir,
             "model folder (config.json with safetensors or pytorch_model.bin), .gguf or mamba.c model.bin; default: the embedded model")
          ->type_name("PATH");
}

void add_device_options(CLI::App* sub, DeviceArgs& d, bool scan) {
  sub->add_option("--device", d.device, "cpu or cuda")->type_name("D")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--dtype", d.dtype, "weights on the device: f32, bf16 or f16 (default bf16 on cuda, f32 on cpu)")
      ->type_name("T")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  sub->add_option("--threads", d.threads, "CPU threads (0: all cores)")->type_name("N")->check(CLI::Range(0, 4096));
  if (scan)
    sub->add_option("--scan", d.scan, "prompt scan: chunked or recurrent")
        ->type_name("S")
        ->capture_default_str()
        ->check(CLI::IsMember({"chunked", "recurrent"}));
}

void add_prompt_options(CLI::App* sub, PromptArgs& p) {
  p.text_option = sub->add_option("-i,--input", p.text, "prompt text (needs the model's tokenizer)")->type_name("TEXT");
  p.ids_option = sub->add_option("--ids", p.ids, "prompt token ids")->type_name("1,2,3");
}

}  // namespace mamba::cli
