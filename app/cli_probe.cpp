// mamba-cli probe: what every layer and head did at every token (engine/probes.h) of a prompt and the
// greedy tokens decoded after it, as one JSON object.
#include <cstdio>
#include <sstream>

#include "app/cli_command.h"
#include "app/cli_common.h"
#include "engine/error.h"
#include "engine/probes.h"
#include "engine/session.h"

namespace mamba::cli {

namespace {

struct ProbeArgs {
  ModelArgs model;
  DeviceArgs device;
  PromptArgs prompt;
  int64_t new_tokens = 0;
  int64_t chunk_size = 0;
};

// [layer][position][head] from values stored (position, layer, head); [layer][position] when `scalar`.
void print_cube(std::ostream& os, const char* name, const std::vector<float>& v, const ProbeFrames& f, bool scalar = false) {
  char buf[32];
  os << ",\n\"" << name << "\": [";
  for (int64_t l = 0; l < f.L; ++l) {
    os << (l ? ",\n [" : "\n [");
    for (int64_t t = 0; t < f.count; ++t) {
      if (t) os << ',';
      if (scalar) {
        std::snprintf(buf, sizeof buf, "%.9g", double(v[size_t(t * f.L + l)]));
        os << buf;
        continue;
      }
      os << '[';
      for (int64_t h = 0; h < f.H; ++h) {
        std::snprintf(buf, sizeof buf, "%s%.9g", h ? "," : "", double(v[size_t((t * f.L + l) * f.H + h)]));
        os << buf;
      }
      os << ']';
    }
    os << ']';
  }
  os << ']';
}

int run(const ProbeArgs& a) {
  Loaded l = load_model(a.model);
  const std::vector<int32_t> prompt = prompt_ids(a.prompt, l, true);
  if (prompt.empty()) throw UsageError("the prompt encodes to no tokens");
  const Config& c = l.model->config;
  Session session(open_backend(a.device, l.model));
  ProbeRecorder rec(c, l.model->weights, static_cast<int64_t>(prompt.size()) + a.new_tokens);
  session.set_probes(&rec);
  GenerateOptions go;
  go.max_new_tokens = a.new_tokens;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  go.scan = parse_scan(a.device.scan);
  go.chunk_size = a.chunk_size;
  session.generate(prompt, go);
  session.append({});  // the last generated token is fed too, so every token has its probes
  const ProbeFrames f = rec.frames(0, static_cast<int64_t>(session.tokens().size()));
  if (f.count != static_cast<int64_t>(session.tokens().size())) throw Error("probe: positions are missing from the record");

  std::ostringstream os;
  os << "{\"layers\": " << c.n_layer << ", \"heads\": " << c.n_heads << ", \"tokens\": [";
  for (size_t i = 0; i < session.tokens().size(); ++i) os << (i ? "," : "") << session.tokens()[i];
  os << "]";
  print_cube(os, "dt", f.dt, f);
  print_cube(os, "decay", f.decay, f);
  print_cube(os, "state_norm", f.state_norm, f);
  print_cube(os, "y_norm", f.y_norm, f);
  print_cube(os, "resid_norm", f.resid_norm, f, true);
  os << "}\n";
  write_stdout(os.str());
  return 0;
}

}  // namespace

void add_probe(Commands& commands) {
  auto a = std::make_shared<ProbeArgs>();
  CLI::App* sub =
      commands.add("probe",
                   "dt, decay, state and output norms per layer, token and head (and the residual norm per layer) of a "
                   "prompt and N greedy tokens, as JSON indexed [layer][position][head] ([layer][position] for the residual norm)",
                   [a] { return run(*a); });
  add_model_option(sub, a->model);
  add_prompt_options(sub, a->prompt);
  sub->add_option("-n,--new-tokens", a->new_tokens, "greedy tokens decoded after the prompt (default 0)")->check(NonNegative);
  sub->add_option("--chunk-size", a->chunk_size, "chunk length of the chunked scan (default: the model's)")
      ->type_name("Q")
      ->check(NonNegative);
  add_device_options(sub, a->device, true);
}

}  // namespace mamba::cli
