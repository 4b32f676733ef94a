// mamba-gui-bench: does the window keep up? Generation speed in the real main window (offscreen platform,
// painting included) on a model folder (default: the embedded default model), with every inspection view
// closed and with one open (default: dynamics, which repaints its plots as probe batches arrive). Runs
// alternate closed / open so a machine's drift hits both alike; the best run of each counts. Prints one JSON
// object: tok/s closed and open and their ratio.
//   mamba-gui-bench [--model DIR] [--view dynamics] [--tokens 400] [--reps 3] [--prompt TEXT]
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
#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioSettings.h"
#include "ui/views/InspectorContext.h"

using namespace studio;

namespace {

// Runs the event loop until `signal` fires or `ms` pass; true if it fired. `start` runs once connected.
template <typename Signal, typename Start>
bool waitFor(MainWindow* w, Signal signal, Start start, int ms) {
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
  CLI11_PARSE(cli, argc, argv);

  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  registerEngineMetaTypes();
  QTemporaryDir tmp;  // settings of its own: never the user's
  const QString ini = tmp.filePath(QStringLiteral("bench.ini"));
  nlohmann::json out;
  out["model"] = model;
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
