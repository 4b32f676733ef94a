#pragma once
// ||h_a - h_b|| per layer and head between two snapshots, as a heatmap (layer up, head across) with its
// colour scale; hovering a cell tells the exact values. Shown by the snapshot-diff view (ui/views/).
#include <QWidget>

#include "ui/SnapshotTypes.h"
#include "ui/views/InspectorView.h"

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QLabel;

namespace studio {

class SnapshotDiffPlot : public QWidget {
  Q_OBJECT

 public:
  explicit SnapshotDiffPlot(QWidget* parent = nullptr);

  void setDiff(const SnapshotDiff& diff);
  void clear();
  bool hasDiff() const { return m_diff.layers > 0; }
  const SnapshotDiff& diff() const { return m_diff; }
  QCustomPlot* plot() const { return m_plot; }
  // The hover text of a cell (what the tooltip shows), or "" outside the map.
  QString cellText(int layer, int head) const;
  Table table() const;  // the plotted numbers, for CSV

 private:
  void onMouseMove(QMouseEvent* event);

  QCustomPlot* m_plot = nullptr;
  QCPColorMap* m_map = nullptr;
  QCPColorScale* m_scale = nullptr;
  QLabel* m_hint = nullptr;
  SnapshotDiff m_diff;
};

}  // namespace studio
