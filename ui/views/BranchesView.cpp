// The branches view: two branches of the snapshot tree side by side, their dt and ||h|| for one layer and
// head overlaid from where they part (the Snapshots panel's Compare, or an edit against its control).
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

#include "ui/BranchTracePlot.h"
#include "ui/EngineWorker.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"

namespace studio {

namespace {

class BranchesView final : public InspectorView {
 public:
  BranchesView(InspectorContext* context, QWidget* parent) : InspectorView(context, parent) {
    QHBoxLayout* row = controlRow();
    auto* note = new QLabel(tr("recomputed on the CPU along the snapshot tree, dt edits included"), this);
    note->setStyleSheet(QStringLiteral("color: #555;"));
    note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    row->addWidget(note, 1);
    m_plot = new BranchTracePlot(this);
    layout()->addWidget(m_plot);
    connect(context->worker(), &EngineWorker::branchTracesReady, m_plot, &BranchTracePlot::setTraces);
    connect(context, &InspectorContext::modelChanged, m_plot, &BranchTracePlot::clear);
  }
  QString name() const override { return QStringLiteral("branches"); }
  QString title() const override { return tr("Branches"); }
  QList<Exportable> exportables() override {
    return {{QStringLiteral("dt-and-h"), m_plot->plot(), [this] { return m_plot->table(); }, {}, {}}};
  }

 private:
  BranchTracePlot* m_plot;
};

}  // namespace

InspectorView* makeBranchesView(InspectorContext* context, QWidget* parent) { return new BranchesView(context, parent); }

}  // namespace studio
