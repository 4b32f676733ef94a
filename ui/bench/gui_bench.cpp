// mamba-gui-bench: does the window keep up? Generation speed in the real main window (offscreen platform,
// painting included) on a model folder (default: the embedded default model), with every inspection view
// closed and with one open (default: dynamics, which repaints its plots as probe batches arrive). Runs
// alternate closed / open so a machine's drift hits both alike; the best run of each counts. Prints one JSON
// object: tok/s closed and open and their ratio.
// --matrix T instead: does the window stay responsive while the SSD matrix view's work runs? A text of about
// T tokens, then the matrix of layer 0, head 0 requested as the view does; a 5 ms timer on the main thread
// records how late it fires from the request until the view has drawn the result.
//   mamba-gui-bench [--model DIR] [--view dynamics] [--tokens 400] [--reps 3] [--prompt TEXT] [--matrix T]
#include <CLI/CLI.hpp>
#include <QApplication>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTemporaryDir>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "ui/EngineTypes.h"
#include "ui/EngineWorker.h"
#include "ui/MainWindow.h"
#include "ui/MatrixTypes.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"
#include "ui/views/InspectorContext.h"

using namespace studio;

namespace {

// Runs the event loop until `signal` fires or `ms` pass; true if it fired. `start` runs once connected.
template <typename Sender, typename Signal, typename Start>
bool waitFor(Sender* w, Signal signal, Start start, int ms) {
  QEventLoop loop;
  bool fired = false;
  const auto c = QObject::connect(w, signal, &loop, [&] {
    fired = true;
    loop.quit();
  });
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  start();
  if (!fired) loop.exec();
  QObject::disconnect(c);
  return fired;
}

struct Run {
  double tok_s = 0;         // as the window sees it: new tokens over the wall time from Generate to the finish
                            // arriving on the main thread, less the prefill (any backlog of queued tokens counts)
  double worker_tok_s = 0;  // as the worker measured it
  int64_t tokens = 0, probe_positions = 0;
  bool probes = false;
};

Run generateOnce(const QString& ini, const QString& model, const QString& view, const QString& prompt, int tokens) {
  StudioSettings settings(ini);
  MainWindow w(&settings);
  w.resize(1400, 1000);
  w.show();
  for (QDockWidget* d : w.findChildren<QDockWidget*>())
    if (d->objectName().startsWith(QStringLiteral("view_"))) d->close();
  if (!view.isEmpty() && !w.presentView(view)) throw std::runtime_error("no view named " + view.toStdString());
  if (!waitFor(
          &w, &MainWindow::modelLoaded, [&] { w.start(model); }, 120000))
    throw std::runtime_error("the model did not load: " + model.toStdString());
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = tokens;
  s.seed = 3;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
  w.setPrompt(prompt);
  GenerationStats st;
  const auto keep = QObject::connect(&w, &MainWindow::generationFinished, [&](const GenerationStats& s) { st = s; });
  QElapsedTimer clock;
  clock.start();
  if (!waitFor(
          &w, &MainWindow::generationFinished, [&] { w.generate(); }, 600000))
    throw std::runtime_error("generation did not finish");
  const double wall = clock.nsecsElapsed() * 1e-9;
  QObject::disconnect(keep);
  // the first token costs the prefill; the worker's rate counts the tokens after it, so does this one
  const double decode_wall = wall - st.prefillSeconds;
  return {decode_wall > 0 ? double(st.newTokens - 1) / decode_wall : 0.0, st.tokensPerSecond, st.newTokens, w.inspector()->probes().count,
          w.inspector()->probesWanted()};
}

// The matrix mode: the worst and 99th-percentile lateness of a 5 ms main-thread timer while the matrix is made
// and drawn, and how long it took.
nlohmann::json matrixResponsiveness(const QString& ini, const QString& model, int tokens) {
  StudioSettings settings(ini);
  MainWindow w(&settings);
  w.resize(1400, 1000);
  w.show();
  if (!waitFor(
          &w, &MainWindow::modelLoaded, [&] { w.start(model); }, 120000))
    throw std::runtime_error("the model did not load");
  if (!w.presentView(QStringLiteral("ssd"))) throw std::runtime_error("no ssd view");
  QString text;
  while (text.size() < tokens * 4)
    text += QStringLiteral("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. ");
  SamplingSettings s = w.samplingPanel()->settings();
  s.maxNewTokens = 1;
  s.randomSeed = false;
  w.samplingPanel()->setSettings(s);
  w.setPrompt(text);
  if (!waitFor(
          &w, &MainWindow::generationFinished, [&] { w.generate(); }, 600000))
    throw std::runtime_error("the text did not run");

  EngineWorker* worker = w.worker();
  std::vector<double> late;  // ms past the 5 ms tick
  QElapsedTimer clock, tick;
  QTimer timer;
  timer.setTimerType(Qt::PreciseTimer);
  timer.setInterval(5);
  QObject::connect(&timer, &QTimer::timeout, [&] {
    late.push_back(std::max(0.0, tick.nsecsElapsed() * 1e-6 - 5.0));
    tick.restart();
  });
  MatrixResult result;
  double ready_s = 0;
  const auto keep = QObject::connect(worker, &EngineWorker::matrixReady, &w, [&](const MatrixResult& r) {
    result = r;
    ready_s = clock.nsecsElapsed() * 1e-9;
  });
  clock.start();
  tick.start();
  timer.start();
  MatrixRequest req;
  const bool ok = waitFor(
      worker, &EngineWorker::matrixReady,
      [&] { QMetaObject::invokeMethod(worker, "computeMatrix", Qt::QueuedConnection, Q_ARG(studio::MatrixRequest, req)); }, 600000);
  // the view draws the result on the main thread: keep measuring until that is done
  QEventLoop settle;
  QTimer::singleShot(1000, &settle, &QEventLoop::quit);
  settle.exec();
  timer.stop();
  QObject::disconnect(keep);
  if (!ok) throw std::runtime_error("the matrix did not arrive");
  std::vector<double> sorted = late;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json out;
  out["matrix_tokens"] = result.T;
  out["text_tokens"] = result.textTokens;
  out["ready_seconds"] = ready_s;
  out["timer_ticks"] = late.size();
  out["worst_late_ms"] = sorted.empty() ? 0.0 : sorted.back();
  out["p99_late_ms"] = sorted.empty() ? 0.0 : sorted[size_t(0.99 * double(sorted.size() - 1))];
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"mamba-gui-bench: generation speed in the main window, inspection views closed vs one open"};
  std::string model = mamba::default_model_dir(), view = "dynamics", prompt = "ROMEO:";
  int tokens = 400, reps = 3;
  cli.add_option("--model", model, "model folder")->capture_default_str();
  cli.add_option("--view", view, "the view opened in the second setting")->capture_default_str();
  cli.add_option("--tokens", tokens, "new tokens per run")->check(CLI::Range(1, 100000))->capture_default_str();
  cli.add_option("--reps", reps, "runs per setting (the best counts)")->check(CLI::Range(1, 100))->capture_default_str();
  cli.add_option("--prompt", prompt, "prompt text")->capture_default_str();
  int matrix = 0;
  cli.add_option("--matrix", matrix, "instead: responsiveness while the SSD matrix of a text of about T tokens is made")
      ->check(CLI::Range(0, 4096));
  CLI11_PARSE(cli, argc, argv);

  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  registerEngineMetaTypes();
  QTemporaryDir tmp;  // settings of its own: never the user's
  const QString ini = tmp.filePath(QStringLiteral("bench.ini"));
  nlohmann::json out;
  out["model"] = model;
  if (matrix > 0) {
    try {
      nlohmann::json m = matrixResponsiveness(ini, QString::fromStdString(model), matrix);
      m["model"] = model;
      std::printf("%s\n", m.dump(2).c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mamba-gui-bench: %s\n", e.what());
      return 1;
    }
  }
  out["view"] = view;
  out["tokens"] = tokens;
  Run best_closed, best_open;
  try {
    for (int r = 0; r < reps; ++r)
      for (bool open : {false, true}) {
        const Run run = generateOnce(ini, QString::fromStdString(model), open ? QString::fromStdString(view) : QString(),
                                     QString::fromStdString(prompt), tokens);
        out[open ? "open_tok_s" : "closed_tok_s"].push_back(run.tok_s);
        out[open ? "open_worker_tok_s" : "closed_worker_tok_s"].push_back(run.worker_tok_s);
        Run& best = open ? best_open : best_closed;
        if (run.tok_s > best.tok_s) best = run;
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mamba-gui-bench: %s\n", e.what());
    return 1;
  }
  out["closed_best_tok_s"] = best_closed.tok_s;
  out["open_best_tok_s"] = best_open.tok_s;
  out["open_probes_on"] = best_open.probes;
  out["open_probe_positions"] = best_open.probe_positions;
  out["closed_probes_on"] = best_closed.probes;
  out["ratio_open_to_closed"] = best_closed.tok_s > 0 ? best_open.tok_s / best_closed.tok_s : 0.0;
  // each open run against the closed run just before it, the median of those: steadier than the best
  // runs' ratio where the machine's speed drifts
  std::vector<double> pairs;
  for (size_t i = 0; i < out["open_tok_s"].size(); ++i)
    pairs.push_back(out["open_tok_s"][i].get<double>() / std::max(1e-9, out["closed_tok_s"][i].get<double>()));
  std::sort(pairs.begin(), pairs.end());
  out["pair_ratio_median"] = pairs.size() % 2 ? pairs[pairs.size() / 2] : 0.5 * (pairs[pairs.size() / 2 - 1] + pairs[pairs.size() / 2]);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
