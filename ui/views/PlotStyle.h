#pragma once
// The look the inspection plots share: colour scales, the token axis, hover markers.
#include <qcustomplot.h>
#include <QString>
#include <functional>

namespace studio {

QCPColorGradient sequentialGradient();  // viridis: dark = low, yellow = high (readable in grey too)
QCPColorGradient divergingGradient();   // blue - white - red around zero

// An x axis over sequence positions that labels ticks with the tokens there, as many as fit: every
// token when zoomed in, every k-th (k = 2, 5, 10, ...) further out.
class TokenTicker : public QCPAxisTicker {
 public:
  TokenTicker(QCPAxis* axis, std::function<QString(qint64)> label) : m_axis(axis), m_label(std::move(label)) {}

 protected:
  double getTickStep(const QCPRange& range) override;
  int getSubTickCount(double) override { return 0; }
  QString getTickLabel(double tick, const QLocale&, QChar, int) override;

 private:
  QCPAxis* m_axis;
  std::function<QString(qint64)> m_label;
};

// Common set-up: white background, named axes, zoom and pan along x only.
void setUpPlot(QCustomPlot* plot, const QString& xLabel, const QString& yLabel);
// A dashed vertical line that follows the linked hover (hidden for -1).
QCPItemStraightLine* addHoverLine(QCustomPlot* plot);
void placeHoverLine(QCPItemStraightLine* line, qint64 position);

}  // namespace studio
