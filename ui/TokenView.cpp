#include "ui/TokenView.h"

#include <QAbstractTextDocumentLayout>
#include <QHelpEvent>
#include <QMouseEvent>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>
#include <QToolTip>
#include <algorithm>

#include "ui/ProbabilityColors.h"
#include "ui/TokenTooltip.h"

namespace studio {

TokenView::TokenView(QWidget* parent) : QTextEdit(parent) {
  setReadOnly(true);
  setUndoRedoEnabled(false);  // an undo stack of every token would only cost memory
  setAcceptRichText(false);
  setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  QFont f = font();
  f.setPointSizeF(f.pointSizeF() * 1.15);
  setFont(f);
  setPlaceholderText(tr("Generated text appears here. Type a prompt above and press Generate (Ctrl+Enter)."));
  viewport()->setMouseTracking(true);
}

void TokenView::clearTranscript() {
  m_spans.clear();
  m_promptSpans.clear();
  m_promptStart = 0;
  setExtraSelections({});
  clear();
  setCurrentCharFormat(QTextCharFormat());
}

QTextCharFormat TokenView::promptFormat() const {
  QTextCharFormat f;
  f.setFontWeight(QFont::DemiBold);
  f.setForeground(palette().color(QPalette::Text));
  return f;
}

QTextCharFormat TokenView::tokenFormat(const TokenData& token, int index) const {
  QTextCharFormat f;
  f.setFontWeight(QFont::Normal);
  if (m_colour) {
    f.setBackground(probabilityColour(token.prob, index % 2 == 1));
    f.setForeground(probabilityTextColour());
  } else {
    f.setForeground(palette().color(QPalette::Text));
  }
  return f;
}

void TokenView::insertAtEnd(const QString& text, const QTextCharFormat& format) {
  QScrollBar* bar = verticalScrollBar();
  const bool follow = bar->value() >= bar->maximum() - 4;  // keep following only if the reader is at the end
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  c.insertText(text, format);
  if (follow) bar->setValue(bar->maximum());
}

void TokenView::appendPrompt(const QString& text) {
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  m_promptStart = c.position();
  insertAtEnd(text, promptFormat());
}

void TokenView::attachPromptTokens(const PromptTokens& tokens) {
  // prompt tokens come before any generated one
  if (!m_spans.isEmpty()) return;
  m_promptSpans.clear();
  const QString doc = document()->toPlainText();
  int at = m_promptStart;
  for (qsizetype i = 0; i < tokens.ids.size(); ++i) {
    const QString piece = tokens.pieces.value(i);
    if (doc.mid(at, piece.size()) != piece) break;
    Span s;
    s.start = at;
    s.end = at + int(piece.size());
    s.token.id = tokens.ids[i];
    s.token.piece = piece;
    s.token.prob = -1.f;
    s.token.position = tokens.first + i;
    s.token.index = -1;
    m_promptSpans.push_back(s);
    at = s.end;
  }
}

const TokenView::Span* TokenView::spanOfPosition(qint64 position) const {
  for (const QVector<Span>* v : {&m_promptSpans, &m_spans}) {
    auto it = std::lower_bound(v->begin(), v->end(), position, [](const Span& s, qint64 p) { return s.token.position < p; });
    if (it != v->end() && it->token.position == position) return &*it;
  }
  return nullptr;
}

void TokenView::highlightPosition(qint64 position) {
  QList<QTextEdit::ExtraSelection> sel;
  const Span* span = spanOfPosition(position);
  if (span && span->end > span->start) {
    QTextEdit::ExtraSelection e;
    e.cursor = QTextCursor(document());
    e.cursor.setPosition(span->start);
    e.cursor.setPosition(span->end, QTextCursor::KeepAnchor);
    e.format.setUnderlineStyle(QTextCharFormat::SingleUnderline);
    e.format.setUnderlineColor(QColor(220, 30, 30));
    e.format.setFontUnderline(true);
    e.format.setBackground(QColor(255, 200, 200));
    sel << e;
  }
  setExtraSelections(sel);
}

void TokenView::appendToken(const TokenData& token) {
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  Span s;
  s.start = c.position();
  insertAtEnd(token.piece, tokenFormat(token, int(token.index)));
  c.movePosition(QTextCursor::End);
  s.end = c.position();
  s.token = token;
  m_spans.push_back(std::move(s));
}

void TokenView::setColourByProbability(bool on) {
  if (on == m_colour) return;
  m_colour = on;
  // the only whole-document pass: recolour every token once
  QTextCursor c(document());
  c.beginEditBlock();
  for (int i = 0; i < m_spans.size(); ++i) {
    const Span& s = m_spans[i];
    if (s.end <= s.start) continue;
    c.setPosition(s.start);
    c.setPosition(s.end, QTextCursor::KeepAnchor);
    c.setCharFormat(tokenFormat(s.token, int(s.token.index)));
  }
  c.endEditBlock();
}

namespace {
// The span of `spans` (in document order) holding document position `pos`, or -1.
int spanHolding(const QVector<TokenView::Span>& spans, int pos) {
  if (pos < 0) return -1;
  auto it = std::upper_bound(spans.begin(), spans.end(), pos, [](int p, const TokenView::Span& s) { return p < s.start; });
  if (it == spans.begin()) return -1;
  --it;
  return pos < it->end ? int(it - spans.begin()) : -1;
}
}  // namespace

int TokenView::spanAt(const QPoint& viewportPos) const {
  const QPoint docPos = viewportPos + QPoint(horizontalScrollBar()->value(), verticalScrollBar()->value());
  return spanHolding(m_spans, document()->documentLayout()->hitTest(docPos, Qt::ExactHit));
}

const TokenView::Span* TokenView::tokenAt(const QPoint& viewportPos) const {
  const QPoint docPos = viewportPos + QPoint(horizontalScrollBar()->value(), verticalScrollBar()->value());
  const int pos = document()->documentLayout()->hitTest(docPos, Qt::ExactHit);
  if (int i = spanHolding(m_spans, pos); i >= 0) return &m_spans[i];
  if (int i = spanHolding(m_promptSpans, pos); i >= 0) return &m_promptSpans[i];
  return nullptr;
}

QRect TokenView::spanRect(int index) const {
  if (index < 0 || index >= m_spans.size()) return {};
  return rectOf(m_spans[index]);
}

QRect TokenView::rectOf(const Span& span) const {
  QTextCursor c(document());
  c.setPosition(span.start);
  const QRect first = cursorRect(c);
  c.setPosition(span.end);
  const QRect last = cursorRect(c);
  if (first.top() == last.top()) return first.united(last);
  return first;  // wraps a line: the start is where the eye is
}

void TokenView::showTokenTooltip(int index) {
  if (index < 0 || index >= m_spans.size()) return;
  const QRect r = spanRect(index);
  QToolTip::showText(viewport()->mapToGlobal(r.bottomLeft()), tokenTooltipHtml(m_spans[index].token), viewport(), r);
}

bool TokenView::viewportEvent(QEvent* event) {
  auto hoverAt = [this](qint64 pos) {
    if (pos == m_hovered) return;
    m_hovered = pos;
    emit tokenHovered(pos);
  };
  if (event->type() == QEvent::MouseMove) {
    const Span* s = tokenAt(static_cast<QMouseEvent*>(event)->position().toPoint());
    hoverAt(s ? s->token.position : -1);
  } else if (event->type() == QEvent::Leave) {
    hoverAt(-1);
  } else if (event->type() == QEvent::MouseButtonPress) {
    m_pressAt = static_cast<QMouseEvent*>(event)->position().toPoint();
  } else if (event->type() == QEvent::MouseButtonRelease) {
    // a click, not the end of a text selection
    const QPoint at = static_cast<QMouseEvent*>(event)->position().toPoint();
    if ((at - m_pressAt).manhattanLength() < 4 && static_cast<QMouseEvent*>(event)->button() == Qt::LeftButton) {
      if (const Span* s = tokenAt(at)) emit tokenClicked(s->token.position);
    }
  }
  if (event->type() == QEvent::ToolTip) {
    const auto* help = static_cast<QHelpEvent*>(event);
    const Span* span = tokenAt(help->pos());
    if (!span) {
      QToolTip::hideText();
      event->ignore();
      return true;
    }
    QToolTip::showText(help->globalPos(), tokenTooltipHtml(span->token), viewport(), rectOf(*span));
    return true;
  }
  return QTextEdit::viewportEvent(event);
}

}  // namespace studio
