#pragma once
// Errors shown inside the window (not a modal box): the app stays usable while the cause stays visible.
#include <QFrame>

class QLabel;

namespace studio {

class ErrorBanner : public QFrame {
  Q_OBJECT

 public:
  explicit ErrorBanner(QWidget* parent = nullptr);

  void showError(const QString& what, const QString& cause);
  QString message() const;  // what is shown, as plain text (tests)

 private:
  QLabel* m_text = nullptr;
  QString m_plain;
};

}  // namespace studio
