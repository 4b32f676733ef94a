#pragma once
// The transcript: the prompt as typed, then generated tokens appended at the end as they arrive
// (no re-layout of what is already there), optionally tinted by probability, with a hover card per token.
#include <QTextCharFormat>
#include <QTextEdit>
#include <QVector>

#include "ui/EngineTypes.h"

namespace studio {

class TokenView : public QTextEdit {
  Q_OBJECT

 public:
  struct Span {
    int start = 0, end = 0;  // document positions of the token's text
    TokenData token;         // token.position: its place in the sequence; prob < 0 for prompt tokens
  };

  explicit TokenView(QWidget* parent = nullptr);

  void clearTranscript();
  void appendPrompt(const QString& text);
  // Marks the prompt's tokens inside the prompt text appended last, so they link like generated ones
  // (where the tokens' text does not spell the prompt exactly, the rest stays plain text).
  void attachPromptTokens(const PromptTokens& tokens);
  void appendToken(const TokenData& token);
  const Span* spanOfPosition(qint64 position) const;  // prompt or generated; null when no span holds it

  bool colourByProbability() const { return m_colour; }
  const QVector<Span>& spans() const { return m_spans; }  // the generated tokens
  int tokenCount() const { return int(m_spans.size()); }
  const QVector<Span>& promptSpans() const { return m_promptSpans; }
  // The generated token's span under a viewport point, or -1 (exposed for tests and the screenshot's hover card).
  int spanAt(const QPoint& viewportPos) const;
  // The token (prompt or generated) under a viewport point: its span, or null.
  const Span* tokenAt(const QPoint& viewportPos) const;
  QRect spanRect(int index) const;  // in viewport coordinates
  QRect rectOf(const Span& span) const;
  void showTokenTooltip(int index);

 public slots:
  void setColourByProbability(bool on);
  // Outlines the token at this sequence position (the linked hover of the inspection views); -1: none.
  void highlightPosition(qint64 position);

 signals:
  void tokenHovered(qint64 position);  // -1 when the pointer leaves the tokens
  void tokenClicked(qint64 position);

 protected:
  bool viewportEvent(QEvent* event) override;

 private:
  QTextCharFormat promptFormat() const;
  QTextCharFormat tokenFormat(const TokenData& token, int index) const;
  void insertAtEnd(const QString& text, const QTextCharFormat& format);

  QVector<Span> m_spans;        // generated tokens, in order
  QVector<Span> m_promptSpans;  // the last prompt's tokens, before them
  bool m_colour = true;
  int m_promptStart = 0;  // document position where the last prompt text begins
  qint64 m_hovered = -1;
  QPoint m_pressAt;
};

}  // namespace studio
