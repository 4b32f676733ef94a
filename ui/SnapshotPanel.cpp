#include "ui/SnapshotPanel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QContextMenuEvent>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QMouseEvent>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QStandardPaths>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include "ui/EngineWorker.h"
#include "ui/MainWindow.h"
#include "ui/TokenView.h"

namespace studio {

namespace {
enum Column { kName, kTokens, kState, kKv, kMadeOn, kHow, kTail, kColumns };
QString bytesText(quint64 bytes) { return QLocale().formattedDataSize(qint64(bytes), 1); }
}  // namespace

SnapshotPanel::SnapshotPanel(MainWindow* window) : QWidget(window), m_window(window) {
  buildUi();
  connectWorker();
  window->tokenView()->viewport()->installEventFilter(this);
  updateButtons();
  updateEditControls();
}

// ---------------------------------------------------------------------------------------------------
// layout

void SnapshotPanel::buildUi() {
  auto button = [this](const QString& text, const QString& tip) {
    auto* b = new QPushButton(text, this);
    b->setToolTip(tip);
    return b;
  };
  m_now = button(tr("Snapshot now"), tr("Keep the state after the last token (a few MiB, whatever the length)"));
  m_pick = new QToolButton(this);
  m_pick->setText(tr("Pick a token…"));
  m_pick->setCheckable(true);
  m_pick->setToolTip(tr("Then click a token in the transcript to keep the state after it (or right-click any token)"));
  m_atPosition = new QSpinBox(this);
  m_atPosition->setPrefix(tr("token "));
  m_atPosition->setToolTip(tr("A position in the sequence, prompt included (0 is the first token)"));
  m_at = button(tr("Snapshot at"), tr("Keep the state after this token: replayed from the nearest checkpoint"));
  m_restore = button(tr("Restore"), tr("Make the selected snapshot the live sequence (Continue goes on from it); or double-click it"));
  m_delete = button(tr("Delete"), tr("Forget the selected snapshot (its branches move up to its parent)"));
  m_export = button(tr("Export…"), tr("Write the selected snapshot to a file (atomic; docs/SNAPSHOTS.md)"));
  m_import = button(tr("Import…"), tr("Read a snapshot file (checked against the loaded model)"));
  m_diff = button(tr("Diff"), tr("‖Δh‖ per layer and head between the two selected snapshots"));
  m_compare = button(tr("Compare"), tr("The diff, and both branches' dt and ‖h‖ overlaid from where they part"));
  connect(m_now, &QPushButton::clicked, this, [this] { snapshotNow(); });
  connect(m_pick, &QToolButton::toggled, this, &SnapshotPanel::setPickMode);
  connect(m_at, &QPushButton::clicked, this, [this] { snapshotAt(m_atPosition->value()); });
  connect(m_restore, &QPushButton::clicked, this, [this] { restore(selectedId()); });
  connect(m_delete, &QPushButton::clicked, this, [this] {
    for (int id : selectedIds()) remove(id);
  });
  connect(m_export, &QPushButton::clicked, this, &SnapshotPanel::chooseExport);
  connect(m_import, &QPushButton::clicked, this, &SnapshotPanel::chooseImport);
  connect(m_diff, &QPushButton::clicked, this, [this] {
    const QList<int> ids = selectedIds();
    if (ids.size() == 2) diff(ids[0], ids[1]);
  });
  connect(m_compare, &QPushButton::clicked, this, [this] {
    const QList<int> ids = selectedIds();
    if (ids.size() == 2) compare(ids[0], ids[1]);
  });

  auto* take = new QHBoxLayout;
  take->addWidget(m_now);
  take->addWidget(m_pick);
  take->addWidget(m_at);
  take->addWidget(m_atPosition);
  take->addStretch(1);
  take->addWidget(m_import);
  auto* act = new QHBoxLayout;
  for (QPushButton* b : {m_restore, m_diff, m_compare, m_export, m_delete}) act->addWidget(b);
  act->addStretch(1);

  m_tree = new QTreeWidget(this);
  m_tree->setColumnCount(kColumns);
  m_tree->setHeaderLabels(
      {tr("Snapshot"), tr("Tokens"), tr("State"), tr("KV cache"), tr("Made on"), tr("Sampler / edit"), tr("Ends with")});
  m_tree->headerItem()->setToolTip(kState, tr("The recurrent state: per layer the conv window and the SSM state, fp32"));
  m_tree->headerItem()->setToolTip(
      kKv, tr("What a transformer's KV cache would take for as many tokens: a decoder with this model's depth L and width D, "
              "K and V in fp16 (2 × L × D × 2 bytes per token)"));
  m_tree->setSelectionMode(QAbstractItemView::ExtendedSelection);
  m_tree->setEditTriggers(QAbstractItemView::EditKeyPressed | QAbstractItemView::SelectedClicked);
  m_tree->setUniformRowHeights(true);
  m_tree->setAllColumnsShowFocus(true);
  m_tree->header()->setStretchLastSection(true);
  m_tree->setMinimumHeight(140);
  connect(m_tree, &QTreeWidget::itemSelectionChanged, this, &SnapshotPanel::updateButtons);
  connect(m_tree, &QTreeWidget::itemDoubleClicked, this,
          [this](QTreeWidgetItem* item) { restore(item->data(kName, Qt::UserRole).toInt()); });
  connect(m_tree, &QTreeWidget::itemChanged, this, [this](QTreeWidgetItem* item, int column) {
    if (column != kName) return;
    const int id = item->data(kName, Qt::UserRole).toInt();
    if (m_infos.contains(id) && item->text(kName) != m_infos[id].label) rename(id, item->text(kName));
  });

  m_every = new QSpinBox(this);
  m_every->setRange(0, 4096);
  m_every->setValue(32);
  m_every->setSpecialValueText(tr("off"));
  m_every->setPrefix(tr("every "));
  m_every->setSuffix(tr(" tokens"));
  m_every->setToolTip(tr("Keep the state every K generated tokens, so a snapshot at an earlier token replays at most K − 1"));
  connect(m_every, &QSpinBox::valueChanged, this, [this](int v) { setCheckpointInterval(v); });
  m_cost = new QLabel(this);
  m_cost->setWordWrap(true);
  auto* checkpoints = new QHBoxLayout;
  checkpoints->addWidget(new QLabel(tr("Checkpoints"), this));
  checkpoints->addWidget(m_every);
  checkpoints->addWidget(m_cost, 1);

  // branch
  m_branchText = new QLineEdit(this);
  m_branchText->setPlaceholderText(tr("text to append first (optional)"));
  m_branchSampler = new QComboBox(this);
  m_branchSampler->addItem(tr("its own sampler and generator (exact)"), true);
  m_branchSampler->addItem(tr("the Sampling panel's settings"), false);
  m_branchSampler->setToolTip(tr("Continue exactly as the snapshot would have, or with the settings in the Sampling panel"));
  m_branchTokens = new QSpinBox(this);
  m_branchTokens->setRange(1, 100000);
  m_branchTokens->setValue(48);
  m_branchTokens->setSuffix(tr(" tokens"));
  m_branch = button(tr("Branch"), tr("Restore the selected snapshot, append the text, continue, and keep the end as a child"));
  connect(m_branch, &QPushButton::clicked, this,
          [this] { branch(selectedId(), m_branchText->text(), m_branchSampler->currentData().toBool(), m_branchTokens->value()); });
  auto* branchBox = new QGroupBox(tr("Branch from the selected snapshot"), this);
  auto* bl = new QFormLayout(branchBox);
  bl->addRow(tr("Text"), m_branchText);
  bl->addRow(tr("Sampler"), m_branchSampler);
  auto* brow = new QHBoxLayout;
  brow->addWidget(m_branchTokens);
  brow->addStretch(1);
  brow->addWidget(m_branch);
  bl->addRow(tr("Length"), brow);

  // edit
  m_editKind = new QComboBox(this);
  m_editKind->addItem(tr("Zero a head's state"), int(SnapshotEdit::Kind::ZeroHead));
  m_editKind->addItem(tr("Scale a head's state"), int(SnapshotEdit::Kind::ScaleHead));
  m_editKind->addItem(tr("Copy a layer's state from…"), int(SnapshotEdit::Kind::CopyLayer));
  m_editKind->addItem(tr("Scale a head's dt from now on"), int(SnapshotEdit::Kind::ScaleDt));
  m_editKind->addItem(tr("Clamp a head's dt from now on"), int(SnapshotEdit::Kind::ClampDt));
  connect(m_editKind, &QComboBox::currentIndexChanged, this, &SnapshotPanel::updateEditControls);
  m_editLayer = new QSpinBox(this);
  m_editLayer->setPrefix(tr("layer "));
  m_editHead = new QSpinBox(this);
  m_editHead->setPrefix(tr("head "));
  m_editFactor = new QDoubleSpinBox(this);
  m_editFactor->setRange(0, 1000);
  m_editFactor->setDecimals(3);
  m_editFactor->setValue(0.5);
  m_editFactor->setPrefix(tr("× "));
  m_editLo = new QDoubleSpinBox(this);
  m_editHi = new QDoubleSpinBox(this);
  for (QDoubleSpinBox* b : {m_editLo, m_editHi}) {
    b->setRange(0, 100);
    b->setDecimals(4);
    b->setSingleStep(0.001);
  }
  m_editLo->setPrefix(tr("lo "));
  m_editHi->setPrefix(tr("hi "));
  m_editHi->setValue(0.01);
  m_editSource = new QComboBox(this);
  m_editSource->setToolTip(tr("The snapshot whose layer state is copied in"));
  m_control = new QCheckBox(tr("also continue it unedited, and compare"), this);
  m_control->setChecked(true);
  m_apply = button(tr("Edit and continue"), tr("A new branch with the edit, continued with the snapshot's own sampler"));
  connect(m_apply, &QPushButton::clicked, this,
          [this] { editAndBranch(selectedId(), editFromControls(), m_branchTokens->value(), m_control->isChecked()); });
  auto* editBox = new QGroupBox(tr("Edit the state (makes a new branch)"), this);
  auto* el = new QGridLayout(editBox);
  el->addWidget(m_editKind, 0, 0, 1, 3);
  el->addWidget(m_editLayer, 1, 0);
  el->addWidget(m_editHead, 1, 1);
  el->addWidget(m_editFactor, 1, 2);
  el->addWidget(m_editSource, 2, 0, 1, 3);
  el->addWidget(m_editLo, 2, 0);
  el->addWidget(m_editHi, 2, 1);
  el->addWidget(m_control, 3, 0, 1, 2);
  el->addWidget(m_apply, 3, 2);

  auto* boxes = new QHBoxLayout;
  boxes->addWidget(branchBox, 1);
  boxes->addWidget(editBox, 1);

  m_status = new QLabel(this);
  m_status->setWordWrap(true);
  m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(take);
  layout->addWidget(m_tree, 1);
  layout->addLayout(act);
  layout->addLayout(checkpoints);
  layout->addLayout(boxes);
  layout->addWidget(m_status);
}

void SnapshotPanel::connectWorker() {
  EngineWorker* w = m_window->worker();
  connect(this, &SnapshotPanel::takeRequested, w, &EngineWorker::takeSnapshot);
  connect(this, &SnapshotPanel::restoreRequested, w, &EngineWorker::restoreSnapshot);
  connect(this, &SnapshotPanel::editRequested, w, &EngineWorker::editSnapshot);
  connect(this, &SnapshotPanel::renameRequested, w, &EngineWorker::renameSnapshot);
  connect(this, &SnapshotPanel::deleteRequested, w, &EngineWorker::deleteSnapshot);
  connect(this, &SnapshotPanel::exportRequested, w, &EngineWorker::exportSnapshot);
  connect(this, &SnapshotPanel::importRequested, w, &EngineWorker::importSnapshot);
  connect(this, &SnapshotPanel::diffRequested, w, &EngineWorker::diffSnapshots);
  connect(this, &SnapshotPanel::traceRequested, w, &EngineWorker::traceBranches);
  connect(this, &SnapshotPanel::checkpointIntervalRequested, w, &EngineWorker::setCheckpointInterval);
  connect(this, &SnapshotPanel::checkpointReportRequested, w, &EngineWorker::reportCheckpoints);

  connect(w, &EngineWorker::snapshotAdded, this, &SnapshotPanel::onAdded);
  connect(w, &EngineWorker::snapshotChanged, this, &SnapshotPanel::onChanged);
  connect(w, &EngineWorker::snapshotRemoved, this, &SnapshotPanel::onRemoved);
  // the window shows the restored text before the panel moves on
  connect(w, &EngineWorker::snapshotRestored, m_window, &MainWindow::showRestoredSequence);
  connect(w, &EngineWorker::snapshotRestored, this, &SnapshotPanel::onRestored);
  connect(w, &EngineWorker::snapshotDiffReady, this, &SnapshotPanel::onDiff);
  connect(w, &EngineWorker::branchTracesReady, this, &SnapshotPanel::onTraces);
  connect(w, &EngineWorker::checkpointsChanged, this, &SnapshotPanel::onCheckpoints);
  connect(w, &EngineWorker::snapshotFailed, this, &SnapshotPanel::onFailed);
  connect(w, &EngineWorker::sessionCleared, this, [this] { emit checkpointReportRequested(); });
  connect(m_window, &MainWindow::generationFinished, this, &SnapshotPanel::onGenerationFinished);
  connect(m_window, &MainWindow::generationFailed, this, &SnapshotPanel::onGenerationFailed);
  connect(m_window, &MainWindow::modelLoaded, this, &SnapshotPanel::onModelChanged);
  connect(m_window, &MainWindow::activityChanged, this, &SnapshotPanel::updateButtons);
}

// ---------------------------------------------------------------------------------------------------
// tasks: steps run one after another, each waiting for the worker's answer

void SnapshotPanel::runSteps(QList<Step> steps) {
  if (busy()) {
    fail(tr("Snapshots are busy"), tr("wait until the current step ends"));
    return;
  }
  m_steps = std::move(steps);
  m_status->clear();
  updateButtons();
  next(Wait::None);
}

void SnapshotPanel::next(Wait done) {
  if (m_waiting != done) return;  // an answer nobody here waits for (e.g. a Generate from the toolbar)
  m_waiting = Wait::None;
  while (m_waiting == Wait::None) {
    if (m_steps.isEmpty()) {
      updateButtons();
      emit taskFinished();
      return;
    }
    const Step s = m_steps.takeFirst();
    m_waiting = s.wait;
    s.run();
  }
  updateButtons();
}

void SnapshotPanel::fail(const QString& what, const QString& error) {
  m_steps.clear();
  m_waiting = Wait::None;
  m_status->setText(QStringLiteral("<b>%1</b>: %2").arg(what.toHtmlEscaped(), error.toHtmlEscaped()));
  m_window->showError(what, error);
  updateButtons();
  emit taskFailed(error);
}

void SnapshotPanel::snapshotNow(const QString& label) {
  runSteps({{Wait::Added, [this, label] { emit takeRequested(label, -1); }}});
}

void SnapshotPanel::snapshotAt(qint64 position, const QString& label) {
  runSteps({{Wait::Added, [this, label, position] { emit takeRequested(label, position); }}});
}

void SnapshotPanel::restore(int id) {
  if (!m_infos.contains(id)) return;
  if (m_window->activity() != MainWindow::Activity::Idle) {
    fail(tr("Could not restore the snapshot"), tr("wait until the model is idle"));
    return;
  }
  runSteps({{Wait::Restored, [this, id] { emit restoreRequested(id); }}});
}

QList<SnapshotPanel::Step> SnapshotPanel::branchSteps(std::function<int()> id, const QString& text, bool keepSampler, int tokens,
                                                      std::function<QString()> label) {
  auto go = [this, text, keepSampler, tokens] {
    if (m_window->activity() != MainWindow::Activity::Idle) fail(tr("Could not continue"), tr("the model is busy"));
    else m_window->continueWith(text, keepSampler, tokens);
  };
  return {{Wait::Restored, [this, id] { emit restoreRequested(id()); }}, {Wait::Generated, go}, {Wait::Added, [this, label] {
                                                                                                   emit takeRequested(label(), -1);
                                                                                                 }}};
}

QList<SnapshotPanel::Step> SnapshotPanel::editSteps(std::function<int()> id, const SnapshotEdit& edit, int tokens, bool control) {
  auto ends = std::make_shared<std::pair<int, int>>(-1, -1);  // the control's end, the edit's end
  QList<Step> steps;
  if (control) {
    steps << branchSteps(id, QString(), true, tokens,
                         [this, id, tokens] { return tr("%1 ▸ +%2 unedited").arg(m_infos.value(id()).label).arg(tokens); });
    steps << Step{Wait::None, [this, ends] { ends->first = m_lastAdded; }};
  }
  // the worker adds the edited child and restores it; it then continues like a branch
  steps << Step{Wait::Restored, [this, id, edit] { emit editRequested(id(), edit); }};
  const QList<Step> cont = branchSteps([this] { return m_lastAdded; }, QString(), true, tokens,
                                       [this, tokens] { return tr("%1 ▸ +%2").arg(m_infos.value(m_lastAdded).label).arg(tokens); });
  steps << cont.mid(1);  // already restored
  steps << Step{Wait::None, [this, ends] { ends->second = m_lastAdded; }};
  if (control)
    steps << Step{Wait::Diff, [this, ends] { emit diffRequested(ends->first, ends->second); }}
          << Step{Wait::Traces, [this, ends] { emit traceRequested(ends->first, ends->second); }}
          << Step{Wait::None, [this, ends] {
                    m_tree->clearSelection();
                    if (auto* item = m_items.value(ends->first)) item->setSelected(true);
                    if (auto* item = m_items.value(ends->second)) item->setSelected(true);
                  }};
  return steps;
}

void SnapshotPanel::branch(int id, const QString& text, bool keepSampler, int tokens, const QString& label) {
  if (!m_infos.contains(id)) return;
  const QString name = label.isEmpty() ? tr("%1 ▸ +%2").arg(m_infos[id].label).arg(tokens) : label;
  runSteps(branchSteps([id] { return id; }, text, keepSampler, tokens, [name] { return name; }));
}

void SnapshotPanel::editAndBranch(int id, const SnapshotEdit& edit, int tokens, bool control) {
  if (!m_infos.contains(id)) return;
  runSteps(editSteps([id] { return id; }, edit, tokens, control));
}

void SnapshotPanel::diff(int a, int b) {
  runSteps({{Wait::Diff, [this, a, b] { emit diffRequested(a, b); }}});
}

void SnapshotPanel::compare(int a, int b) {
  runSteps({{Wait::Diff, [this, a, b] { emit diffRequested(a, b); }}, {Wait::Traces, [this, a, b] { emit traceRequested(a, b); }}});
}

void SnapshotPanel::rename(int id, const QString& label) { emit renameRequested(id, label); }

void SnapshotPanel::remove(int id) { emit deleteRequested(id); }

void SnapshotPanel::exportTo(int id, const QString& path) {
  // answered by snapshotChanged (its path) or snapshotFailed
  runSteps({{Wait::Changed, [this, id, path] { emit exportRequested(id, path); }}});
}

void SnapshotPanel::importFrom(const QString& path) {
  runSteps({{Wait::Added, [this, path] { emit importRequested(path); }}});
}

void SnapshotPanel::setCheckpointInterval(int every) {
  if (m_every->value() != every) {
    const QSignalBlocker block(m_every);
    m_every->setValue(every);
  }
  emit checkpointIntervalRequested(every);
}

void SnapshotPanel::runDemo(int tokens) {
  // a snapshot of what was generated; a branch with other text and the Sampling panel's settings; a
  // zeroed head against its unedited control, compared: the tree, the diff and the traces all show
  auto start = std::make_shared<int>(-1);
  auto startId = [start] { return *start; };
  QList<Step> steps{{Wait::Added, [this] { emit takeRequested(tr("start"), -1); }}, {Wait::None, [this, start] { *start = m_lastAdded; }}};
  steps << branchSteps(startId, QStringLiteral("\n"), false, tokens, [this] { return tr("start ▸ new line, fresh seed"); });
  SnapshotEdit e;
  e.kind = SnapshotEdit::Kind::ZeroHead;
  e.layer = int(m_model.layers / 2);
  e.head = 0;
  steps << editSteps(startId, e, tokens, true);
  runSteps(steps);
}

// ---------------------------------------------------------------------------------------------------
// answers from the worker

void SnapshotPanel::onAdded(const SnapshotInfo& info) {
  m_infos.insert(info.id, info);
  auto* item = new QTreeWidgetItem;
  item->setFlags(item->flags() | Qt::ItemIsEditable);
  item->setData(kName, Qt::UserRole, info.id);
  fillItem(item, info);
  if (QTreeWidgetItem* parent = m_items.value(info.parent)) {
    parent->addChild(item);
    parent->setExpanded(true);
  } else {
    m_tree->addTopLevelItem(item);
  }
  m_items.insert(info.id, item);
  for (int c = kTokens; c < kTail; ++c) m_tree->resizeColumnToContents(c);
  m_tree->resizeColumnToContents(kName);
  m_tree->clearSelection();
  item->setSelected(true);
  m_tree->scrollToItem(item);
  m_lastAdded = info.id;
  m_editSource->addItem(info.label, info.id);
  m_status->setText(tr("Kept “%1”: %n token(s), %2 of state (a transformer's KV cache: %3).", nullptr, int(info.tokens))
                        .arg(info.label.toHtmlEscaped(), bytesText(info.stateBytes), bytesText(info.kvBytes)));
  next(Wait::Added);
}

void SnapshotPanel::onChanged(const SnapshotInfo& info) {
  QTreeWidgetItem* item = m_items.value(info.id);
  if (!item) return;
  const bool exported = m_waiting == Wait::Changed && !info.path.isEmpty();
  const bool moved = m_infos.value(info.id).parent != info.parent;
  m_infos.insert(info.id, info);
  fillItem(item, info);
  if (moved) {
    QTreeWidgetItem* from = item->parent();
    if (from) from->removeChild(item);
    else m_tree->takeTopLevelItem(m_tree->indexOfTopLevelItem(item));
    if (QTreeWidgetItem* parent = m_items.value(info.parent)) parent->addChild(item);
    else m_tree->addTopLevelItem(item);
  }
  const int row = m_editSource->findData(info.id);
  if (row >= 0) m_editSource->setItemText(row, info.label);
  if (exported) {
    m_status->setText(tr("Wrote “%1” to %2 (%3).")
                          .arg(info.label.toHtmlEscaped(), QDir::toNativeSeparators(info.path).toHtmlEscaped(), bytesText(info.fileBytes)));
    next(Wait::Changed);
  }
}

void SnapshotPanel::onRemoved(int id) {
  QTreeWidgetItem* item = m_items.take(id);
  m_infos.remove(id);
  const int row = m_editSource->findData(id);
  if (row >= 0) m_editSource->removeItem(row);
  if (!item) return;
  // its children move up to its parent (the worker re-sends them too)
  QTreeWidgetItem* parent = item->parent();
  const QList<QTreeWidgetItem*> children = item->takeChildren();
  if (parent) parent->insertChildren(parent->indexOfChild(item), children);
  else m_tree->insertTopLevelItems(m_tree->indexOfTopLevelItem(item), children);
  delete item;
  updateButtons();
}

void SnapshotPanel::onRestored(const RestoredSequence& sequence) {
  const SnapshotInfo info = m_infos.value(sequence.id);
  m_status->setText(tr("Restored “%1”: %n token(s); Continue goes on from it.", nullptr, int(info.tokens)).arg(info.label.toHtmlEscaped()));
  emit checkpointReportRequested();
  next(Wait::Restored);
}

void SnapshotPanel::onDiff(const SnapshotDiff& diff) {
  m_lastDiff = diff;
  m_window->presentView(QStringLiteral("snapshot-diff"));
  m_status->setText(
      tr("The snapshot-diff view shows ‖Δh‖ between “%1” and “%2”.").arg(diff.labelA.toHtmlEscaped(), diff.labelB.toHtmlEscaped()));
  next(Wait::Diff);
}

void SnapshotPanel::onTraces(const BranchTraces& traces) {
  m_lastTraces = traces;
  m_window->presentView(QStringLiteral("branches"));
  m_status->setText(tr("The branches view overlays both branches' dt and ‖h‖ from token %1.").arg(traces.forkPosition));
  next(Wait::Traces);
}

void SnapshotPanel::onCheckpoints(const CheckpointInfo& info) {
  // the interval in force (the worker picks one by device until one is chosen here)
  if (m_every->value() != info.every) {
    const QSignalBlocker block(m_every);
    m_every->setValue(int(info.every));
  }
  m_checkpoints = info;
  m_cost->setText(checkpointText());
  m_atPosition->setRange(0, int(std::max<qint64>(0, info.tokens - 1)));
  updateButtons();
}

QString SnapshotPanel::checkpointText() const {
  const CheckpointInfo& c = m_checkpoints;
  if (c.every <= 0) return tr("off: a snapshot can only be taken after the last token");
  QString text = tr("%n state(s) held, %1 in all; a snapshot at an earlier token replays at most %2 token(s)", nullptr, int(c.count))
                     .arg(bytesText(c.bytes))
                     .arg(c.maxReplay);
  if (m_decodeRate > 0 && c.maxReplay > 0)
    text += tr(" (≈ %1 s at the last run's %2 tok/s)").arg(c.maxReplay / m_decodeRate, 0, 'f', 2).arg(m_decodeRate, 0, 'f', 0);
  if (c.first > 0) text += tr("; tokens before %1 came from a restored snapshot and are not replayed").arg(c.first);
  return text;
}

void SnapshotPanel::onFailed(const QString& what, const QString& error) { fail(what, error); }

void SnapshotPanel::onGenerationFinished(const GenerationStats& stats) {
  if (stats.tokensPerSecond > 0) m_decodeRate = stats.tokensPerSecond;
  emit checkpointReportRequested();
  next(Wait::Generated);
}

void SnapshotPanel::onGenerationFailed(const QString& error) {
  if (m_waiting == Wait::Generated) fail(tr("Generation failed"), error);
}

void SnapshotPanel::onModelChanged(const ModelInfo& info) {
  m_model = info;
  m_editLayer->setRange(0, int(std::max<qint64>(0, info.layers - 1)));
  m_editHead->setRange(0, int(std::max<qint64>(0, info.heads - 1)));
  emit checkpointReportRequested();
}

// ---------------------------------------------------------------------------------------------------
// the list and the controls

void SnapshotPanel::fillItem(QTreeWidgetItem* item, const SnapshotInfo& info) {
  const QSignalBlocker block(m_tree);
  item->setText(kName, info.label);
  item->setText(kTokens, QLocale().toString(info.tokens));
  item->setText(kState, bytesText(info.stateBytes));
  item->setText(kKv, bytesText(info.kvBytes));
  item->setText(kMadeOn,
                info.dtype.isEmpty() ? info.device : QStringLiteral("%1, %2").arg(info.device.section(QLatin1Char(' '), 0, 0), info.dtype));
  QStringList how;
  if (!info.edit.isEmpty()) how << info.edit;
  else if (!info.sampler.isEmpty()) how << info.sampler;
  if (!info.dtEdits.isEmpty() && info.edit.isEmpty()) how << info.dtEdits;
  item->setText(kHow, how.join(QStringLiteral("; ")));
  item->setText(kTail, info.otherModel ? tr("(another model)") : QStringLiteral("…") + info.tail);
  for (int c : {kTokens, kState, kKv}) item->setTextAlignment(c, Qt::AlignRight | Qt::AlignVCenter);
  const QString tip =
      tr("<b>%1</b> (#%2, %3)<br>%4 tokens, %5 fed, the last one pending<br>state %6, file %7; a transformer's KV cache for as many "
         "tokens: %8<br>made on %9 (%10 weights), engine %11, %12<br>model %13%14<br>sampler: %15<br>dt edits: %16%17")
          .arg(info.label.toHtmlEscaped())
          .arg(info.id)
          .arg(info.origin)
          .arg(info.tokens)
          .arg(info.fed)
          .arg(bytesText(info.stateBytes), bytesText(info.fileBytes), bytesText(info.kvBytes), info.device.toHtmlEscaped(), info.dtype,
               info.engineVersion, QLocale().toString(info.created, QLocale::ShortFormat), info.modelId)
          .arg(info.otherModel ? tr(" — <b>another model</b>: restoring it is refused") : QString())
          .arg(info.sampler.isEmpty() ? tr("none yet") : info.sampler.toHtmlEscaped())
          .arg(info.dtEdits.isEmpty() ? tr("none") : info.dtEdits.toHtmlEscaped())
          .arg(info.path.isEmpty() ? QString() : tr("<br>file: %1").arg(QDir::toNativeSeparators(info.path).toHtmlEscaped()));
  for (int c = 0; c < kColumns; ++c) {
    item->setToolTip(c, tip);
    item->setForeground(c, info.otherModel ? palette().brush(QPalette::Disabled, QPalette::Text) : palette().brush(QPalette::Text));
  }
}

QList<int> SnapshotPanel::selectedIds() const {
  QList<int> ids;
  for (QTreeWidgetItem* item : m_tree->selectedItems()) ids << item->data(kName, Qt::UserRole).toInt();
  return ids;
}

int SnapshotPanel::selectedId() const {
  const QList<int> ids = selectedIds();
  return ids.size() == 1 ? ids[0] : -1;
}

void SnapshotPanel::updateButtons() {
  const bool idle = m_window->activity() == MainWindow::Activity::Idle && !busy() && m_window->hasModel();
  const int n = int(selectedIds().size());
  const bool haveText = m_checkpoints.tokens > 0;
  m_now->setEnabled(idle && haveText);
  m_pick->setEnabled(idle && haveText);
  m_at->setEnabled(idle && haveText);
  m_restore->setEnabled(idle && n == 1);
  m_delete->setEnabled(!busy() && n >= 1);
  m_export->setEnabled(idle && n == 1);
  m_import->setEnabled(idle);
  m_diff->setEnabled(idle && n == 2);
  m_compare->setEnabled(idle && n == 2);
  m_branch->setEnabled(idle && n == 1);
  m_apply->setEnabled(idle && n == 1);
}

void SnapshotPanel::updateEditControls() {
  const auto kind = SnapshotEdit::Kind(m_editKind->currentData().toInt());
  const bool head = kind != SnapshotEdit::Kind::CopyLayer;
  m_editHead->setVisible(head);
  m_editFactor->setVisible(kind == SnapshotEdit::Kind::ScaleHead || kind == SnapshotEdit::Kind::ScaleDt);
  m_editSource->setVisible(kind == SnapshotEdit::Kind::CopyLayer);
  m_editLo->setVisible(kind == SnapshotEdit::Kind::ClampDt);
  m_editHi->setVisible(kind == SnapshotEdit::Kind::ClampDt);
  const bool dt = kind == SnapshotEdit::Kind::ScaleDt || kind == SnapshotEdit::Kind::ClampDt;
  m_editKind->setToolTip(dt ? tr("dt edits apply to every token run while the branch is live; the CPU backend runs them (CUDA refuses)")
                            : tr("The state is changed once; the model then runs as usual"));
}

SnapshotEdit SnapshotPanel::editFromControls() const {
  SnapshotEdit e;
  e.kind = SnapshotEdit::Kind(m_editKind->currentData().toInt());
  e.layer = m_editLayer->value();
  e.head = m_editHead->value();
  e.factor = m_editFactor->value();
  e.source = m_editSource->currentData().toInt();
  e.lo = m_editLo->value();
  e.hi = m_editHi->value();
  return e;
}

bool SnapshotPanel::pickMode() const { return m_pick->isChecked(); }

void SnapshotPanel::setPickMode(bool on) {
  if (m_pick->isChecked() != on) m_pick->setChecked(on);
  TokenView* view = m_window->tokenView();
  if (on) view->viewport()->setCursor(Qt::CrossCursor);
  else view->viewport()->unsetCursor();
  if (on) m_status->setText(tr("Click a token in the transcript: the snapshot keeps the state after it."));
}

bool SnapshotPanel::eventFilter(QObject* watched, QEvent* event) {
  TokenView* view = m_window->tokenView();
  if (watched != view->viewport()) return QWidget::eventFilter(watched, event);
  if (event->type() == QEvent::MouseButtonPress && pickMode()) {
    auto* me = static_cast<QMouseEvent*>(event);
    const TokenView::Span* span = view->tokenAt(me->position().toPoint());
    if (me->button() == Qt::LeftButton && span) {
      setPickMode(false);
      snapshotAt(span->token.position);
      return true;
    }
  } else if (event->type() == QEvent::ContextMenu) {
    auto* ce = static_cast<QContextMenuEvent*>(event);
    if (const TokenView::Span* span = view->tokenAt(ce->pos())) {
      const qint64 position = span->token.position;
      QMenu* menu = view->createStandardContextMenu(ce->pos());
      menu->addSeparator();
      QAction* a = menu->addAction(tr("Snapshot after this token (%1)").arg(position), this, [this, position] { snapshotAt(position); });
      a->setEnabled(m_window->activity() == MainWindow::Activity::Idle && !busy());
      menu->exec(ce->globalPos());
      delete menu;
      return true;
    }
  }
  return QWidget::eventFilter(watched, event);
}

// ---------------------------------------------------------------------------------------------------
// files

void SnapshotPanel::chooseExport() {
  const int id = selectedId();
  if (!m_infos.contains(id)) return;
  const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/snapshots");
  QDir().mkpath(dir);
  QString name = m_infos[id].label;
  name.replace(QRegularExpression(QStringLiteral("[^\\w.-]+")), QStringLiteral("_"));
  const QString path = QFileDialog::getSaveFileName(this, tr("Export Snapshot"), QDir(dir).filePath(name + QStringLiteral(".msnap")),
                                                    tr("Mamba Studio snapshot (*.msnap);;Any file (*)"));
  if (!path.isEmpty()) exportTo(id, path);
}

void SnapshotPanel::chooseImport() {
  const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/snapshots");
  const QString path = QFileDialog::getOpenFileName(this, tr("Import Snapshot"), dir, tr("Mamba Studio snapshot (*.msnap);;Any file (*)"));
  if (!path.isEmpty()) importFrom(path);
}

}  // namespace studio
