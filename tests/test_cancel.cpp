// Long work stops when asked and loses nothing: prefill in bounded segments with progress, cancelled
// between layers with the state restored; load, prefill and generation cancelled at random points.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "engine/clock.h"
#include "engine/session.h"
#include "tests/test_util.h"

namespace {

using mamba::Cancelled;
using mamba::ForwardOptions;
using mamba::State;

bool same_state(const State& a, const State& b) {
  if (a.n_tokens != b.n_tokens || a.layers.size() != b.layers.size()) return false;
  for (size_t l = 0; l < a.layers.size(); ++l)
    if (a.layers[l].ssm != b.layers[l].ssm || a.layers[l].conv != b.layers[l].conv) return false;
  return true;
}

// Resident memory now, from /proc (the high-water mark would include earlier tests).
int64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

TEST(Prefill, SegmentsEqualOneRecurrentPass) {
  // 5000 tokens: three segments of the CPU backend's prefill, against the recurrence over all of them.
  const auto m = mamba::test::tiny_model(2);
  const auto ids = mamba::test::random_ids(5000, m->config.vocab_size, 11);
  auto a = mamba::make_cpu_backend(m), b = mamba::make_cpu_backend(m);
  const auto chunked = mamba::test::all_logits(*a, ids, mamba::ScanMode::Chunked, 24);
  const auto recurrent = mamba::test::all_logits(*b, ids, mamba::ScanMode::Recurrent);
  EXPECT_LT(mamba::test::worst_row_err(chunked, recurrent, 5000, m->config.vocab_size), 1e-4);
  const State sa = a->get_state(), sb = b->get_state();
  EXPECT_EQ(sa.n_tokens, 5000);
  EXPECT_LT(mamba::test::rel_err(sa.layers[1].ssm.data(), sb.layers[1].ssm.data(), sa.layers[1].ssm.size()), 1e-4);
}

TEST(Prefill, ChunkLongerThanThePromptIsOneChunk) {
  const auto m = mamba::test::tiny_model(1);
  const auto ids = mamba::test::random_ids(50, m->config.vocab_size, 3);
  auto a = mamba::make_cpu_backend(m), b = mamba::make_cpu_backend(m);
  const auto one = mamba::test::all_logits(*a, ids, mamba::ScanMode::Chunked, 50);
  const auto capped = mamba::test::all_logits(*b, ids, mamba::ScanMode::Chunked, ForwardOptions::kMaxChunk);
  EXPECT_EQ(one, capped);
  ForwardOptions fo;
  for (int64_t bad : {int64_t{-5}, ForwardOptions::kMaxChunk + 1, int64_t{1} << 32}) {
    fo.chunk_size = bad;
    EXPECT_THROW(a->forward(ids, fo, nullptr), mamba::Error) << bad;
  }
}

TEST(Prefill, CancelBetweenLayersRestoresStateAndLogits) {
  const auto m = mamba::test::tiny_model(2);
  const auto head = mamba::test::random_ids(3, m->config.vocab_size, 1), body = mamba::test::random_ids(6000, m->config.vocab_size, 2);
  auto b = mamba::make_cpu_backend(m);
  const int64_t V = m->config.vocab_size;
  std::vector<float> before(V), after(V);
  b->forward(head, {}, nullptr);
  b->last_logits(before);
  const State saved = b->get_state();

  std::atomic<bool> cancel{false};
  ForwardOptions fo;
  fo.cancel = &cancel;
  std::vector<int64_t> seen;
  bool armed = true;
  fo.progress = [&](int64_t done, int64_t total) {
    seen.push_back(done);
    EXPECT_EQ(total, 6000);
    if (armed && done > 2500) cancel = true;  // mid-segment: some layers of the second segment are done
  };
  EXPECT_THROW(b->forward(body, fo, nullptr), Cancelled);
  EXPECT_TRUE(same_state(b->get_state(), saved));
  b->last_logits(after);
  EXPECT_EQ(after, before);
  ASSERT_GE(seen.size(), 3u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_LT(seen.back(), 6000) << "stopped before the end";

  // Run again to the end: the same as a backend that was never cancelled.
  cancel = false;
  armed = false;
  seen.clear();
  std::vector<float> got(V), want(V);
  b->forward(body, fo, got.data());
  EXPECT_EQ(seen.back(), 6000);
  auto fresh = mamba::make_cpu_backend(m);
  fresh->forward(head, {}, nullptr);
  fresh->forward(body, {}, want.data());
  EXPECT_EQ(got, want);
}

// Sanitized builds run a fifth of it (ASan and TSan make it 10-20 times slower) and do not weigh
// resident memory (ASan's quarantine and shadow pages inflate it); the plain build checks both.
#ifdef MAMBA_SANITIZED
constexpr int64_t kLongPrompt = 200'000;
constexpr bool kCheckMemory = false;
#else
constexpr int64_t kLongPrompt = 1'000'000;
constexpr bool kCheckMemory = true;
#endif

TEST(Prefill, MillionTokenPromptHasProgressBoundedMemoryAndCancels) {
  const auto m = mamba::test::tiny_model(1);
  const auto prompt = mamba::test::random_ids(kLongPrompt, m->config.vocab_size, 7);
  mamba::Session s(mamba::make_cpu_backend(m, {}));
  mamba::GenerateOptions go;
  go.max_new_tokens = 2;
  go.stop_at_eos = false;
  const int64_t base = rss_bytes();
  int64_t peak = base, last = -1, calls = 0;
  go.prefill_progress = [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, kLongPrompt);
    EXPECT_GE(done, last);
    last = done;
    ++calls;
    if (calls % 64 == 0) peak = std::max(peak, rss_bytes());
  };
  const auto r = s.generate(prompt, go);
  EXPECT_EQ(last, kLongPrompt);
  EXPECT_EQ(r.ids.size(), 2u);
  EXPECT_EQ(s.tokens().size(), size_t(kLongPrompt + 2));
  // One pass over all of it at once would hold ~1.6 GB of activations for this shape.
  if (kCheckMemory) {
    EXPECT_LT(peak - base, 64 << 20) << "resident memory grew by " << (peak - base) / 1e6 << " MB";
  }
  RecordProperty("prefill_seconds", std::to_string(r.prefill_seconds));

  // The same prompt again, cancelled from another thread once a tenth of it is in.
  s.reset();
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> done_now{0};
  go.prefill_progress = [&](int64_t done, int64_t) { done_now = done; };
  double raised = 0;
  std::thread stopper([&] {
    while (done_now < kLongPrompt / 10) std::this_thread::sleep_for(std::chrono::microseconds(200));
    raised = mamba::now_seconds();
    cancel = true;
  });
  const auto c = s.generate(prompt, go, {}, &cancel);
  const double stopped = mamba::now_seconds();
  stopper.join();
  EXPECT_EQ(c.stop_reason, "cancelled");
  EXPECT_TRUE(c.ids.empty());
  EXPECT_TRUE(s.tokens().empty()) << "a cancelled prompt is not part of the sequence";
  EXPECT_LT(done_now, kLongPrompt);
  EXPECT_LT(stopped - raised, 2.0) << "cancel must not wait for the rest of the prompt";
  // and the session still works
  EXPECT_EQ(s.generate(std::vector<int32_t>{1, 2}, go).ids.size(), 2u);
}

TEST(Sampler, NonFiniteLogitsAreAnErrorNotARepeatedToken) {
  mamba::SamplerParams p;
  mamba::Sampler greedy(p);
  std::vector<float> logits = {0.1f, std::nanf(""), 0.3f};
  EXPECT_THROW(greedy.sample(logits, {}), mamba::Error);
  logits[1] = INFINITY;
  p.temperature = 0.f;
  mamba::Sampler g2(p);
  EXPECT_THROW(g2.sample(logits, {}), mamba::Error);
  // A model whose activations overflow: generation stops with the error instead of printing garbage.
  auto m = std::const_pointer_cast<mamba::Model>(mamba::Model::random(mamba::test::tiny_config(), 1));
  m->weights.norm_f.assign(m->weights.norm_f.size(), 3e38f);
  mamba::Session s(mamba::make_cpu_backend(m));
  mamba::GenerateOptions go;
  try {
    s.generate(std::vector<int32_t>{1, 2}, go);
    FAIL() << "generated from infinite logits";
  } catch (const mamba::Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite logit"), std::string::npos) << e.what();
  }
}

// Load, prefill and generation, each cancelled at a random moment from another thread, 1000 times: every
// run ends (no deadlock), with a result or mamba::Cancelled, and the session stays exact: continuing it
// gives what a session that was never cancelled gives.
TEST(Cancel, ThousandRandomCancellations) {
  mamba::test::TempDir d;
  const auto model = mamba::test::tiny_model(2);
  const std::string dir = d.file("m");
  std::filesystem::create_directories(dir);
  mamba::test::write_file(dir + "/config.json", mamba::test::config_json(model->config).dump());
  mamba::test::write_file(dir + "/model.safetensors", mamba::test::safetensors_bytes(mamba::test::model_tensors(*model)));

  std::mt19937 rng(2024);
  mamba::Session session(mamba::make_cpu_backend(model, {}));
  mamba::Session reference(mamba::make_cpu_backend(model, {}));
  int loads_cancelled = 0, prefills_cancelled = 0, generations_cancelled = 0;
  for (int it = 0; it < 1000; ++it) {
    std::atomic<bool> cancel{false};
    // Loads and every other run: cancelled from another thread after a random delay. The other runs:
    // from inside, at a random token (a Stop click between two tokens).
    const bool from_thread = it % 3 == 0 || it % 2 == 0;
    const int delay_us = int(rng() % (it % 3 == 0 ? 400 : 2000));
    std::thread canceller([&] {
      if (!from_thread) return;
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      cancel = true;
    });
    switch (it % 3) {
      case 0: {
        mamba::LoadOptions lo;
        lo.cancel = &cancel;
        try {
          const auto m = mamba::Model::load(dir, lo);
          EXPECT_EQ(m->weights.layers.size(), 2u);
        } catch (const Cancelled&) {
          ++loads_cancelled;
        }
        break;
      }
      case 1:
      case 2: {
        const auto prompt = mamba::test::random_ids(1 + int64_t(rng() % 3000), model->config.vocab_size, uint32_t(it));
        mamba::GenerateOptions go;
        go.max_new_tokens = int64_t(rng() % 40);
        go.sampling.seed = uint64_t(it);
        go.stop_at_eos = false;
        session.reset();
        const int64_t stop_at = from_thread ? -1 : int64_t(rng() % 40);
        const auto r = session.generate(
            prompt, go,
            [&](const mamba::TokenEvent& ev) {
              if (ev.index == stop_at) cancel = true;
            },
            &cancel);
        if (r.stop_reason == "cancelled") (r.ids.empty() && session.tokens().empty() ? prefills_cancelled : generations_cancelled)++;
        // What is in the session is exactly what a never-cancelled session holds after the same run.
        if (it % 20 == 1 && !session.tokens().empty()) {
          mamba::GenerateOptions same = go, more = go;
          same.max_new_tokens = static_cast<int64_t>(r.ids.size());
          more.max_new_tokens = 3;
          reference.reset();
          reference.generate(prompt, same);
          EXPECT_EQ(reference.tokens(), session.tokens()) << "iteration " << it;
          EXPECT_EQ(session.generate({}, more).ids, reference.generate({}, more).ids) << "iteration " << it;
        }
        break;
      }
    }
    canceller.join();
  }
  RecordProperty("loads_cancelled", loads_cancelled);
  RecordProperty("prefills_cancelled", prefills_cancelled);
  RecordProperty("generations_cancelled", generations_cancelled);
  EXPECT_GT(loads_cancelled, 0);
  EXPECT_GT(prefills_cancelled, 0);
  EXPECT_GT(generations_cancelled, 0);
}
