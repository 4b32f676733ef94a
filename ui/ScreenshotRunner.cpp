#include "ui/ScreenshotRunner.h"

#include <QApplication>
#include <QDockWidget>
#include <QFileInfo>
#include <QLabel>
#include <QPainter>
#include <QSaveFile>
#include <QTextCursor>
#include <QToolTip>
#include <cstdio>

#include "ui/MainWindow.h"
#include "ui/SamplingPanel.h"
#include "ui/SnapshotPanel.h"
#include "ui/TokenTooltip.h"
#include "ui/TokenView.h"
#include "ui/views/InspectorView.h"

namespace studio {

namespace {
constexpr int kTimeoutMs = 10 * 60 * 1000;  // a large model on a slow CPU still finishes; a hang does not

void warn(const QString& s) { std::fprintf(stderr, "mamba-studio: %s\n", qPrintable(s)); }

// Tooltips are separate windows that grab() does not see; draw the same card into the image instead.
void paintHoverCard(QImage& image, MainWindow* window, QWidget* target, int index) {
  TokenView* view = window->tokenView();
  if (target != view && !target->isAncestorOf(view)) {
    warn(QStringLiteral("--hover-token: the captured view does not show the tokens"));
    return;
  }
  if (index >= view->tokenCount()) {
    warn(QStringLiteral("--hover-token %1: only %2 tokens were generated").arg(index).arg(view->tokenCount()));
    return;
  }
  QTextCursor c(view->document());
  c.setPosition(view->spans()[index].start);
  view->setTextCursor(c);
  view->ensureCursorVisible();
  QApplication::processEvents();
  QApplication::sendPostedEvents();
  // re-grab: scrolling may have moved the text
  image = target->grab().toImage();

  QLabel card;
  card.setWindowFlags(Qt::ToolTip);
  card.setPalette(QToolTip::palette());
  card.setFont(QToolTip::font());
  card.setFrameStyle(QFrame::Box | QFrame::Plain);
  card.setMargin(4);
  card.setText(tokenTooltipHtml(view->spans()[index].token));
  card.adjustSize();
  const QImage cardImage = card.grab().toImage();

  const QRect span = view->spanRect(index);
  QWidget* vp = view->viewport();
  QPoint at = vp->mapTo(target, span.bottomLeft() + QPoint(0, 4));
  at.setX(std::clamp(at.x(), 0, std::max(0, image.width() - cardImage.width())));
  if (at.y() + cardImage.height() > image.height()) at.setY(std::max(0, vp->mapTo(target, span.topLeft()).y() - cardImage.height() - 4));
  QPainter p(&image);
  // outline the hovered token as the pointer would mark it
  p.setPen(QPen(QColor(0x30, 0x30, 0x30), 1, Qt::DashLine));
  p.drawRect(QRect(vp->mapTo(target, span.topLeft()), span.size()).adjusted(-1, -1, 0, 0));
  p.drawImage(at, cardImage);
}
}  // namespace

ScreenshotRunner::ScreenshotRunner(MainWindow* window, StudioOptions options, QObject* parent)
    : QObject(parent), m_window(window), m_options(std::move(options)) {
  connect(m_window, &MainWindow::modelLoaded, this, &ScreenshotRunner::onModelLoaded);
  connect(m_window, &MainWindow::modelLoadFailed, this, &ScreenshotRunner::onModelLoadFailed);
  connect(m_window, &MainWindow::generationFinished, this, &ScreenshotRunner::onGenerationDone);
  connect(m_window, &MainWindow::generationFailed, this, &ScreenshotRunner::onGenerationFailed);
  m_timeout.setSingleShot(true);
  m_timeout.setInterval(kTimeoutMs);
  connect(&m_timeout, &QTimer::timeout, this, [this] {
    warn(QStringLiteral("timed out waiting for the model or the generation"));
    finish(2);
  });
}

void ScreenshotRunner::start() {
  if (!m_window->view(m_options.view)) {
    warn(QStringLiteral("unknown --view '%1' (known: %2)").arg(m_options.view, m_window->viewNames().join(QStringLiteral(", "))));
    QTimer::singleShot(0, this, [this] { finish(2); });
    return;
  }
  // An inspection view is shown from the start (so it collects what streams), floating at the capture size.
  m_window->presentView(m_options.view, m_options.size.isValid() ? m_options.size : QSize(1400, 820));
  m_timeout.start();
}

void ScreenshotRunner::onModelLoaded() {
  if (m_done) return;
  if (m_options.generate <= 0) {
    captureSoon();
    return;
  }
  m_window->setPrompt(m_options.prompt);
  SamplingSettings s = m_window->samplingPanel()->settings();
  s.maxNewTokens = m_options.generate;
  s.seed = m_options.seed.value_or(1);  // reproducible pictures unless asked otherwise
  s.randomSeed = false;
  m_window->samplingPanel()->setSettings(s);
  m_window->generate();
}

void ScreenshotRunner::onModelLoadFailed(const QString& dir, const QString& error) {
  if (m_done) return;
  warn(QStringLiteral("could not load %1: %2").arg(dir, error));
  m_failed = true;
  captureSoon();
}

void ScreenshotRunner::onGenerationDone(const GenerationStats& stats) {
  if (m_done || m_demo) return;
  std::fprintf(stderr, "mamba-studio: %lld prompt tokens in %.3f s, %lld new tokens at %.1f tok/s (%s)\n",
               static_cast<long long>(stats.promptTokens), stats.prefillSeconds, static_cast<long long>(stats.newTokens),
               stats.tokensPerSecond, qPrintable(stats.stopReason));
  if (m_options.snapshotDemo) {
    m_demo = true;
    SnapshotPanel* panel = m_window->snapshotPanel();
    connect(panel, &SnapshotPanel::taskFinished, this, &ScreenshotRunner::captureSoon, Qt::SingleShotConnection);
    connect(
        panel, &SnapshotPanel::taskFailed, this,
        [this](const QString& error) {
          warn(QStringLiteral("snapshot demo failed: %1").arg(error));
          m_failed = true;
          captureSoon();
        },
        Qt::SingleShotConnection);
    panel->runDemo(m_options.generate);
    return;
  }
  captureSoon();
}

void ScreenshotRunner::onGenerationFailed(const QString& error) {
  if (m_done) return;
  warn(QStringLiteral("generation failed: %1").arg(error));
  m_failed = true;
  captureSoon();
}

void ScreenshotRunner::captureSoon() {
  // An inspection view may first have work to do on the engine's thread (the SSD matrix): capture once it is drawn.
  if (InspectorView* v = m_window->inspectorView(m_options.view); v && !m_failed && !m_prepared) {
    m_prepared = true;
    connect(v, &InspectorView::captureReady, this, &ScreenshotRunner::captureSoon, Qt::QueuedConnection);
    if (v->prepareCapture(m_options.viewOptions)) return;
  }
  // let queued token and probe signals, the views' throttled refreshes, layouts and repaints settle first
  QTimer::singleShot(400, this, &ScreenshotRunner::capture);
}

QImage ScreenshotRunner::render(MainWindow* window, const QString& viewName, int hoverToken, QString* error) {
  QWidget* target = window->view(viewName);
  if (!target) {
    *error = QStringLiteral("unknown view '%1'").arg(viewName);
    return {};
  }
  // the Snapshots panel is captured floating at the window's size, not squeezed beside the other docks
  if (qobject_cast<SnapshotPanel*>(target))
    for (QWidget* w = target; w && w != window; w = w->parentWidget())
      if (auto* dock = qobject_cast<QDockWidget*>(w); dock && !dock->isFloating()) {
        dock->setFloating(true);
        dock->resize(window->size());
      }
  QApplication::processEvents();
  QApplication::sendPostedEvents();
  QApplication::processEvents();
  QImage image = target->grab().toImage();
  if (hoverToken >= 0) paintHoverCard(image, window, target, hoverToken);
  return image;
}

void ScreenshotRunner::capture() {
  if (m_done) return;
  QString error;
  const QImage image = render(m_window, m_options.view, m_options.hoverToken, &error);
  if (image.isNull()) {
    warn(error.isEmpty() ? QStringLiteral("nothing to render") : error);
    finish(2);
    return;
  }
  // Atomic, as every file the app writes: the old capture stays whole if this one cannot be written.
  QSaveFile out(m_options.screenshot);
  if (!out.open(QIODevice::WriteOnly) || !image.save(&out, "PNG") || !out.flush() || !out.commit()) {
    warn(QStringLiteral("could not write %1: %2").arg(m_options.screenshot, out.errorString()));
    finish(2);
    return;
  }
  std::fprintf(stderr, "mamba-studio: wrote %s (%dx%d)\n", qPrintable(QFileInfo(m_options.screenshot).absoluteFilePath()), image.width(),
               image.height());
  finish(m_failed ? 1 : 0);
}

void ScreenshotRunner::finish(int code) {
  if (m_done) return;
  m_done = true;
  m_timeout.stop();
  QCoreApplication::exit(code);
}

}  // namespace studio
