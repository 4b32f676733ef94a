// MainWindow's widgets, actions, menus and wiring: how the window is put together.
// What the window does with them lives in MainWindow.cpp.
#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QCoreApplication>
#include <QDir>
#include <QDockWidget>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QScrollArea>
#include <QSplitter>
#include <QStandardItemModel>
#include <QStatusBar>
#include <QStyle>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/EngineThread.h"
#include "ui/EngineWorker.h"
#include "ui/ErrorBanner.h"
#include "ui/MainWindow.h"
#include "ui/ModelInfoPanel.h"
#include "ui/ProbabilityLegend.h"
#include "ui/SamplingPanel.h"
#include "ui/SnapshotPanel.h"
#include "ui/StudioSettings.h"
#include "ui/TokenView.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/ViewRegistry.h"

namespace studio {

void MainWindow::buildActions() {
  auto make = [this](const QString& text, QStyle::StandardPixmap icon, const QKeySequence& key, const QString& tip) {
    auto* a = new QAction(style()->standardIcon(icon), text, this);
    if (!key.isEmpty()) a->setShortcut(key);
    a->setToolTip(key.isEmpty() ? tip : QStringLiteral("%1 (%2)").arg(tip, key.toString(QKeySequence::NativeText)));
    a->setStatusTip(tip);
    return a;
  };
  m_openAction = make(tr("&Open Model…"), QStyle::SP_DialogOpenButton, QKeySequence::Open,
                      tr("Open a model folder (Hugging Face or state-spaces: config.json with safetensors or pytorch_model.bin)"));
  connect(m_openAction, &QAction::triggered, this, &MainWindow::chooseModelFolder);
  m_openFileAction = make(tr("Open Model &File…"), QStyle::SP_FileIcon, QKeySequence(tr("Ctrl+Shift+O")),
                          tr("Open a single-file model: GGUF (mamba, mamba2) or a mamba.c model.bin"));
  connect(m_openFileAction, &QAction::triggered, this, &MainWindow::chooseModelFile);
  m_saveAction = make(tr("&Save Transcript…"), QStyle::SP_DialogSaveButton, QKeySequence::Save,
                      tr("Save the text and the settings that produced it (JSON)"));
  connect(m_saveAction, &QAction::triggered, this, &MainWindow::saveTranscriptAs);
  m_copyAction = make(tr("&Copy Transcript"), QStyle::SP_FileIcon, QKeySequence(tr("Ctrl+Shift+C")), tr("Copy the text"));
  connect(m_copyAction, &QAction::triggered, this, [this] { copyTranscript(false); });
  m_copyJsonAction = make(tr("Copy Transcript as &JSON"), QStyle::SP_FileIcon, {}, tr("Copy the text with its settings as JSON"));
  connect(m_copyJsonAction, &QAction::triggered, this, [this] { copyTranscript(true); });

  m_generateAction = make(tr("&Generate"), QStyle::SP_MediaPlay, QKeySequence(tr("Ctrl+Return")), tr("Generate from the prompt"));
  // Ctrl+Enter on the keypad too
  m_generateAction->setShortcuts({QKeySequence(tr("Ctrl+Return")), QKeySequence(tr("Ctrl+Enter"))});
  connect(m_generateAction, &QAction::triggered, this, &MainWindow::generate);
  m_stopAction = make(tr("&Stop"), QStyle::SP_MediaStop, QKeySequence(Qt::Key_Escape), tr("Stop generating (or loading)"));
  connect(m_stopAction, &QAction::triggered, this, &MainWindow::stop);
  m_continueAction =
      make(tr("&Continue"), QStyle::SP_MediaSeekForward, QKeySequence(tr("Ctrl+Shift+Return")), tr("Generate more after the current text"));
  connect(m_continueAction, &QAction::triggered, this, &MainWindow::continueGeneration);
  m_regenerateAction =
      make(tr("&Regenerate"), QStyle::SP_BrowserReload, QKeySequence(tr("Ctrl+R")), tr("Generate again from the last prompt"));
  connect(m_regenerateAction, &QAction::triggered, this, &MainWindow::regenerate);
  m_clearAction =
      make(tr("C&lear"), QStyle::SP_DialogResetButton, QKeySequence(tr("Ctrl+L")), tr("Clear the transcript and the model's state"));
  connect(m_clearAction, &QAction::triggered, this, &MainWindow::clearTranscript);
  m_greedyAction = make(tr("&Greedy Sampling"), QStyle::SP_ArrowRight, {}, tr("Temperature 0, no filters"));

  m_colourAction = new QAction(tr("Colour Tokens by &Probability"), this);
  m_colourAction->setCheckable(true);
  m_colourAction->setChecked(true);
}

void MainWindow::buildCentral() {
  m_errorBanner = new ErrorBanner(this);

  m_prompt = new QPlainTextEdit(this);
  m_prompt->setPlaceholderText(tr("Prompt — e.g. \"ROMEO:\" — then Ctrl+Enter"));
  m_prompt->setTabChangesFocus(true);
  m_prompt->installEventFilter(this);
  m_prompt->viewport()->installEventFilter(this);
  QFont f = m_prompt->font();
  f.setPointSizeF(f.pointSizeF() * 1.15);
  m_prompt->setFont(f);

  m_tokenView = new TokenView(this);
  m_tokenView->viewport()->installEventFilter(this);

  // the colour key sits with the text it explains
  m_colour = new QCheckBox(tr("Colour by probability"), this);
  m_colour->setChecked(true);
  m_colour->setToolTip(tr("Tint each generated token by the probability the model gave it; hover a token for details"));
  connect(m_colour, &QCheckBox::toggled, m_colourAction, &QAction::setChecked);
  connect(m_colourAction, &QAction::toggled, m_colour, &QCheckBox::setChecked);
  connect(m_colourAction, &QAction::toggled, m_tokenView, &TokenView::setColourByProbability);
  auto* legend = new ProbabilityLegend(this);
  connect(m_colourAction, &QAction::toggled, legend, &QWidget::setVisible);
  auto* header = new QHBoxLayout;
  header->setContentsMargins(0, 2, 0, 0);
  header->addWidget(new QLabel(tr("<b>Transcript</b>"), this));
  header->addStretch(1);
  header->addWidget(m_colour);
  header->addWidget(legend);

  auto* transcript = new QWidget(this);
  auto* transcriptLayout = new QVBoxLayout(transcript);
  transcriptLayout->setContentsMargins(0, 0, 0, 0);
  transcriptLayout->setSpacing(3);
  transcriptLayout->addLayout(header);
  transcriptLayout->addWidget(m_tokenView, 1);

  auto* splitter = new QSplitter(Qt::Vertical, this);
  splitter->addWidget(m_prompt);
  splitter->addWidget(transcript);
  splitter->setStretchFactor(0, 1);
  splitter->setStretchFactor(1, 4);
  splitter->setChildrenCollapsible(false);

  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  layout->setContentsMargins(6, 6, 6, 0);
  layout->addWidget(m_errorBanner);
  layout->addWidget(splitter, 1);
  setCentralWidget(central);
}

void MainWindow::buildDocks() {
  m_modelPanel = new ModelInfoPanel(this);
  auto* modelDock = new QDockWidget(tr("Model"), this);
  modelDock->setObjectName(QStringLiteral("modelDock"));
  modelDock->setWidget(m_modelPanel);
  addDockWidget(Qt::LeftDockWidgetArea, modelDock);

  m_sampling = new SamplingPanel(this);
  auto* samplingDock = new QDockWidget(tr("Sampling"), this);
  samplingDock->setObjectName(QStringLiteral("samplingDock"));
  samplingDock->setWidget(m_sampling);
  addDockWidget(Qt::RightDockWidgetArea, samplingDock);

  connect(m_greedyAction, &QAction::triggered, m_sampling, &SamplingPanel::applyGreedyPreset);

  m_snapshotPanel = new SnapshotPanel(this);
  auto* snapshotDock = new QDockWidget(tr("Snapshots"), this);
  snapshotDock->setObjectName(QStringLiteral("snapshotDock"));
  auto* snapshotScroll = new QScrollArea(snapshotDock);  // the panel never forces the window larger
  snapshotScroll->setWidgetResizable(true);
  snapshotScroll->setFrameShape(QFrame::NoFrame);
  snapshotScroll->setWidget(m_snapshotPanel);
  snapshotDock->setWidget(snapshotScroll);
  addDockWidget(Qt::RightDockWidgetArea, snapshotDock);
  registerView(QStringLiteral("snapshots"), m_snapshotPanel);
  buildInspectorDocks();
}

void MainWindow::buildInspectorDocks() {
  m_inspector = new InspectorContext(worker(), this);
  QDockWidget* first = nullptr;
  for (ViewFactory make : registeredViews()) {
    InspectorView* v = make(m_inspector, this);
    auto* dock = new QDockWidget(v->title(), this);
    dock->setObjectName(QStringLiteral("view_") + v->name());
    // in a scroll area, so a view's controls never force the window larger than the user made it
    auto* scroll = new QScrollArea(dock);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidget(v);
    dock->setWidget(scroll);
    addDockWidget(Qt::BottomDockWidgetArea, dock);
    if (first) tabifyDockWidget(first, dock);
    else first = dock;
    m_inspectorViews.push_back(v);
    registerView(v->name(), v);
    // probes are collected only while a view that shows them is open
    if (v->needsProbes())
      connect(dock, &QDockWidget::visibilityChanged, this, [this, v](bool visible) { m_inspector->setProbeUser(v, visible); });
  }
  if (first) first->raise();
  // linked hover and click between the transcript and the views
  connect(m_tokenView, &TokenView::tokenHovered, m_inspector, &InspectorContext::hover);
  connect(m_tokenView, &TokenView::tokenClicked, m_inspector, &InspectorContext::select);
  connect(m_inspector, &InspectorContext::hoveredChanged, m_tokenView, &TokenView::highlightPosition);
  connect(m_inspector, &InspectorContext::probesWantedChanged, this, &MainWindow::probesEnabledRequested);
}

void MainWindow::buildToolBar() {
  auto* bar = addToolBar(tr("Main"));
  bar->setObjectName(QStringLiteral("mainToolBar"));
  bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  bar->addAction(m_openAction);
  bar->addSeparator();
  bar->addAction(m_generateAction);
  bar->addAction(m_stopAction);
  bar->addAction(m_continueAction);
  bar->addAction(m_regenerateAction);
  bar->addAction(m_clearAction);
  bar->addSeparator();

  m_device = new QComboBox(this);
  m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
  m_device->addItem(tr("CUDA"), QStringLiteral("cuda"));
  m_device->setToolTip(tr("Where the model runs"));
  // CUDA stays disabled until the worker has checked for a usable GPU
  if (auto* model = qobject_cast<QStandardItemModel*>(m_device->model())) model->item(kCudaIndex)->setEnabled(false);
  connect(m_device, &QComboBox::activated, this, [this] {
    if (currentDevice() != m_deviceInUse) emit deviceChangeRequested(currentDevice());
  });
  m_scan = new QComboBox(this);
  m_scan->addItem(tr("Chunked"), QStringLiteral("chunked"));
  m_scan->addItem(tr("Recurrent"), QStringLiteral("recurrent"));
  m_scan->setToolTip(
      tr("How the prompt is consumed: the chunked (SSD) scan, or one token at a time.\n"
         "Both give the same state; generation after the prompt is always recurrent."));

  auto label = [this](const QString& text) {
    auto* l = new QLabel(text, this);
    l->setContentsMargins(6, 0, 3, 0);
    return l;
  };
  bar->addWidget(label(tr("Device")));
  bar->addWidget(m_device);
  bar->addWidget(label(tr("Prompt scan")));
  bar->addWidget(m_scan);
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(m_openAction);
  file->addAction(m_openFileAction);
  m_recentMenu = file->addMenu(tr("Open &Recent"));
  file->addSeparator();
  file->addAction(m_saveAction);
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  edit->addAction(m_copyAction);
  edit->addAction(m_copyJsonAction);

  QMenu* gen = menuBar()->addMenu(tr("&Generate"));
  gen->addAction(m_generateAction);
  gen->addAction(m_stopAction);
  gen->addAction(m_continueAction);
  gen->addAction(m_regenerateAction);
  gen->addAction(m_clearAction);
  gen->addSeparator();
  gen->addAction(m_greedyAction);

  m_viewMenu = menuBar()->addMenu(tr("&View"));
  m_viewMenu->addAction(m_colourAction);
  m_viewMenu->addSeparator();
  for (QDockWidget* dock : findChildren<QDockWidget*>()) m_viewMenu->addAction(dock->toggleViewAction());

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About Mamba Studio"), this, [this] {
    QMessageBox::about(this, tr("About Mamba Studio"),
                       tr("<b>Mamba Studio %1</b><p>Run and inspect Mamba-2 language models.</p>"
                          "<p>Hover a generated token to see its probability and the alternatives the model weighed.</p>")
                           .arg(QCoreApplication::applicationVersion()));
  });
  rebuildRecentMenu();
}

void MainWindow::buildStatusBar() {
  m_loadProgress = new QProgressBar(this);
  m_loadProgress->setRange(0, 1000);
  m_loadProgress->setMaximumWidth(220);
  m_loadProgress->setTextVisible(true);
  m_loadProgress->hide();
  m_cancelLoad = new QToolButton(this);
  m_cancelLoad->setText(tr("Cancel"));
  m_cancelLoad->setToolTip(tr("Cancel loading; the current model stays loaded"));
  m_cancelLoad->hide();
  connect(m_cancelLoad, &QToolButton::clicked, this, &MainWindow::cancelLoad);
  m_tokensLabel = new QLabel(this);
  m_rateLabel = new QLabel(this);
  m_backendLabel = new QLabel(this);
  for (QLabel* l : {m_tokensLabel, m_rateLabel, m_backendLabel}) l->setContentsMargins(6, 0, 6, 0);
  m_tokensLabel->setToolTip(tr("Tokens in the sequence (prompt and generated)"));
  m_rateLabel->setToolTip(tr("Decode speed of the current or last run"));
  statusBar()->addPermanentWidget(m_loadProgress);
  statusBar()->addPermanentWidget(m_cancelLoad);
  statusBar()->addPermanentWidget(m_tokensLabel);
  statusBar()->addPermanentWidget(m_rateLabel);
  statusBar()->addPermanentWidget(m_backendLabel);
}

void MainWindow::connectWorker() {
  EngineWorker* w = worker();
  connect(this, &MainWindow::loadRequested, w, &EngineWorker::loadModel);
  connect(this, &MainWindow::generateRequested, w, &EngineWorker::generate);
  connect(this, &MainWindow::deviceChangeRequested, w, &EngineWorker::setDevice);
  connect(this, &MainWindow::clearRequested, w, &EngineWorker::clearSession);
  connect(this, &MainWindow::probesEnabledRequested, w, &EngineWorker::setProbesEnabled);
  connect(w, &EngineWorker::modelChanged, m_inspector, &InspectorContext::setModel);
  connect(w, &EngineWorker::promptTokenized, m_inspector, &InspectorContext::appendPrompt);
  connect(w, &EngineWorker::promptTokenized, m_tokenView, &TokenView::attachPromptTokens);
  connect(w, &EngineWorker::tokenGenerated, m_inspector, &InspectorContext::appendToken);
  connect(w, &EngineWorker::probesReady, m_inspector, &InspectorContext::appendProbes);

  connect(w, &EngineWorker::devicesProbed, this, &MainWindow::onDevicesProbed);
  connect(w, &EngineWorker::loadStarted, this, &MainWindow::onLoadStarted);
  connect(w, &EngineWorker::loadProgressChanged, this, &MainWindow::onLoadProgress);
  connect(w, &EngineWorker::modelChanged, this, &MainWindow::onModelChanged);
  connect(w, &EngineWorker::loadFailed, this, &MainWindow::onLoadFailed);
  connect(w, &EngineWorker::deviceChanged, this, &MainWindow::onDeviceChanged);
  connect(w, &EngineWorker::deviceFailed, this, &MainWindow::onDeviceFailed);
  connect(w, &EngineWorker::generationStarted, this, &MainWindow::onGenerationStarted);
  connect(w, &EngineWorker::prefillProgressChanged, this, [this](qint64 done, qint64 total) {
    statusBar()->showMessage(tr("Reading the prompt: %L1 of %L2 tokens (Stop cancels)").arg(done).arg(total));
  });
  connect(w, &EngineWorker::tokenGenerated, this, &MainWindow::onToken);
  connect(w, &EngineWorker::generationFinished, this, &MainWindow::onGenerationFinished);
  connect(w, &EngineWorker::generationFailed, this, &MainWindow::onGenerationFailed);
  connect(w, &EngineWorker::sessionCleared, this, &MainWindow::onSessionCleared);
}

void MainWindow::rebuildRecentMenu() {
  m_recentMenu->clear();
  const QStringList recent = m_settings->recentModels();
  for (const QString& dir : recent) {
    QAction* a = m_recentMenu->addAction(QDir(dir).dirName(), this, [this, dir] { openModel(dir); });
    a->setToolTip(dir);
    a->setStatusTip(dir);
  }
  if (recent.isEmpty()) m_recentMenu->addAction(tr("(none yet)"))->setEnabled(false);
  m_recentMenu->setToolTipsVisible(true);
}

}  // namespace studio
