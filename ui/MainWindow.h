#pragma once
#include <functional>
// The studio window: prompt and streamed transcript in the middle, model and sampling in docks,
// throughput in the status bar. Every engine call goes to the EngineWorker through a queued signal.
// Inspection views (dt / state plots, SSD matrix, scan comparison, snapshots) arrive as further docks
// and register themselves with registerView() so --view can capture them.
#include <QElapsedTimer>
#include <QMainWindow>
#include <QMap>
#include <memory>

#include "ui/EngineTypes.h"
#include "ui/SnapshotTypes.h"
#include "ui/Transcript.h"

class QAction;
class QCheckBox;
class QComboBox;
class QLabel;
class QMenu;
class QMimeData;
class QPlainTextEdit;
class QProgressBar;
class QToolButton;

namespace studio {

class EngineThread;
class EngineWorker;
class InspectorContext;
class InspectorView;
class ErrorBanner;
class ModelInfoPanel;
class SamplingPanel;
class SnapshotPanel;
class StudioSettings;
class TokenView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  enum class Activity { Idle, Loading, Generating };

  // `settings` must outlive the window.
  explicit MainWindow(StudioSettings* settings, QWidget* parent = nullptr);
  ~MainWindow() override;

  // Probes devices, then opens `modelDir`, or the last model, or the embedded default one.
  void start(const QString& modelDir = {});

  EngineWorker* worker() const;
  TokenView* tokenView() const { return m_tokenView; }
  SamplingPanel* samplingPanel() const { return m_sampling; }
  ErrorBanner* errorBanner() const { return m_errorBanner; }
  SnapshotPanel* snapshotPanel() const { return m_snapshotPanel; }
  Activity activity() const { return m_activity; }
  bool hasModel() const { return m_hasModel; }
  const ModelInfo& modelInfo() const { return m_model; }
  const Transcript& transcript() const { return m_transcript; }
  QString prompt() const;
  void setPrompt(const QString& text);

  void registerView(const QString& name, QWidget* view);
  QWidget* view(const QString& name) const;  // "window" is the whole window
  QStringList viewNames() const;
  // The inspection views (ui/views/), each in a dock of the bottom area, and the context they share.
  InspectorContext* inspector() const { return m_inspector; }
  InspectorView* inspectorView(const QString& name) const;
  // Shows an inspection view's dock (raised, and floating at `size` when one is given, for captures).
  bool presentView(const QString& name, const QSize& size = {});

 public slots:
  void openModel(const QString& dir);
  void generate();
  void continueGeneration();
  void regenerate();
  void stop();
  void clearTranscript();
  void cancelLoad();
  void saveTranscriptTo(const QString& path);
  // Continue with `text` appended first; keepSampler: with the session's sampler and generator (a
  // restored snapshot's) instead of the Sampling panel's; maxNewTokens 0: the panel's.
  void continueWith(const QString& text, bool keepSampler, int maxNewTokens = 0);
  // The transcript becomes a restored snapshot's text (the worker's state is already that snapshot's).
  void showRestoredSequence(const studio::RestoredSequence& sequence);
  void showError(const QString& what, const QString& cause);
  // The GPU ran out of memory: the error, and a button that moves to the CPU and then runs `then` (if any).
  void showGpuMemoryError(const QString& what, const QString& cause, const QString& actionText, std::function<void()> then);

 signals:
  // to the worker (queued)
  void loadRequested(const QString& dir);
  void generateRequested(const studio::GenerationRequest& request);
  void deviceChangeRequested(const QString& device);
  void clearRequested();
  void probesEnabledRequested(bool on);
  // for tests and the screenshot runner
  void activityChanged(studio::MainWindow::Activity activity);
  void modelLoaded(const studio::ModelInfo& info);
  void modelLoadFailed(const QString& dir, const QString& error);
  void generationFinished(const studio::GenerationStats& stats);
  void generationFailed(const QString& error);

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private slots:
  void onDevicesProbed(const studio::DeviceInfo& info);
  void onLoadStarted(const QString& dir);
  void onLoadProgress(qint64 done, qint64 total);
  void onModelChanged(const studio::ModelInfo& info);
  void onLoadFailed(const QString& dir, const QString& error);
  void onDeviceChanged(const QString& device, const QString& backendName);
  void onDeviceFailed(const QString& device, const QString& error);
  void onGenerationStarted(qint64 promptTokens);
  void onToken(const studio::TokenData& token);
  void onGenerationFinished(const studio::GenerationStats& stats);
  void onGenerationFailed(const QString& error);
  void onSessionCleared();

 private:
  void buildActions();
  void buildMenus();
  void buildToolBar();
  void buildCentral();
  void buildDocks();
  void buildInspectorDocks();
  void buildStatusBar();
  void connectWorker();
  void restoreSettings();
  void saveSettings();
  void rebuildRecentMenu();
  void setActivity(Activity a);
  void updateActions();
  // by value: callers pass m_transcript.prompt, which it resets
  void startRun(GenerationRequest::Kind kind, QString prompt, bool keepSampler = false, int maxNewTokens = 0);
  void chooseModelFolder();
  void chooseModelFile();  // a .gguf, a mamba.c model.bin, or a file of a model folder
  void saveTranscriptAs();
  void copyTranscript(bool asJson);
  QString currentDevice() const;
  QString currentScan() const;
  static QString droppedFolder(const QMimeData* mime);

  StudioSettings* m_settings;
  std::unique_ptr<EngineThread> m_engine;

  // widgets (parent-owned)
  QPlainTextEdit* m_prompt = nullptr;
  TokenView* m_tokenView = nullptr;
  ErrorBanner* m_errorBanner = nullptr;
  ModelInfoPanel* m_modelPanel = nullptr;
  SamplingPanel* m_sampling = nullptr;
  SnapshotPanel* m_snapshotPanel = nullptr;
  QComboBox* m_device = nullptr;
  QComboBox* m_scan = nullptr;
  QCheckBox* m_colour = nullptr;
  QProgressBar* m_loadProgress = nullptr;
  QToolButton* m_cancelLoad = nullptr;
  QLabel* m_tokensLabel = nullptr;
  QLabel* m_rateLabel = nullptr;
  QLabel* m_backendLabel = nullptr;
  QMenu* m_recentMenu = nullptr;
  QMenu* m_viewMenu = nullptr;

  QAction* m_openAction = nullptr;
  QAction* m_openFileAction = nullptr;
  QAction* m_saveAction = nullptr;
  QAction* m_copyAction = nullptr;
  QAction* m_copyJsonAction = nullptr;
  QAction* m_generateAction = nullptr;
  QAction* m_stopAction = nullptr;
  QAction* m_continueAction = nullptr;
  QAction* m_regenerateAction = nullptr;
  QAction* m_clearAction = nullptr;
  QAction* m_greedyAction = nullptr;
  QAction* m_colourAction = nullptr;

  QMap<QString, QWidget*> m_views;
  InspectorContext* m_inspector = nullptr;
  QList<InspectorView*> m_inspectorViews;
  static constexpr int kCudaIndex = 1;  // row of CUDA in the device combo
  Activity m_activity = Activity::Idle;
  bool m_hasModel = false;
  ModelInfo m_model;
  QString m_pendingStartModel;  // opened once the devices are known
  bool m_started = false;
  QString m_deviceInUse = QStringLiteral("cpu");
  qint64 m_sequenceTokens = 0;
  QElapsedTimer m_sinceStatus;  // the status labels refresh a few times a second, not per token
  Transcript m_transcript;
};

}  // namespace studio

Q_DECLARE_METATYPE(studio::MainWindow::Activity)
