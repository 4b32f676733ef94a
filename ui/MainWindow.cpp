#include "ui/MainWindow.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMenu>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QRandomGenerator>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QStatusBar>
#include <QToolButton>

#include "engine/checkpoint.h"
#include "engine/model.h"
#include "ui/EngineThread.h"
#include "ui/EngineWorker.h"
#include "ui/ErrorBanner.h"
#include "ui/ModelInfoPanel.h"
#include "ui/SamplingPanel.h"
#include "ui/StudioResources.h"
#include "ui/StudioSettings.h"
#include "ui/TokenView.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"

namespace studio {

namespace {
// The CUDA backend's errors for a failed allocation start so (kernels/cuda_check.cpp).
bool isGpuMemoryError(const QString& error) { return error.contains(QLatin1String("out of GPU memory")); }
}  // namespace

MainWindow::MainWindow(StudioSettings* settings, QWidget* parent)
    : QMainWindow(parent), m_settings(settings), m_engine(std::make_unique<EngineThread>()) {
  initStudioResources();
  qRegisterMetaType<studio::MainWindow::Activity>();
  setWindowTitle(tr("Mamba Studio"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/mamba-studio.png")));
  setAcceptDrops(true);
  setDockNestingEnabled(true);

  buildActions();
  buildCentral();
  buildDocks();
  buildToolBar();
  buildMenus();
  buildStatusBar();
  connectWorker();
  restoreSettings();
  updateActions();

  registerView(QStringLiteral("tokens"), m_tokenView);
  registerView(QStringLiteral("prompt"), m_prompt);
  registerView(QStringLiteral("model"), m_modelPanel);
  registerView(QStringLiteral("sampling"), m_sampling);
}

MainWindow::~MainWindow() {
  // stop the engine before any widget its queued signals could reach goes away
  m_engine.reset();
}

EngineWorker* MainWindow::worker() const { return m_engine->worker(); }

// ---------------------------------------------------------------------------------------------------
// settings

void MainWindow::restoreSettings() {
  if (!restoreGeometry(m_settings->geometry())) resize(1280, 800);
  restoreState(m_settings->windowState());
  m_sampling->setSettings(m_settings->sampling());
  m_scan->setCurrentIndex(qMax(0, m_scan->findData(m_settings->scan())));
  m_colourAction->setChecked(m_settings->colourByProbability());
}

void MainWindow::saveSettings() {
  m_settings->setGeometry(saveGeometry());
  m_settings->setWindowState(saveState());
  m_settings->setSampling(m_sampling->settings());
  m_settings->setDevice(m_deviceInUse);
  m_settings->setScan(currentScan());
  m_settings->setColourByProbability(m_colourAction->isChecked());
  m_settings->sync();
}

// ---------------------------------------------------------------------------------------------------
// views

void MainWindow::registerView(const QString& name, QWidget* view) { m_views.insert(name, view); }

QWidget* MainWindow::view(const QString& name) const {
  if (name.isEmpty() || name == QLatin1String("window")) return const_cast<MainWindow*>(this);
  return m_views.value(name, nullptr);
}

QStringList MainWindow::viewNames() const { return QStringList{QStringLiteral("window")} + m_views.keys(); }

InspectorView* MainWindow::inspectorView(const QString& name) const {
  for (InspectorView* v : m_inspectorViews)
    if (v->name() == name) return v;
  return nullptr;
}

bool MainWindow::presentView(const QString& name, const QSize& size) {
  InspectorView* v = inspectorView(name);
  auto* dock = findChild<QDockWidget*>(QStringLiteral("view_") + name);
  if (!v || !dock) return false;
  dock->show();
  dock->raise();
  if (size.isValid()) {
    dock->setFloating(true);
    dock->resize(size);
  }
  return true;
}

QString MainWindow::prompt() const { return m_prompt->toPlainText(); }
void MainWindow::setPrompt(const QString& text) { m_prompt->setPlainText(text); }

QString MainWindow::currentDevice() const { return m_device->currentData().toString(); }
QString MainWindow::currentScan() const { return m_scan->currentData().toString(); }

// ---------------------------------------------------------------------------------------------------
// start-up and models

void MainWindow::start(const QString& modelDir) {
  m_started = true;
  QString dir = modelDir;
  if (dir.isEmpty()) {
    const QString last = m_settings->lastModel();
    dir = !last.isEmpty() && mamba::is_checkpoint_path(last.toStdString()) ? last : QString::fromStdString(mamba::default_model_dir());
  }
  m_pendingStartModel = dir;
  // the model opens once the devices are known, on the device the user last chose
  QMetaObject::invokeMethod(worker(), &EngineWorker::probeDevices, Qt::QueuedConnection);
}

void MainWindow::onDevicesProbed(const DeviceInfo& info) {
  auto* model = qobject_cast<QStandardItemModel*>(m_device->model());
  QStandardItem* cuda = model ? model->item(kCudaIndex) : nullptr;
  if (cuda) {
    cuda->setEnabled(info.cudaAvailable);
    cuda->setText(info.cudaAvailable ? tr("CUDA") : tr("CUDA (unavailable)"));
    cuda->setToolTip(info.cudaAvailable ? tr("Run on the GPU (bf16 weights)") : tr("CUDA unavailable: %1").arg(info.cudaWhyNot));
  }
  m_device->setToolTip(info.cudaAvailable ? tr("Where the model runs")
                                          : tr("Where the model runs. CUDA unavailable: %1").arg(info.cudaWhyNot));
  if (m_settings->device() == QLatin1String("cuda")) {
    if (info.cudaAvailable) {
      m_device->setCurrentIndex(kCudaIndex);
      emit deviceChangeRequested(QStringLiteral("cuda"));
    } else {
      statusBar()->showMessage(tr("CUDA unavailable (%1); running on the CPU").arg(info.cudaWhyNot), 10000);
    }
  }
  if (!m_pendingStartModel.isEmpty()) {
    const QString dir = std::exchange(m_pendingStartModel, QString());
    if (!mamba::is_checkpoint_path(dir.toStdString())) {
      showError(tr("No model to open"),
                tr("the embedded default model is missing (looked in %1). Open a model folder or file with File ▸ Open Model…, "
                   "or drop one onto the window.")
                    .arg(QDir::toNativeSeparators(dir)));
      emit modelLoadFailed(dir, tr("missing"));
      return;
    }
    openModel(dir);
  }
}

void MainWindow::chooseModelFolder() {
  const QString start = m_hasModel && !m_model.dir.isEmpty() ? QFileInfo(m_model.dir).absolutePath() : QDir::homePath();
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"), start);
  if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::chooseModelFile() {
  const QString start = m_hasModel && !m_model.dir.isEmpty() ? QFileInfo(m_model.dir).absolutePath() : QDir::homePath();
  const QString file = QFileDialog::getOpenFileName(
      this, tr("Open Model File"), start,
      tr("Model files (*.gguf *.bin config.json *.safetensors);;GGUF (*.gguf);;mamba.c or PyTorch (*.bin);;All files (*)"));
  if (!file.isEmpty()) openModel(file);
}

void MainWindow::openModel(const QString& dir) {
  if (m_activity == Activity::Loading) return;
  if (m_activity == Activity::Generating) stop();  // the load queues behind the ending run
  emit loadRequested(dir);
}

void MainWindow::cancelLoad() {
  if (m_activity != Activity::Loading) return;
  worker()->requestCancelLoad();
  m_cancelLoad->setEnabled(false);
  statusBar()->showMessage(tr("Cancelling…"));
}

void MainWindow::onLoadStarted(const QString& dir) {
  setActivity(Activity::Loading);
  m_loadProgress->setValue(0);
  m_loadProgress->setFormat(tr("Loading %p%"));
  m_loadProgress->show();
  m_cancelLoad->setEnabled(true);
  m_cancelLoad->show();
  statusBar()->showMessage(tr("Loading %1…").arg(QDir::toNativeSeparators(dir)));
}

void MainWindow::onLoadProgress(qint64 done, qint64 total) {
  m_loadProgress->setValue(total > 0 ? int(1000 * done / total) : 0);
  m_loadProgress->setToolTip(tr("%1 of %2").arg(QLocale().formattedDataSize(done), QLocale().formattedDataSize(total)));
}

void MainWindow::onModelChanged(const ModelInfo& info) {
  m_loadProgress->hide();
  m_cancelLoad->hide();
  m_hasModel = true;
  m_model = info;
  m_modelPanel->setModel(info);
  m_backendLabel->setText(info.backendName);
  setWindowTitle(tr("%1 — Mamba Studio").arg(info.label));
  if (!info.dir.isEmpty()) {
    m_settings->setLastModel(info.dir);
    m_settings->addRecentModel(info.dir);
    rebuildRecentMenu();
  }
  m_errorBanner->hide();
  // the new model starts from an empty state; the old transcript no longer matches it
  m_tokenView->clearTranscript();
  m_transcript = Transcript{};
  m_sequenceTokens = 0;
  m_tokensLabel->clear();
  m_rateLabel->clear();
  statusBar()->showMessage(
      info.loadSeconds > 0 ? tr("Loaded %1 in %2 s").arg(info.label).arg(info.loadSeconds, 0, 'f', 2) : tr("Loaded %1").arg(info.label),
      8000);
  setActivity(Activity::Idle);
  emit modelLoaded(info);
}

void MainWindow::onLoadFailed(const QString& dir, const QString& error) {
  m_loadProgress->hide();
  m_cancelLoad->hide();
  const QString name = QDir::toNativeSeparators(dir);
  const QString what = tr("Could not open %1").arg(name), cause = m_hasModel ? tr("%1. Still using %2.").arg(error, m_model.label) : error;
  if (isGpuMemoryError(error)) showGpuMemoryError(what, cause, tr("Open on the CPU"), [this, dir] { openModel(dir); });
  else showError(what, cause);
  setActivity(Activity::Idle);
  emit modelLoadFailed(dir, error);
}

void MainWindow::onDeviceChanged(const QString& device, const QString& backendName) {
  m_deviceInUse = device;
  m_device->setCurrentIndex(qMax(0, m_device->findData(device)));
  if (!backendName.isEmpty()) {
    m_model.backendName = backendName;
    m_modelPanel->setBackendName(backendName);
    m_backendLabel->setText(backendName);
  }
  statusBar()->showMessage(tr("Running on %1").arg(backendName.isEmpty() ? device : backendName), 5000);
}

void MainWindow::onDeviceFailed(const QString& device, const QString& error) {
  m_device->setCurrentIndex(qMax(0, m_device->findData(m_deviceInUse)));
  showError(tr("Could not switch to %1").arg(device.toUpper()), error);
}

// ---------------------------------------------------------------------------------------------------
// generation

void MainWindow::startRun(GenerationRequest::Kind kind, QString prompt, bool keepSampler, int maxNewTokens) {
  SamplingSettings s = m_sampling->settings();
  if (maxNewTokens > 0) s.maxNewTokens = maxNewTokens;
  if (s.randomSeed) {
    s.seed = QRandomGenerator::global()->bounded(1u, 0x7fffffffu);
    m_sampling->showSeed(s.seed);  // shown so a good run can be repeated
  }
  GenerationRequest req;
  req.kind = kind;
  req.prompt = prompt;
  req.sampling = s;
  req.scan = currentScan();
  req.keepSampler = keepSampler;

  if (kind == GenerationRequest::Kind::Fresh) {
    m_tokenView->clearTranscript();
    m_tokenView->appendPrompt(prompt);
    m_transcript = Transcript{};
    m_transcript.prompt = prompt;
    m_transcript.modelLabel = m_model.label;
    m_transcript.modelDir = m_model.dir;
    m_sequenceTokens = 0;
  } else if (!prompt.isEmpty()) {
    m_tokenView->appendPrompt(prompt);  // text appended before continuing
  }
  TranscriptRun run;
  run.kind = kind == GenerationRequest::Kind::Fresh ? QStringLiteral("generate") : QStringLiteral("continue");
  run.sampling = s;
  run.scan = req.scan;
  run.device = m_deviceInUse;
  m_transcript.runs.push_back(run);
  if (kind == GenerationRequest::Kind::Fresh) m_inspector->resetSequence();
  m_inspector->setRunRecord(
      m_transcript.prompt,
      QJsonDocument::fromJson(m_transcript.toJson()).object().value(QStringLiteral("runs")).toArray().last().toObject());
  m_errorBanner->hide();
  m_rateLabel->clear();
  setActivity(Activity::Generating);
  emit generateRequested(req);
}

void MainWindow::generate() {
  if (m_activity != Activity::Idle || !m_hasModel) return;
  const QString text = prompt();
  if (text.isEmpty()) {
    showError(tr("Nothing to generate from"), tr("type a prompt first"));
    return;
  }
  startRun(GenerationRequest::Kind::Fresh, text);
}

void MainWindow::continueGeneration() {
  if (m_activity != Activity::Idle || !m_hasModel || m_transcript.isEmpty()) return;
  startRun(GenerationRequest::Kind::Continue, {});
}

void MainWindow::continueWith(const QString& text, bool keepSampler, int maxNewTokens) {
  if (m_activity != Activity::Idle || !m_hasModel || m_transcript.isEmpty()) return;
  startRun(GenerationRequest::Kind::Continue, text, keepSampler, maxNewTokens);
}

void MainWindow::showRestoredSequence(const RestoredSequence& sequence) {
  m_tokenView->clearTranscript();
  m_tokenView->appendPrompt(sequence.text);
  PromptTokens tokens;
  tokens.ids = sequence.ids;
  tokens.pieces = sequence.pieces;
  m_tokenView->attachPromptTokens(tokens);  // the restored text links by position like a prompt
  m_inspector->resetSequence();
  m_inspector->appendPrompt(tokens);
  m_transcript = Transcript{};
  m_transcript.prompt = sequence.text;
  m_transcript.text = sequence.text;
  m_transcript.modelLabel = m_model.label;
  m_transcript.modelDir = m_model.dir;
  TranscriptRun run;
  run.kind = QStringLiteral("restore");
  run.promptTokens = sequence.ids.size();
  run.device = m_deviceInUse;
  m_transcript.runs.push_back(run);
  m_sequenceTokens = sequence.ids.size();
  m_tokensLabel->setText(tr("%n token(s)", nullptr, int(m_sequenceTokens)));
  m_errorBanner->hide();
  statusBar()->showMessage(tr("Restored a snapshot of %n token(s); Continue goes on from it", nullptr, int(m_sequenceTokens)), 8000);
  updateActions();
}

void MainWindow::regenerate() {
  if (m_activity != Activity::Idle || !m_hasModel || m_transcript.prompt.isEmpty()) return;
  startRun(GenerationRequest::Kind::Fresh, m_transcript.prompt);
}

void MainWindow::stop() {
  if (m_activity == Activity::Loading) {
    cancelLoad();
    return;
  }
  if (m_activity != Activity::Generating) return;
  // straight to the flag: the worker's queue is not served while it decodes
  worker()->requestStop();
  statusBar()->showMessage(tr("Stopping…"));
}

void MainWindow::clearTranscript() {
  if (m_activity != Activity::Idle) return;
  m_tokenView->clearTranscript();
  m_inspector->resetSequence();
  m_transcript = Transcript{};
  m_sequenceTokens = 0;
  m_tokensLabel->clear();
  m_rateLabel->clear();
  emit clearRequested();
  updateActions();
}

void MainWindow::onGenerationStarted(qint64 promptTokens) {
  m_sequenceTokens += promptTokens;
  m_sinceStatus.invalidate();
  if (!m_transcript.runs.isEmpty()) m_transcript.runs.last().promptTokens = promptTokens;
  m_tokensLabel->setText(tr("%n token(s)", nullptr, int(m_sequenceTokens)));
  statusBar()->showMessage(tr("Generating…"));
}

void MainWindow::onToken(const TokenData& token) {
  m_tokenView->appendToken(token);
  if (!m_transcript.runs.isEmpty()) m_transcript.runs.last().ids.push_back(token.id);
  ++m_sequenceTokens;
  if (m_sinceStatus.isValid() && m_sinceStatus.elapsed() < 100) return;
  m_sinceStatus.start();
  m_tokensLabel->setText(tr("%n token(s)", nullptr, int(m_sequenceTokens)));
  if (token.tokensPerSecond > 0) m_rateLabel->setText(tr("%1 tok/s").arg(token.tokensPerSecond, 0, 'f', 1));
}

void MainWindow::onGenerationFinished(const GenerationStats& stats) {
  m_sequenceTokens = stats.totalTokens;
  m_tokensLabel->setText(tr("%n token(s)", nullptr, int(m_sequenceTokens)));
  if (stats.tokensPerSecond > 0) m_rateLabel->setText(tr("%1 tok/s").arg(stats.tokensPerSecond, 0, 'f', 1));
  if (!m_transcript.runs.isEmpty()) {
    m_transcript.runs.last().stopReason = stats.stopReason;
    m_transcript.runs.last().tokensPerSecond = stats.tokensPerSecond;
  }
  m_transcript.text = m_tokenView->toPlainText();
  const QString why = stats.stopReason == QLatin1String("cancelled") ? tr("stopped")
                      : stats.stopReason == QLatin1String("eos")     ? tr("end of text")
                                                                     : tr("length limit");
  statusBar()->showMessage(tr("%1 new tokens (%2); prompt %3 tokens in %4 s")
                               .arg(stats.newTokens)
                               .arg(why)
                               .arg(stats.promptTokens)
                               .arg(stats.prefillSeconds, 0, 'f', 3),
                           15000);
  setActivity(Activity::Idle);
  emit generationFinished(stats);
}

void MainWindow::onGenerationFailed(const QString& error) {
  if (!m_transcript.runs.isEmpty() && m_transcript.runs.last().ids.isEmpty()) m_transcript.runs.removeLast();
  m_transcript.text = m_tokenView->toPlainText();
  if (isGpuMemoryError(error)) showGpuMemoryError(tr("Generation failed"), error, tr("Continue on the CPU"), {});
  else showError(tr("Generation failed"), error);
  setActivity(Activity::Idle);
  emit generationFailed(error);
}

void MainWindow::onSessionCleared() {
  // the worker dropped its state (e.g. a device switch that could not carry it): the text no longer continues
  if (m_activity == Activity::Idle && !m_transcript.isEmpty()) {
    m_transcript.runs.clear();
    statusBar()->showMessage(tr("The model's state was reset; Generate starts afresh"), 8000);
  }
  updateActions();
}

// ---------------------------------------------------------------------------------------------------
// state of the controls

void MainWindow::setActivity(Activity a) {
  if (m_activity == a) return;
  m_activity = a;
  updateActions();
  emit activityChanged(a);
}

void MainWindow::updateActions() {
  const bool idle = m_activity == Activity::Idle;
  const bool ready = idle && m_hasModel;
  m_generateAction->setEnabled(ready);
  m_stopAction->setEnabled(m_activity != Activity::Idle);  // Esc also cancels a load
  m_continueAction->setEnabled(ready && !m_transcript.isEmpty());
  m_regenerateAction->setEnabled(ready && !m_transcript.prompt.isEmpty());
  m_clearAction->setEnabled(idle);
  m_openAction->setEnabled(m_activity != Activity::Loading);
  m_recentMenu->setEnabled(m_activity != Activity::Loading);
  m_device->setEnabled(idle);
  m_scan->setEnabled(idle);
  const bool haveText = idle && !m_transcript.isEmpty();
  m_saveAction->setEnabled(haveText);
  m_copyAction->setEnabled(haveText);
  m_copyJsonAction->setEnabled(haveText);
}

void MainWindow::showError(const QString& what, const QString& cause) {
  m_errorBanner->showError(what, cause);
  statusBar()->showMessage(what, 8000);
}

void MainWindow::showGpuMemoryError(const QString& what, const QString& cause, const QString& actionText, std::function<void()> then) {
  // The worker runs requests in order: the switch (which carries the model and its state) comes before `then`.
  m_errorBanner->showError(what, cause, actionText, [this, then] {
    if (m_deviceInUse != QLatin1String("cpu")) emit deviceChangeRequested(QStringLiteral("cpu"));
    if (then) then();
  });
  statusBar()->showMessage(what, 8000);
}

// ---------------------------------------------------------------------------------------------------
// transcript

void MainWindow::saveTranscriptTo(const QString& path) {
  m_transcript.text = m_tokenView->toPlainText();
  const QString error = m_transcript.save(path);
  if (!error.isEmpty()) showError(tr("Could not save %1").arg(QDir::toNativeSeparators(path)), error);
  else statusBar()->showMessage(tr("Saved %1").arg(QDir::toNativeSeparators(path)), 5000);
}

void MainWindow::saveTranscriptAs() {
  const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/transcripts");
  QDir().mkpath(dir);
  const QString name =
      QStringLiteral("%1-%2.json").arg(m_model.label, QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd-HHmmss")));
  const QString path = QFileDialog::getSaveFileName(this, tr("Save Transcript"), QDir(dir).filePath(name),
                                                    tr("Transcript with settings (*.json);;Plain text (*.txt)"));
  if (!path.isEmpty()) saveTranscriptTo(path);
}

void MainWindow::copyTranscript(bool asJson) {
  m_transcript.text = m_tokenView->toPlainText();
  QApplication::clipboard()->setText(asJson ? QString::fromUtf8(m_transcript.toJson()) : m_transcript.text);
  statusBar()->showMessage(asJson ? tr("Copied the transcript as JSON") : tr("Copied the transcript"), 3000);
}

// ---------------------------------------------------------------------------------------------------
// window events

void MainWindow::closeEvent(QCloseEvent* event) {
  saveSettings();
  QMainWindow::closeEvent(event);
}

QString MainWindow::droppedFolder(const QMimeData* mime) {
  if (!mime || !mime->hasUrls()) return {};
  for (const QUrl& url : mime->urls()) {
    if (!url.isLocalFile()) continue;
    const QFileInfo fi(url.toLocalFile());
    if (fi.isDir()) return fi.absoluteFilePath();
    if (fi.fileName() == QLatin1String("config.json")) return fi.absolutePath();                       // a file of the folder will do
    if (mamba::is_checkpoint_path(fi.absoluteFilePath().toStdString())) return fi.absoluteFilePath();  // GGUF, mamba.c
  }
  return {};
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (!droppedFolder(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QString dir = droppedFolder(event->mimeData());
  if (dir.isEmpty()) return;
  event->acceptProposedAction();
  openModel(dir);
}

bool MainWindow::eventFilter(QObject* watched, QEvent* event) {
  // The text areas take drops themselves; a dropped folder is meant for the window, not as text.
  if (event->type() == QEvent::DragEnter || event->type() == QEvent::DragMove) {
    auto* drag = static_cast<QDragMoveEvent*>(event);
    if (!droppedFolder(drag->mimeData()).isEmpty()) {
      drag->acceptProposedAction();
      return true;
    }
  } else if (event->type() == QEvent::Drop) {
    auto* drop = static_cast<QDropEvent*>(event);
    const QString dir = droppedFolder(drop->mimeData());
    if (!dir.isEmpty()) {
      drop->acceptProposedAction();
      openModel(dir);
      return true;
    }
  }
  return QMainWindow::eventFilter(watched, event);
}

}  // namespace studio
