#pragma once
// A small colour bar that says what the token colours mean.
#include <QWidget>

namespace studio {

class ProbabilityLegend : public QWidget {
  Q_OBJECT

 public:
  explicit ProbabilityLegend(QWidget* parent = nullptr);
  QSize sizeHint() const override;

 protected:
  void paintEvent(QPaintEvent* event) override;
};

}  // namespace studio
