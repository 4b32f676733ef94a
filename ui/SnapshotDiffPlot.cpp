#include "ui/SnapshotDiffPlot.h"

#include <qcustomplot.h>
#include <QLabel>
#include <QToolTip>
#include <QVBoxLayout>

#include "ui/views/PlotStyle.h"

namespace studio {

SnapshotDiffPlot::SnapshotDiffPlot(QWidget* parent) : QWidget(parent) {
  m_plot = new QCustomPlot(this);
  m_plot->setMinimumHeight(220);
  m_plot->plotLayout()->insertRow(0);
  m_plot->plotLayout()->addElement(0, 0,
                                   new QCPTextElement(m_plot, tr("‖Δh‖ per layer and head"), QFont(font().family(), 10, QFont::Bold)));
  m_plot->xAxis->setLabel(tr("head"));
  m_plot->yAxis->setLabel(tr("layer"));
  m_plot->axisRect()->setupFullAxesBox(true);
  m_map = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
  m_scale = new QCPColorScale(m_plot);
  m_plot->plotLayout()->addElement(1, 1, m_scale);
  m_scale->setType(QCPAxis::atRight);
  m_scale->axis()->setLabel(tr("‖h_a − h_b‖ (Frobenius)"));
  m_map->setColorScale(m_scale);
  m_map->setGradient(sequentialGradient());
  m_map->setInterpolate(false);
  auto* group = new QCPMarginGroup(m_plot);
  m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  m_plot->setMouseTracking(true);
  connect(m_plot, &QCustomPlot::mouseMove, this, &SnapshotDiffPlot::onMouseMove);

  m_hint = new QLabel(tr("Select two snapshots and press Diff to see how far apart their states are, per layer and head."), this);
  m_hint->setWordWrap(true);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(m_hint);
  layout->addWidget(m_plot, 1);
  clear();
}

void SnapshotDiffPlot::clear() {
  m_diff = SnapshotDiff{};
  m_map->data()->clear();
  m_plot->setVisible(false);
  m_hint->setVisible(true);
  m_plot->replot();
}

void SnapshotDiffPlot::setDiff(const SnapshotDiff& diff) {
  m_diff = diff;
  const int H = int(diff.heads), L = int(diff.layers);
  m_map->data()->setSize(H, L);
  m_map->data()->setRange(QCPRange(0, H - 1), QCPRange(0, L - 1));
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) m_map->data()->setCell(h, l, diff.delta[l * H + h]);
  m_map->rescaleDataRange(true);
  if (m_map->dataRange().size() == 0) m_map->setDataRange(QCPRange(m_map->dataRange().lower, m_map->dataRange().lower + 1));
  m_plot->xAxis->setRange(-0.5, H - 0.5);
  m_plot->yAxis->setRange(-0.5, L - 0.5);
  auto integerTicks = [](QCPAxis* axis, int n) {
    QSharedPointer<QCPAxisTickerFixed> t(new QCPAxisTickerFixed);
    t->setTickStep(n > 16 ? 4 : n > 8 ? 2 : 1);
    t->setScaleStrategy(QCPAxisTickerFixed::ssNone);
    axis->setTicker(t);
  };
  integerTicks(m_plot->xAxis, H);
  integerTicks(m_plot->yAxis, L);
  if (auto* title = qobject_cast<QCPTextElement*>(m_plot->plotLayout()->element(0, 0)))
    title->setText(tr("‖Δh‖ per layer and head: a = “%1”, b = “%2”").arg(diff.labelA, diff.labelB));
  m_hint->setVisible(false);
  m_plot->setVisible(true);
  m_plot->replot();
}

QString SnapshotDiffPlot::cellText(int layer, int head) const {
  if (layer < 0 || head < 0 || layer >= m_diff.layers || head >= m_diff.heads) return {};
  const int i = int(layer * m_diff.heads + head);
  return tr("layer %1, head %2\n‖h_a − h_b‖ = %3\n‖h_a‖ = %4 (%5)\n‖h_b‖ = %6 (%7)\nconv window of the layer: ‖Δ‖ = %8")
      .arg(layer)
      .arg(head)
      .arg(double(m_diff.delta[i]), 0, 'g', 6)
      .arg(double(m_diff.normA[i]), 0, 'g', 6)
      .arg(m_diff.labelA)
      .arg(double(m_diff.normB[i]), 0, 'g', 6)
      .arg(m_diff.labelB)
      .arg(double(m_diff.convDelta[layer]), 0, 'g', 6);
}

void SnapshotDiffPlot::onMouseMove(QMouseEvent* event) {
  if (!hasDiff()) return;
  const int head = int(std::lround(m_plot->xAxis->pixelToCoord(event->position().x())));
  const int layer = int(std::lround(m_plot->yAxis->pixelToCoord(event->position().y())));
  const QString text = m_plot->axisRect()->rect().contains(event->position().toPoint()) ? cellText(layer, head) : QString();
  if (text.isEmpty()) QToolTip::hideText();
  else QToolTip::showText(event->globalPosition().toPoint(), text, m_plot);
}

Table SnapshotDiffPlot::table() const {
  Table t;
  t.columns = {QStringLiteral("layer"),    QStringLiteral("head"),       QStringLiteral("delta_h"), QStringLiteral("norm_h_a"),
               QStringLiteral("norm_h_b"), QStringLiteral("conv_delta"), QStringLiteral("a"),       QStringLiteral("b")};
  for (qint64 l = 0; l < m_diff.layers; ++l)
    for (qint64 h = 0; h < m_diff.heads; ++h) {
      const int i = int(l * m_diff.heads + h);
      t.rows.push_back({QString::number(l), QString::number(h), QString::number(double(m_diff.delta[i]), 'g', 9),
                        QString::number(double(m_diff.normA[i]), 'g', 9), QString::number(double(m_diff.normB[i]), 'g', 9),
                        QString::number(double(m_diff.convDelta[int(l)]), 'g', 9), m_diff.labelA, m_diff.labelB});
    }
  return t;
}

}  // namespace studio
