#include "ProbabilityLegend.h"

#include <QPainter>

#include "ProbabilityColors.h"

namespace studio {

ProbabilityLegend::ProbabilityLegend(QWidget* parent) : QWidget(parent) {
  setToolTip(tr("Token colour: the model's probability of the token it produced (0 to 1)."));
}

QSize ProbabilityLegend::sizeHint() const {
  const QFontMetrics fm(font());
  return {fm.horizontalAdvance(QStringLiteral("p 0  1")) + 90, fm.height() + 4};
}

void ProbabilityLegend::paintEvent(QPaintEvent*) {
  QPainter p(this);
  const QFontMetrics fm(font());
  const int labelW = fm.horizontalAdvance(QStringLiteral("p 0 "));
  const int endW = fm.horizontalAdvance(QStringLiteral(" 1"));
  const QRect bar(labelW, 3, width() - labelW - endW, height() - 6);
  p.setPen(palette().color(QPalette::WindowText));
  p.drawText(QRect(0, 0, labelW, height()), Qt::AlignVCenter | Qt::AlignLeft, QStringLiteral("p 0"));
  p.drawText(QRect(bar.right() + 1, 0, endW, height()), Qt::AlignVCenter | Qt::AlignRight, QStringLiteral("1"));
  const int steps = std::max(1, bar.width());
  for (int x = 0; x < steps; ++x) p.fillRect(bar.left() + x, bar.top(), 1, bar.height(), probabilityColour(double(x) / std::max(1, steps - 1)));
  p.setPen(palette().color(QPalette::Mid));
  p.drawRect(bar.adjusted(0, 0, -1, -1));
}

}  // namespace studio
