// The snapshot-diff view: ||Δh|| per layer and head between the two snapshots the Snapshots panel
// compared last (ui/SnapshotPanel.h), as a heatmap with its colour scale and exact values on hover.
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

#include "ui/EngineWorker.h"
#include "ui/SnapshotDiffPlot.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"

namespace studio {

namespace {

class SnapshotDiffView final : public InspectorView {
 public:
  SnapshotDiffView(InspectorContext* context, QWidget* parent) : InspectorView(context, parent) {
    QHBoxLayout* row = controlRow();
    auto* note =
        new QLabel(tr("‖h_a − h_b‖ of every head's (P × N) SSM state; pick two snapshots in the Snapshots panel and press Diff"), this);
    note->setStyleSheet(QStringLiteral("color: #555;"));
    note->setWordWrap(true);
    note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    row->addWidget(note, 1);
    m_plot = new SnapshotDiffPlot(this);
    layout()->addWidget(m_plot);
    connect(context->worker(), &EngineWorker::snapshotDiffReady, m_plot, &SnapshotDiffPlot::setDiff);
    connect(context, &InspectorContext::modelChanged, m_plot, &SnapshotDiffPlot::clear);
  }
  QString name() const override { return QStringLiteral("snapshot-diff"); }
  QString title() const override { return tr("Snapshot diff"); }
  QList<Exportable> exportables() override {
    const SnapshotDiff& d = m_plot->diff();
    return {{QStringLiteral("delta-h"),
             m_plot->plot(),
             [this] { return m_plot->table(); },
             [this] {
               const QVector<float>& v = m_plot->diff().delta;
               return std::vector<double>(v.begin(), v.end());
             },
             {d.layers, d.heads}}};
  }
  SnapshotDiffPlot* plot() const { return m_plot; }

 private:
  SnapshotDiffPlot* m_plot;
};

}  // namespace

InspectorView* makeSnapshotDiffView(InspectorContext* context, QWidget* parent) { return new SnapshotDiffView(context, parent); }

}  // namespace studio
