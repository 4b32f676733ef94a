#include "ui/ProbabilityLegend.h"

#include <QPainter>

#include "ui/ProbabilityColors.h"

namespace studio {

namespace {
const double kTicks[] = {0.01, 0.1};
}

ProbabilityLegend::ProbabilityLegend(QWidget* parent) : QWidget(parent) {
  setToolTip(tr("Token colour: the probability the model gave the token it produced, on a log scale from %1 to 1.").arg(kMinProbability));
}

QSize ProbabilityLegend::sizeHint() const {
  const QFontMetrics fm(font());
  return {fm.horizontalAdvance(QStringLiteral("p ≤0.001  1")) + 120, fm.height() + 4};
}

void ProbabilityLegend::paintEvent(QPaintEvent*) {
  QPainter p(this);
  const QFontMetrics fm(font());
  const QString low = QStringLiteral("p ≤%1 ").arg(kMinProbability);
  const int labelW = fm.horizontalAdvance(low);
  const int endW = fm.horizontalAdvance(QStringLiteral(" 1"));
  const QRect bar(labelW, 3, width() - labelW - endW, height() - 6);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(0, 0, labelW, height()), Qt::AlignVCenter | Qt::AlignLeft, low);
  p.drawText(QRect(bar.right() + 1, 0, endW, height()), Qt::AlignVCenter | Qt::AlignRight, QStringLiteral("1"));
  const int steps = std::max(1, bar.width());
  for (int x = 0; x < steps; ++x) p.fillRect(bar.left() + x, bar.top(), 1, bar.height(), scaleColour(double(x) / std::max(1, steps - 1)));
  // decade marks, so the log scale reads as one
  p.setPen(QColor(0x20, 0x20, 0x20, 110));
  for (double t : kTicks) {
    const int x = bar.left() + int(probabilityPosition(t) * (steps - 1));
    p.drawLine(x, bar.top() + bar.height() / 2, x, bar.bottom());
  }
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(bar.adjusted(0, 0, -1, -1));
}

}  // namespace studio
