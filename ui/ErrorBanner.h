#pragma once
// Errors shown inside the window (not a modal box): the app stays usable while the cause stays visible.
#include <QFrame>
#include <functional>

class QLabel;
class QPushButton;

namespace studio {

class ErrorBanner : public QFrame {
  Q_OBJECT

 public:
  explicit ErrorBanner(QWidget* parent = nullptr);

  // With `actionText`, a button beside the text runs `action` and dismisses the banner (e.g. a way around
  // the failure: "Open on the CPU" after the GPU ran out of memory).
  void showError(const QString& what, const QString& cause, const QString& actionText = {}, std::function<void()> action = {});
  QString message() const;                                // what is shown, as plain text (tests)
  QPushButton* actionButton() const { return m_action; }  // hidden when the error offers none

 private:
  QLabel* m_text = nullptr;
  QPushButton* m_action = nullptr;
  std::function<void()> m_run;
  QString m_plain;
};

}  // namespace studio
