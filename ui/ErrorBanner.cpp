#include "ui/ErrorBanner.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QStyle>
#include <QToolButton>

namespace studio {

ErrorBanner::ErrorBanner(QWidget* parent) : QFrame(parent) {
  setObjectName(QStringLiteral("errorBanner"));
  // fixed light colours: the banner must read the same on light and dark palettes
  setStyleSheet(
      QStringLiteral("#errorBanner { background: #fde2e1; border: 1px solid #e0a3a0; border-radius: 4px; }"
                     "#errorBanner QLabel { color: #5c1512; }"));
  auto* icon = new QLabel(this);
  icon->setPixmap(style()->standardIcon(QStyle::SP_MessageBoxCritical).pixmap(20, 20));
  icon->setAlignment(Qt::AlignTop);
  m_text = new QLabel(this);
  m_text->setWordWrap(true);
  m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_text->setTextFormat(Qt::RichText);
  auto* close = new QToolButton(this);
  close->setAutoRaise(true);
  close->setIcon(style()->standardIcon(QStyle::SP_TitleBarCloseButton));
  close->setToolTip(tr("Dismiss"));
  connect(close, &QToolButton::clicked, this, &QWidget::hide);
  m_action = new QPushButton(this);
  m_action->setObjectName(QStringLiteral("errorAction"));
  m_action->hide();
  connect(m_action, &QPushButton::clicked, this, [this] {
    const auto run = m_run;  // the action may show another error, replacing m_run
    hide();
    if (run) run();
  });

  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(8, 6, 4, 6);
  layout->addWidget(icon, 0, Qt::AlignTop);
  layout->addWidget(m_text, 1);
  layout->addWidget(m_action, 0, Qt::AlignVCenter);
  layout->addWidget(close, 0, Qt::AlignTop);
  hide();
}

void ErrorBanner::showError(const QString& what, const QString& cause, const QString& actionText, std::function<void()> action) {
  m_run = std::move(action);
  m_action->setText(actionText);
  m_action->setVisible(!actionText.isEmpty() && m_run);
  m_plain = cause.isEmpty() ? what : what + QStringLiteral(": ") + cause;
  // causes come from the engine in lower case, ready to follow a colon; as a line of their own they start upper case
  QString line = cause;
  if (!line.isEmpty()) line[0] = line[0].toUpper();
  m_text->setText(QStringLiteral("<b>%1</b><br>%2").arg(what.toHtmlEscaped(), line.toHtmlEscaped()));
  show();
}

QString ErrorBanner::message() const { return isHidden() ? QString() : m_plain; }

}  // namespace studio
