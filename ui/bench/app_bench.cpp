// mamba-app-bench: the app's generation speed on a random-init model of a preset shape (hub downloads are not
// needed). EngineWorker runs on its QThread (EngineThread, as in the GUI) and streams every token with its
// probability and the GUI's 10 alternatives over queued signals to a receiver on the main thread, which keeps
// what the transcript view keeps (the text and every token with its alternatives; no painting), without and with
// the probes the inspection views receive (EngineWorker::setProbesEnabled). Beside it, the
// engine alone in this process: Session::generate with and without the alternatives, and with probes recorded
// (what the Dynamics view will read). Prints one JSON object.
//   mamba-app-bench [--config 130m] [--device cuda] [--tokens 1024] [--prompt-len 64] [--reps 3]
#include <CLI/CLI.hpp>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QObject>
#include <QStringList>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "backends/backend_factory.h"
#include "engine/model.h"
#include "engine/probes.h"
#include "engine/session.h"
#include "ui/EngineThread.h"
#include "ui/EngineTypes.h"
#include "ui/EngineWorker.h"

using namespace studio;

namespace {

constexpr int kAlternatives = 10;  // as EngineWorker asks

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The main thread's end of the stream: what MainWindow::onToken hands the transcript view.
struct Receiver {
  QString text;
  QVector<TokenData> tokens;
  QElapsedTimer clock;
  qint64 first_ns = 0, last_ns = 0;
  bool complete = true;  // every token came with its probability and alternatives
  void onToken(const TokenData& t) {
    const qint64 ns = clock.nsecsElapsed();
    if (tokens.isEmpty()) first_ns = ns;
    last_ns = ns;
    text += t.piece;
    complete = complete && t.alternatives.size() == kAlternatives && t.prob > 0.f;
    tokens.push_back(t);
  }
};

}  // namespace

int main(int argc, char** argv) {
  QCoreApplication qapp(argc, argv);
  CLI::App app{"mamba-app-bench: the app's generation speed (EngineWorker streaming to the main thread) on a random-init model"};
  std::string config = "130m", device = "cuda";
  int64_t tokens = 1024, prompt_len = 64;
  int reps = 3;
  app.add_option("--config", config, "preset shape, or a model folder (its weights instead of random ones)")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--tokens", tokens, "new tokens per run")->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  app.add_option("--prompt-len", prompt_len, "prompt tokens")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 16));
  app.add_option("--reps", reps, "runs per setting (the best is reported)")->capture_default_str()->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  try {
    auto model =
        std::filesystem::is_directory(config) ? mamba::Model::load(config) : mamba::Model::random(mamba::Config::preset(config), 1);
    const int64_t V = model->config.vocab_size;
    std::mt19937 rng(1234);
    std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
    for (auto& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(V, 50277)));
    QStringList prompt_text;
    for (int32_t id : prompt) prompt_text << QString::number(id);

    nlohmann::json out = {{"model", "random mamba2-" + config}, {"device", device}, {"tokens", tokens}, {"prompt_len", prompt_len}};

    // The engine alone, on this thread: the bench's path (no alternatives) and the GUI's request.
    {
      mamba::BackendOptions bo;
      bo.dtype = device == "cuda" ? "bf16" : "f32";
      mamba::Session s(mamba::make_backend(device, model, bo));
      out["backend"] = s.backend().name();
      mamba::ProbeRecorder probes(model->config, model->weights);
      for (float temp : {0.f, 0.8f})
        for (int what = 0; what < 4; ++what) {
          const bool alts = what & 1, probe = what & 2;
          mamba::GenerateOptions go;
          go.max_new_tokens = tokens;
          go.stop_at_eos = false;
          go.sampling.temperature = temp;
          go.top_alternatives = alts ? kAlternatives : 0;
          s.set_probes(probe ? &probes : nullptr);
          double best = 0;
          for (int r = 0; r < reps + 1; ++r) {  // the first run captures the graphs
            const mamba::GenerateResult res = s.generate(prompt, go);
            const double tps = double(res.ids.size() - 1) / res.decode_seconds;
            if (r > 0) best = std::max(best, tps);
          }
          const char* key = what == 0 ? "ids_only" : what == 1 ? "alternatives_10" : what == 2 ? "probes" : "alternatives_10_probes";
          out["engine"][temp == 0.f ? "greedy" : "t0.8"][key] = best;
          out["engine_decode_path"] = s.backend().decode_path(go.sampling);
        }
      s.set_probes(nullptr);
    }

    // The app: EngineWorker on its thread, streaming to the receiver here.
    EngineThread et;
    EngineWorker* w = et.worker();
    QString failure;
    QObject::connect(w, &EngineWorker::loadFailed, [&](const QString&, const QString& e) { failure = e; });
    QObject::connect(w, &EngineWorker::deviceFailed, [&](const QString&, const QString& e) { failure = e; });
    QObject::connect(w, &EngineWorker::generationFailed, [&](const QString& e) { failure = e; });
    QMetaObject::invokeMethod(
        w,
        [&] {
          w->setDevice(QString::fromStdString(device));
          w->adoptModel(model, nullptr, QStringLiteral("random %1").arg(QString::fromStdString(config)));
        },
        Qt::BlockingQueuedConnection);
    QCoreApplication::processEvents();
    if (!failure.isEmpty()) throw std::runtime_error(failure.toStdString());

    // Without and with the probes the inspection views ask for (EngineWorker::setProbesEnabled).
    for (bool probes : {false, true})
      for (double temp : {0.0, 0.8}) {
        QMetaObject::invokeMethod(
            w, [&] { w->setProbesEnabled(probes); }, Qt::BlockingQueuedConnection);
        double best_worker = 0, best_receiver = 0, wall = 0;
        bool complete = true;
        int64_t received = 0, probe_positions = 0;
        for (int r = 0; r < reps + 1; ++r) {
          Receiver rec;
          GenerationStats stats;
          QEventLoop loop;
          int64_t positions = 0;
          auto c0 = QObject::connect(w, &EngineWorker::probesReady, &loop, [&](const ProbeBatch& b) { positions += b.count; });
          auto c1 = QObject::connect(w, &EngineWorker::tokenGenerated, &loop, [&](const TokenData& t) { rec.onToken(t); });
          auto c2 = QObject::connect(w, &EngineWorker::generationFinished, &loop, [&](const GenerationStats& st) {
            stats = st;
            loop.quit();
          });
          auto c3 = QObject::connect(w, &EngineWorker::generationFailed, &loop, [&](const QString&) { loop.quit(); });
          GenerationRequest req;
          req.kind = GenerationRequest::Kind::Fresh;
          req.prompt = prompt_text.join(QStringLiteral(", "));
          req.sampling.maxNewTokens = int(tokens);
          req.sampling.temperature = temp;
          req.sampling.topP = 1.0;
          req.sampling.seed = 7;
          req.sampling.randomSeed = false;
          rec.clock.start();
          const double t0 = now_s();
          QMetaObject::invokeMethod(w, "generate", Qt::QueuedConnection, Q_ARG(studio::GenerationRequest, req));
          loop.exec();
          const double t1 = now_s();
          QObject::disconnect(c0);
          QObject::disconnect(c1);
          QObject::disconnect(c2);
          QObject::disconnect(c3);
          if (!failure.isEmpty()) throw std::runtime_error(failure.toStdString());
          if (r == 0) continue;  // captures the graphs
          best_worker = std::max(best_worker, stats.tokensPerSecond);
          if (rec.tokens.size() > 1)
            best_receiver = std::max(best_receiver, double(rec.tokens.size() - 1) / ((rec.last_ns - rec.first_ns) * 1e-9));
          wall = t1 - t0;
          complete = complete && rec.complete;
          received = rec.tokens.size();
          probe_positions = positions;
        }
        const std::string key = std::string(temp == 0.0 ? "greedy" : "t0.8") + (probes ? "_probes" : "");
        out["app"][key] = {{"worker_tok_s", best_worker}, {"received_tok_s", best_receiver},
                           {"tokens_received", received}, {"probe_positions_received", probe_positions},
                           {"last_run_wall_s", wall},     {"every_token_has_prob_and_10_alternatives", complete}};
      }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mamba-app-bench: %s\n", e.what());
    return 1;
  }
}
