#include "ui/views/PlotStyle.h"

#include <cmath>

namespace studio {

QCPColorGradient sequentialGradient() {
  QCPColorGradient g;
  g.clearColorStops();
  const char* stops[] = {"#440154", "#482878", "#3e4a89", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"};
  for (int i = 0; i < 10; ++i) g.setColorStopAt(i / 9.0, QColor(QLatin1String(stops[i])));
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  return g;
}

QCPColorGradient divergingGradient() {
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0.0, QColor(0x2166ac));
  g.setColorStopAt(0.25, QColor(0x67a9cf));
  g.setColorStopAt(0.5, QColor(0xf7f7f7));
  g.setColorStopAt(0.75, QColor(0xef8a62));
  g.setColorStopAt(1.0, QColor(0xb2182b));
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  return g;
}

double TokenTicker::getTickStep(const QCPRange& range) {
  // labels are drawn rotated: each needs about a line height of axis length
  const double pixels = std::max(1, m_axis->axisRect() ? m_axis->axisRect()->width() : 600);
  const double perToken = pixels / std::max(1.0, range.size());
  const double need = QFontMetrics(m_axis->tickLabelFont()).height() * 1.3;
  const double raw = std::max(1.0, need / perToken);
  for (double s : {1.0, 2.0, 5.0})
    if (raw <= s) return s;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

QString TokenTicker::getTickLabel(double tick, const QLocale&, QChar, int) {
  const qint64 pos = qint64(std::llround(tick));
  const QString t = m_label(pos);
  return t.isEmpty() ? QString::number(pos) : t;
}

void setUpPlot(QCustomPlot* plot, const QString& xLabel, const QString& yLabel) {
  plot->setBackground(Qt::white);
  plot->xAxis->setLabel(xLabel);
  plot->yAxis->setLabel(yLabel);
  plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot->axisRect()->setRangeDrag(Qt::Horizontal);
  plot->axisRect()->setRangeZoom(Qt::Horizontal);
  plot->setMinimumSize(80, 50);
}

QCPItemStraightLine* addHoverLine(QCustomPlot* plot) {
  auto* line = new QCPItemStraightLine(plot);
  line->setPen(QPen(QColor(220, 30, 30), 1.5, Qt::DashLine));
  line->setVisible(false);
  line->setSelectable(false);
  return line;
}

void placeHoverLine(QCPItemStraightLine* line, qint64 position) {
  line->setVisible(position >= 0);
  if (position < 0) return;
  line->point1->setCoords(double(position), 0);
  line->point2->setCoords(double(position), 1);
}

}  // namespace studio
