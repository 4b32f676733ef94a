#include "ui/BranchTracePlot.h"

#include <qcustomplot.h>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QToolTip>
#include <QVBoxLayout>

namespace studio {

namespace {
const QColor kColours[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28)};
}

BranchTracePlot::BranchTracePlot(QWidget* parent) : QWidget(parent) {
  m_layer = new QSpinBox(this);
  m_head = new QSpinBox(this);
  m_layer->setPrefix(tr("layer "));
  m_head->setPrefix(tr("head "));
  m_layer->setToolTip(tr("The layer whose head is plotted"));
  m_head->setToolTip(tr("The head whose dt and ‖h‖ are plotted"));
  connect(m_layer, &QSpinBox::valueChanged, this, &BranchTracePlot::redraw);
  connect(m_head, &QSpinBox::valueChanged, this, &BranchTracePlot::redraw);
  auto* controls = new QHBoxLayout;
  controls->addWidget(m_layer);
  controls->addWidget(m_head);
  controls->addStretch(1);

  m_plot = new QCustomPlot(this);
  m_plot->setMinimumHeight(300);
  m_plot->plotLayout()->clear();
  m_dtRect = new QCPAxisRect(m_plot);
  m_normRect = new QCPAxisRect(m_plot);
  m_plot->plotLayout()->addElement(0, 0, m_dtRect);
  m_plot->plotLayout()->addElement(1, 0, m_normRect);
  auto* group = new QCPMarginGroup(m_plot);
  m_dtRect->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  m_normRect->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  m_dtRect->axis(QCPAxis::atLeft)->setLabel(tr("dt (step size)"));
  m_normRect->axis(QCPAxis::atLeft)->setLabel(tr("‖h‖ (SSM state norm)"));
  m_normRect->axis(QCPAxis::atBottom)->setLabel(tr("token position"));
  m_dtRect->axis(QCPAxis::atBottom)->setTickLabels(false);
  connect(m_dtRect->axis(QCPAxis::atBottom), qOverload<const QCPRange&>(&QCPAxis::rangeChanged), m_normRect->axis(QCPAxis::atBottom),
          qOverload<const QCPRange&>(&QCPAxis::setRange));
  auto* legend = new QCPLegend;
  m_dtRect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer(QStringLiteral("legend"));
  legend->setBrush(QColor(255, 255, 255, 220));
  m_plot->legend = legend;
  m_plot->setMouseTracking(true);
  connect(m_plot, &QCustomPlot::mouseMove, this, &BranchTracePlot::onMouseMove);

  m_hint = new QLabel(tr("Select two snapshots and press Compare to overlay their branches' dt and ‖h‖ from where they part."), this);
  m_hint->setWordWrap(true);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(m_hint);
  layout->addWidget(m_plot, 1);
  clear();
}

void BranchTracePlot::clear() {
  m_traces = BranchTraces{};
  redraw();
}

void BranchTracePlot::setTraces(const BranchTraces& traces) {
  m_traces = traces;
  const qint64 L = traces.traces.isEmpty() ? 1 : traces.traces[0].layers, H = traces.traces.isEmpty() ? 1 : traces.traces[0].heads;
  const QSignalBlocker a(m_layer), b(m_head);
  m_layer->setRange(0, int(L - 1));
  m_head->setRange(0, int(H - 1));
  m_layer->setValue(traces.focusLayer);  // where the two ends differ most
  m_head->setValue(traces.focusHead);
  redraw();
}

void BranchTracePlot::setHead(int layer, int head) {
  const QSignalBlocker a(m_layer), b(m_head);
  m_layer->setValue(layer);
  m_head->setValue(head);
  redraw();
}

float BranchTracePlot::dtAt(const BranchTrace& t, qint64 row) const {
  return t.dt[int((row * t.layers + m_layer->value()) * t.heads + m_head->value())];
}
float BranchTracePlot::normAt(const BranchTrace& t, qint64 row) const {
  return t.stateNorm[int((row * t.layers + m_layer->value()) * t.heads + m_head->value())];
}

void BranchTracePlot::redraw() {
  m_plot->clearGraphs();
  m_plot->clearItems();
  const bool any = std::any_of(m_traces.traces.begin(), m_traces.traces.end(), [](const BranchTrace& t) { return t.count > 0; });
  m_hint->setVisible(!any);
  m_plot->setVisible(any);
  m_layer->setEnabled(any);
  m_head->setEnabled(any);
  if (!any) {
    m_plot->replot();
    return;
  }
  double lo = 1e300, hi = -1e300;
  for (int k = 0; k < m_traces.traces.size(); ++k) {
    const BranchTrace& t = m_traces.traces[k];
    QVector<double> x, dt, nrm;
    for (qint64 r = 0; r < t.count; ++r) {
      x << double(t.first + r);
      dt << dtAt(t, r);
      nrm << normAt(t, r);
    }
    if (t.count) {
      lo = std::min(lo, x.first());
      hi = std::max(hi, x.last());
    }
    const QPen pen(kColours[k % 2], 1.6);
    QCPGraph* g = m_plot->addGraph(m_dtRect->axis(QCPAxis::atBottom), m_dtRect->axis(QCPAxis::atLeft));
    g->setData(x, dt, true);
    g->setPen(pen);
    g->setName(QStringLiteral("%1 “%2”").arg(k == 0 ? QStringLiteral("a") : QStringLiteral("b"), t.label));
    QCPGraph* n = m_plot->addGraph(m_normRect->axis(QCPAxis::atBottom), m_normRect->axis(QCPAxis::atLeft));
    n->setData(x, nrm, true);
    n->setPen(pen);
    n->removeFromLegend();
  }
  if (hi < lo) hi = lo + 1;
  m_dtRect->axis(QCPAxis::atBottom)->setRange(lo - 0.5, std::max(hi, lo + 1) + 0.5);
  for (QCPAxisRect* r : {m_dtRect, m_normRect}) {
    bool found = false;
    QCPRange range;
    for (int gi = 0; gi < m_plot->graphCount(); ++gi)
      if (QCPGraph* g = m_plot->graph(gi); g->valueAxis() == r->axis(QCPAxis::atLeft)) {
        bool ok = false;
        const QCPRange gr = g->getValueRange(ok);
        if (!ok) continue;
        range = found ? QCPRange(std::min(range.lower, gr.lower), std::max(range.upper, gr.upper)) : gr;
        found = true;
      }
    if (found) r->axis(QCPAxis::atLeft)->setRange(range.lower - 0.05 * range.size() - 1e-12, range.upper + 0.08 * range.size() + 1e-12);
  }
  if (m_traces.fork != -1) {
    for (QCPAxisRect* r : {m_dtRect, m_normRect}) {
      auto* line = new QCPItemStraightLine(m_plot);
      line->setClipAxisRect(r);
      line->point1->setAxes(r->axis(QCPAxis::atBottom), r->axis(QCPAxis::atLeft));
      line->point2->setAxes(r->axis(QCPAxis::atBottom), r->axis(QCPAxis::atLeft));
      line->point1->setCoords(double(m_traces.forkPosition) - 0.5, 0);
      line->point2->setCoords(double(m_traces.forkPosition) - 0.5, 1);
      line->setPen(QPen(Qt::gray, 1, Qt::DashLine));
    }
    auto* label = new QCPItemText(m_plot);
    label->setClipAxisRect(m_dtRect);
    label->position->setAxes(m_dtRect->axis(QCPAxis::atBottom), m_dtRect->axis(QCPAxis::atLeft));
    label->position->setAxisRect(m_dtRect);
    label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    label->position->setCoords(double(m_traces.forkPosition), 0.02);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    label->setText(tr(" branches part at token %1").arg(m_traces.forkPosition));
    label->setColor(Qt::darkGray);
  }
  m_plot->replot();
}

QString BranchTracePlot::pointText(qint64 position) const {
  QStringList lines;
  lines << tr("token %1, layer %2, head %3").arg(position).arg(m_layer->value()).arg(m_head->value());
  for (int k = 0; k < m_traces.traces.size(); ++k) {
    const BranchTrace& t = m_traces.traces[k];
    const qint64 r = position - t.first;
    if (r < 0 || r >= t.count) continue;
    lines << tr("%1 “%2”: dt = %3, ‖h‖ = %4")
                 .arg(k == 0 ? QStringLiteral("a") : QStringLiteral("b"), t.label)
                 .arg(double(dtAt(t, r)), 0, 'g', 6)
                 .arg(double(normAt(t, r)), 0, 'g', 6);
  }
  return lines.size() > 1 ? lines.join(QLatin1Char('\n')) : QString();
}

void BranchTracePlot::onMouseMove(QMouseEvent* event) {
  if (!hasTraces()) return;
  QCPAxisRect* rect = m_dtRect->rect().contains(event->position().toPoint())     ? m_dtRect
                      : m_normRect->rect().contains(event->position().toPoint()) ? m_normRect
                                                                                 : nullptr;
  const QString text = rect ? pointText(std::llround(rect->axis(QCPAxis::atBottom)->pixelToCoord(event->position().x()))) : QString();
  if (text.isEmpty()) QToolTip::hideText();
  else QToolTip::showText(event->globalPosition().toPoint(), text, m_plot);
}

Table BranchTracePlot::table() const {
  Table t;
  t.columns = {QStringLiteral("branch"), QStringLiteral("label"), QStringLiteral("position"),  QStringLiteral("layer"),
               QStringLiteral("head"),   QStringLiteral("dt"),    QStringLiteral("state_norm")};
  for (int k = 0; k < m_traces.traces.size(); ++k) {
    const BranchTrace& tr = m_traces.traces[k];
    for (qint64 r = 0; r < tr.count; ++r)
      for (qint64 l = 0; l < tr.layers; ++l)
        for (qint64 h = 0; h < tr.heads; ++h) {
          const int i = int((r * tr.layers + l) * tr.heads + h);
          t.rows.push_back({k == 0 ? QStringLiteral("a") : QStringLiteral("b"), tr.label, QString::number(tr.first + r), QString::number(l),
                            QString::number(h), QString::number(double(tr.dt[i]), 'g', 9),
                            QString::number(double(tr.stateNorm[i]), 'g', 9)});
        }
  }
  return t;
}

}  // namespace studio
