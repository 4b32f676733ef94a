#pragma once
// Two branches of the snapshot tree side by side: dt and ||h|| of one layer and head against the token
// position, both branches overlaid from the snapshot where they part (a dashed line marks it). The
// traces come from the worker (recomputed on the CPU along the tree); hovering tells the exact values.
// Shown by the branches view (ui/views/).
#include <QWidget>

#include "ui/SnapshotTypes.h"
#include "ui/views/InspectorView.h"

class QCustomPlot;
class QCPAxisRect;
class QLabel;
class QSpinBox;

namespace studio {

class BranchTracePlot : public QWidget {
  Q_OBJECT

 public:
  explicit BranchTracePlot(QWidget* parent = nullptr);

  void setTraces(const BranchTraces& traces);
  void clear();
  bool hasTraces() const { return !m_traces.traces.isEmpty(); }
  const BranchTraces& traces() const { return m_traces; }
  void setHead(int layer, int head);
  QCustomPlot* plot() const { return m_plot; }
  QString pointText(qint64 position) const;  // what the hover shows at a position
  Table table() const;                       // every layer and head of both traces, for CSV

 private:
  void redraw();
  void onMouseMove(QMouseEvent* event);
  // value of trace `t` at its row `row` for the chosen layer and head
  float dtAt(const BranchTrace& t, qint64 row) const;
  float normAt(const BranchTrace& t, qint64 row) const;

  QCustomPlot* m_plot = nullptr;
  QCPAxisRect* m_dtRect = nullptr;
  QCPAxisRect* m_normRect = nullptr;
  QSpinBox* m_layer = nullptr;
  QSpinBox* m_head = nullptr;
  QLabel* m_hint = nullptr;
  BranchTraces m_traces;
};

}  // namespace studio
