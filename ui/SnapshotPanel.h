#pragma once
// The Snapshots panel: take a snapshot of the sequence now or after any earlier token (pick it in the
// transcript, or type its position), name, restore, delete, export and import them; each one's size next
// to a transformer's KV cache for as many tokens. Branch from a snapshot with other settings or text, or
// edit its state (zero or scale a head, copy a layer from another snapshot, scale or clamp a head's dt)
// and continue: the branches form a tree. Compare two snapshots: ||Δh|| per layer and head as a heatmap
// (the snapshot-diff view) and both branches' dt and ||h|| overlaid from where they part (the branches
// view). All engine work is the worker's (EngineWorker's snapshot slots); the panel holds plain values.
#include <QHash>
#include <QList>
#include <QWidget>
#include <functional>

#include "ui/EngineTypes.h"
#include "ui/SnapshotTypes.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QToolButton;
class QTreeWidget;
class QTreeWidgetItem;

namespace studio {

class MainWindow;

class SnapshotPanel : public QWidget {
  Q_OBJECT

 public:
  explicit SnapshotPanel(MainWindow* window);

  // What the buttons do, callable (tests, the screenshot runner). Each runs on the worker; a task made
  // of several steps (branch, edit) runs them in order and ends with taskFinished or taskFailed.
  void snapshotNow(const QString& label = {});
  void snapshotAt(qint64 position, const QString& label = {});
  void restore(int id);
  // Restore `id`, append `text`, continue `tokens` tokens (keepSampler: the snapshot's sampler and
  // generator; else the Sampling panel's settings), and snapshot the end as a child.
  void branch(int id, const QString& text, bool keepSampler, int tokens, const QString& label = {});
  // A child of `id` with the edit, continued like a branch with the snapshot's own sampler; with
  // `control`, the unedited snapshot is continued the same way first, and both ends are compared.
  void editAndBranch(int id, const SnapshotEdit& edit, int tokens, bool control);
  void diff(int a, int b);
  void compare(int a, int b);  // the diff and the branch traces
  void rename(int id, const QString& label);
  void remove(int id);
  void exportTo(int id, const QString& path);
  void importFrom(const QString& path);
  void setCheckpointInterval(int every);
  // A small tour for screenshots: a snapshot now, a branch with other settings, a zeroed head against
  // its control, compared.
  void runDemo(int tokens);

  QList<SnapshotInfo> snapshots() const { return m_infos.values(); }
  SnapshotInfo info(int id) const { return m_infos.value(id); }
  int lastAdded() const { return m_lastAdded; }
  bool busy() const { return !m_steps.isEmpty() || m_waiting != Wait::None; }
  QTreeWidget* tree() const { return m_tree; }
  const CheckpointInfo& checkpoints() const { return m_checkpoints; }
  const SnapshotDiff& lastDiff() const { return m_lastDiff; }
  const BranchTraces& lastTraces() const { return m_lastTraces; }
  QString checkpointText() const;
  bool pickMode() const;
  void setPickMode(bool on);

 signals:
  // to the worker (queued)
  void takeRequested(const QString& label, qint64 position);
  void restoreRequested(int id);
  void editRequested(int id, const studio::SnapshotEdit& edit);
  void renameRequested(int id, const QString& label);
  void deleteRequested(int id);
  void exportRequested(int id, const QString& path);
  void importRequested(const QString& path);
  void diffRequested(int a, int b);
  void traceRequested(int a, int b);
  void checkpointIntervalRequested(qint64 every);
  void checkpointReportRequested();
  // for tests
  void taskFinished();
  void taskFailed(const QString& error);

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  enum class Wait { None, Added, Changed, Restored, Generated, Diff, Traces };
  struct Step {
    Wait wait = Wait::None;
    std::function<void()> run;
  };
  void buildUi();
  void connectWorker();
  void runSteps(QList<Step> steps);
  // restore id(), continue `tokens` tokens, snapshot the end as label(): ids and labels are read when
  // the step runs, so a step can use what an earlier one made
  QList<Step> branchSteps(std::function<int()> id, const QString& text, bool keepSampler, int tokens, std::function<QString()> label);
  QList<Step> editSteps(std::function<int()> id, const SnapshotEdit& edit, int tokens, bool control);
  void next(Wait done);
  void fail(const QString& what, const QString& error);

  void onAdded(const studio::SnapshotInfo& info);
  void onChanged(const studio::SnapshotInfo& info);
  void onRemoved(int id);
  void onRestored(const studio::RestoredSequence& sequence);
  void onDiff(const studio::SnapshotDiff& diff);
  void onTraces(const studio::BranchTraces& traces);
  void onCheckpoints(const studio::CheckpointInfo& info);
  void onFailed(const QString& what, const QString& error);
  void onGenerationFinished(const studio::GenerationStats& stats);
  void onGenerationFailed(const QString& error);
  void onModelChanged(const studio::ModelInfo& info);

  void fillItem(QTreeWidgetItem* item, const SnapshotInfo& info);
  QList<int> selectedIds() const;
  int selectedId() const;
  void updateButtons();
  void updateEditControls();
  void chooseExport();
  void chooseImport();
  SnapshotEdit editFromControls() const;

  MainWindow* m_window;
  QTreeWidget* m_tree = nullptr;
  QHash<int, QTreeWidgetItem*> m_items;
  QHash<int, SnapshotInfo> m_infos;
  QToolButton* m_pick = nullptr;
  QPushButton *m_now = nullptr, *m_at = nullptr, *m_restore = nullptr, *m_delete = nullptr, *m_export = nullptr, *m_import = nullptr;
  QPushButton *m_diff = nullptr, *m_compare = nullptr, *m_branch = nullptr, *m_apply = nullptr;
  QSpinBox* m_atPosition = nullptr;
  QSpinBox* m_every = nullptr;
  QLabel* m_cost = nullptr;
  QLabel* m_status = nullptr;
  QLineEdit* m_branchText = nullptr;
  QComboBox* m_branchSampler = nullptr;
  QSpinBox* m_branchTokens = nullptr;
  QComboBox* m_editKind = nullptr;
  QSpinBox *m_editLayer = nullptr, *m_editHead = nullptr;
  QDoubleSpinBox *m_editFactor = nullptr, *m_editLo = nullptr, *m_editHi = nullptr;
  QComboBox* m_editSource = nullptr;
  QCheckBox* m_control = nullptr;

  ModelInfo m_model;
  CheckpointInfo m_checkpoints;
  SnapshotDiff m_lastDiff;
  BranchTraces m_lastTraces;
  double m_decodeRate = 0;  // tok/s of the last run, for the replay estimate
  QList<Step> m_steps;
  Wait m_waiting = Wait::None;
  int m_lastAdded = -1;
};

}  // namespace studio
