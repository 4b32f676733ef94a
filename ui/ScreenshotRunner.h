#pragma once
// Drives a MainWindow through --screenshot: wait for the model, optionally generate, render, exit.
// Exit codes: 0 captured as asked; 1 captured, but the model did not load or generation failed
// (the PNG shows why); 2 nothing captured (unknown view, file not writable, timeout).
#include <QObject>
#include <QTimer>

#include "ui/EngineTypes.h"
#include "ui/StudioOptions.h"

namespace studio {

class MainWindow;

class ScreenshotRunner : public QObject {
  Q_OBJECT

 public:
  ScreenshotRunner(MainWindow* window, StudioOptions options, QObject* parent = nullptr);

  // Call after window->start(); the runner ends the event loop with its exit code.
  void start();

  // Renders a view of `window` as the runner does (no hover card when hoverToken < 0).
  static QImage render(MainWindow* window, const QString& view, int hoverToken, QString* error);

 private:
  void onModelLoaded();
  void onModelLoadFailed(const QString& dir, const QString& error);
  void onGenerationDone(const studio::GenerationStats& stats);
  void onGenerationFailed(const QString& error);
  void captureSoon();
  void capture();
  void finish(int code);

  MainWindow* m_window;
  StudioOptions m_options;
  QTimer m_timeout;
  bool m_failed = false;
  bool m_done = false;
  bool m_prepared = false;  // the captured view has been told what to show
  bool m_demo = false;      // the snapshot demo is running: its generations are not the end
};

}  // namespace studio
