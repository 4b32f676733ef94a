// The Memory view: how long each head keeps what it saw. A half-life per head (tokens until the state's
// share of a token halves) over the whole model, the heads of one layer sorted by it, their decay over
// lag for the current text, and the dt trace of the head picked.
#include <qcustomplot.h>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QSplitter>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/probe_stats.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotStyle.h"

namespace studio {

namespace {

QString tokensText(double v) { return std::isfinite(v) ? QString::number(v, 'g', 4) : QObject::tr("∞"); }

class MemoryView final : public InspectorView {
 public:
  MemoryView(InspectorContext* context, QWidget* parent) : InspectorView(context, parent) {
    QHBoxLayout* row = controlRow();
    m_layer = new QComboBox(this);
    m_layer->setObjectName(QStringLiteral("layerChoice"));
    m_maxLag = new QSpinBox(this);
    m_maxLag->setRange(8, 8192);
    m_maxLag->setValue(256);
    m_maxLag->setSuffix(tr(" tokens"));
    m_maxLag->setToolTip(tr("Longest lag of the decay curves (bounded by the text's length)"));
    row->addWidget(new QLabel(tr("Layer"), this));
    row->addWidget(m_layer);
    row->addWidget(new QLabel(tr("Max lag"), this));
    row->addWidget(m_maxLag);
    m_note = new QLabel(this);
    m_note->setText(
        tr("half-life = ln 2 / (−dt·A) per token, median over the text: how many tokens until a head keeps half of what it saw"));
    m_note->setStyleSheet(QStringLiteral("color: #555;"));
    m_note->setWordWrap(true);
    m_note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    row->addWidget(m_note, 1);

    m_map = makePlot(QStringLiteral("halfLifeMap"), tr("head"), tr("layer"));
    m_mapTitle = addTitle(m_map, tr("Half-life of every head"));
    m_colorMap = new QCPColorMap(m_map->xAxis, m_map->yAxis);
    m_colorMap->setInterpolate(false);
    m_scale = new QCPColorScale(m_map);
    m_map->plotLayout()->addElement(1, 1, m_scale);
    m_scale->setDataScaleType(QCPAxis::stLogarithmic);
    m_scale->axis()->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    m_scale->axis()->setLabel(tr("half-life (tokens, log)"));
    m_colorMap->setColorScale(m_scale);
    m_colorMap->setGradient(sequentialGradient());
    auto* group = new QCPMarginGroup(m_map);
    m_map->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    for (QCPAxis* a : {m_map->xAxis, m_map->yAxis}) {
      auto whole = QSharedPointer<QCPAxisTickerFixed>::create();
      whole->setTickStep(1.0);
      whole->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
      a->setTicker(whole);
    }
    m_selBox = new QCPItemRect(m_map);
    m_selBox->setPen(QPen(QColor(230, 30, 30), 2));

    m_bars = makePlot(QStringLiteral("halfLifeBars"), tr("head (sorted by half-life)"), tr("half-life (tokens)"));
    m_barsTitle = addTitle(m_bars, QString());
    m_barItems = new QCPBars(m_bars->xAxis, m_bars->yAxis);
    m_barItems->setWidth(0.8);
    m_barItems->setPen(Qt::NoPen);
    m_barItems->setBrush(QColor(0x31688e));
    m_barSel = new QCPBars(m_bars->xAxis, m_bars->yAxis);
    m_barSel->setWidth(0.8);
    m_barSel->setPen(Qt::NoPen);
    m_barSel->setBrush(QColor(230, 30, 30));
    setLogY(m_bars);

    m_curves = makePlot(QStringLiteral("decayCurves"), tr("lag (tokens)"), tr("share of the state left, exp(Σ dt·A)"));
    m_curvesTitle = addTitle(m_curves, QString());
    setLogY(m_curves);
    m_curves->xAxis->setScaleType(QCPAxis::stLogarithmic);
    m_curves->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    auto* half = new QCPItemStraightLine(m_curves);
    half->point1->setCoords(1, 0.5);
    half->point2->setCoords(2, 0.5);
    half->setPen(QPen(QColor(120, 120, 120), 1, Qt::DotLine));

    m_trace = makePlot(QStringLiteral("dtTrace"), tr("token"), tr("dt"));
    m_traceTitle = addTitle(m_trace, QString());
    m_trace->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_traceHover = addHoverLine(m_trace);

    auto* top = new QSplitter(Qt::Horizontal, this);
    top->addWidget(m_map);
    top->addWidget(m_bars);
    auto* bottom = new QSplitter(Qt::Horizontal, this);
    bottom->addWidget(m_curves);
    bottom->addWidget(m_trace);
    top->setSizes({700, 700});
    bottom->setSizes({560, 840});
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(top);
    split->addWidget(bottom);
    layout()->addWidget(split);

    m_timer.setSingleShot(true);
    m_timer.setInterval(300);
    connect(&m_timer, &QTimer::timeout, this, &MemoryView::refresh);
    connect(m_layer, &QComboBox::currentIndexChanged, this, [this] {
      m_head = -1;
      refresh();
    });
    connect(m_maxLag, &QSpinBox::valueChanged, this, [this] { m_timer.start(); });
    connect(context, &InspectorContext::modelChanged, this, &MemoryView::onModel);
    connect(context, &InspectorContext::sequenceReset, this, &MemoryView::refresh);
    connect(context, &InspectorContext::probesChanged, this, [this] {
      if (!m_timer.isActive()) m_timer.start();
    });
    connect(context, &InspectorContext::hoveredChanged, this, [this](qint64 pos) {
      placeHoverLine(m_traceHover, pos);
      m_trace->replot(QCustomPlot::rpQueuedReplot);
    });
    hookMouse();
    if (context->hasModel()) onModel();
    refresh();
  }

  QString name() const override { return QStringLiteral("memory"); }
  QString title() const override { return tr("Memory"); }
  bool needsProbes() const override { return true; }

  QList<Exportable> exportables() override {
    return {{QStringLiteral("half-life-map"), m_map, [this] { return halfLifeTable(); }},
            {QStringLiteral("half-life-bars"), m_bars, [this] { return halfLifeTable(layer()); }},
            {QStringLiteral("decay-over-lag"), m_curves, [this] { return curvesTable(); }},
            {QStringLiteral("dt-trace"), m_trace, [this] { return traceTable(); }}};
  }

 private:
  QCustomPlot* makePlot(const QString& name, const QString& x, const QString& y) {
    auto* p = new QCustomPlot(this);
    p->setObjectName(name);
    setUpPlot(p, x, y);
    p->setInteractions({});
    p->setMouseTracking(true);
    return p;
  }

  static QCPTextElement* addTitle(QCustomPlot* p, const QString& text) {
    auto* t = new QCPTextElement(p, text, QFont(p->font().family(), 9, QFont::Bold));
    p->plotLayout()->insertRow(0);
    p->plotLayout()->addElement(0, 0, t);
    return t;
  }

  static void setLogY(QCustomPlot* p) {
    p->yAxis->setScaleType(QCPAxis::stLogarithmic);
    p->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
  }

  qint64 layer() const { return std::max(0, m_layer->currentIndex()); }

  void onModel() {
    const QSignalBlocker b(m_layer);
    m_layer->clear();
    for (qint64 l = 0; l < context()->model().layers; ++l) m_layer->addItem(tr("layer %1").arg(l));
    m_head = -1;
    m_trace->xAxis->setTicker(
        QSharedPointer<QCPAxisTicker>(new TokenTicker(m_trace->xAxis, [this](qint64 pos) { return context()->tokenLabel(pos); })));
    m_trace->xAxis->setTickLabelRotation(-60);
    refresh();
  }

  void hookMouse() {
    connect(m_map, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
      const qint64 h = std::llround(m_map->xAxis->pixelToCoord(e->pos().x())), l = std::llround(m_map->yAxis->pixelToCoord(e->pos().y()));
      const mamba::ProbeFrames& f = context()->probes();
      if (h < 0 || h >= f.H || l < 0 || l >= f.L || m_halfLives.empty()) return QToolTip::hideText();
      QToolTip::showText(e->globalPosition().toPoint(),
                         tr("layer %1, head %2<br><b>half-life %3 tokens</b><br>click: show this head")
                             .arg(l)
                             .arg(h)
                             .arg(tokensText(m_halfLives[size_t(l * f.H + h)])),
                         m_map);
    });
    connect(m_map, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
      const qint64 h = std::llround(m_map->xAxis->pixelToCoord(e->pos().x())), l = std::llround(m_map->yAxis->pixelToCoord(e->pos().y()));
      if (h < 0 || h >= context()->probes().H || l < 0 || l >= context()->probes().L) return;
      const QSignalBlocker b(m_layer);
      m_layer->setCurrentIndex(int(l));
      m_head = h;
      refresh();
    });
    connect(m_bars, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
      const qint64 rank = std::llround(m_bars->xAxis->pixelToCoord(e->pos().x()));
      if (rank < 0 || rank >= qint64(m_order.size())) return QToolTip::hideText();
      const qint64 h = m_order[size_t(rank)];
      QToolTip::showText(e->globalPosition().toPoint(),
                         tr("layer %1, head %2<br><b>half-life %3 tokens</b><br>click: show this head")
                             .arg(layer())
                             .arg(h)
                             .arg(tokensText(m_memory[size_t(h)].half_life)),
                         m_bars);
    });
    connect(m_bars, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
      const qint64 rank = std::llround(m_bars->xAxis->pixelToCoord(e->pos().x()));
      if (rank < 0 || rank >= qint64(m_order.size())) return;
      m_head = m_order[size_t(rank)];
      refresh();
    });
    connect(m_curves, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
      const double lag = m_curves->xAxis->pixelToCoord(e->pos().x());
      const qint64 k = std::llround(lag);
      if (m_head < 0 || k < 1 || k > qint64(m_memory[size_t(m_head)].decay_at_lag.size())) return QToolTip::hideText();
      QToolTip::showText(e->globalPosition().toPoint(),
                         tr("head %1, lag %2 tokens<br><b>%3 of the state left</b> (median over the text)")
                             .arg(m_head)
                             .arg(k)
                             .arg(m_memory[size_t(m_head)].decay_at_lag[size_t(k - 1)], 0, 'g', 4),
                         m_curves);
    });
    connect(m_trace, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
      const mamba::ProbeFrames& f = context()->probes();
      const qint64 pos = std::llround(m_trace->xAxis->pixelToCoord(e->pos().x()));
      if (m_head < 0 || pos < f.first || pos >= f.first + f.count) {
        context()->hover(-1);
        return QToolTip::hideText();
      }
      context()->hover(pos);
      QToolTip::showText(e->globalPosition().toPoint(),
                         tr("token %1 “%2”<br>layer %3, head %4<br><b>dt = %5</b>")
                             .arg(pos)
                             .arg(context()->tokenLabel(pos, 24).toHtmlEscaped())
                             .arg(layer())
                             .arg(m_head)
                             .arg(f.dt[size_t(((pos - f.first) * f.L + layer()) * f.H + m_head)], 0, 'g', 6),
                         m_trace);
    });
  }

  void refresh() {
    const mamba::ProbeFrames& f = context()->probes();
    const qint64 L = std::max<qint64>(f.L, 1), H = std::max<qint64>(f.H, 1), l = layer();
    m_halfLives = f.count ? mamba::half_lives(f) : std::vector<double>();
    m_memory = f.count && l < f.L ? mamba::layer_memory(f, l, m_maxLag->value()) : std::vector<mamba::HeadMemory>();
    m_order.resize(m_memory.size());
    std::iota(m_order.begin(), m_order.end(), 0);
    std::stable_sort(m_order.begin(), m_order.end(),
                     [this](qint64 a, qint64 b) { return m_memory[size_t(a)].half_life > m_memory[size_t(b)].half_life; });
    if (m_head < 0 && !m_order.empty()) m_head = m_order.front();  // the longest memory first
    if (m_head >= qint64(m_memory.size())) m_head = -1;

    // the whole model: layer x head
    m_mapTitle->setText(f.count ? tr("Half-life of every head (%n token(s) of text)", nullptr, int(f.count))
                                : tr("Half-life of every head — no probes yet: generate some text"));
    auto* d = m_colorMap->data();
    d->setSize(int(H), int(L));
    d->setRange(QCPRange(0, double(std::max<qint64>(H, 2) - 1)), QCPRange(0, double(std::max<qint64>(L, 2) - 1)));
    for (qint64 ll = 0; ll < L; ++ll)
      for (qint64 h = 0; h < H; ++h) {
        const double v = m_halfLives.empty() ? std::nan("") : m_halfLives[size_t(ll * H + h)];
        d->setCell(int(h), int(ll), std::isfinite(v) ? v : 1e9);
      }
    if (!m_halfLives.empty()) m_colorMap->rescaleDataRange(true);
    m_map->xAxis->setRange(-0.5, double(H) - 0.5);
    m_map->yAxis->setRange(-0.5, double(L) - 0.5);
    m_selBox->setVisible(m_head >= 0);
    m_selBox->topLeft->setCoords(double(m_head) - 0.5, double(l) + 0.5);
    m_selBox->bottomRight->setCoords(double(m_head) + 0.5, double(l) - 0.5);

    // the chosen layer's heads, sorted
    m_barsTitle->setText(tr("Layer %1: heads by half-life (longest memory left)").arg(l));
    QVector<double> x, y, xs, ys;
    QVector<QString> labels;
    for (size_t r = 0; r < m_order.size(); ++r) {
      const double v = m_memory[size_t(m_order[r])].half_life;
      (m_order[r] == m_head ? xs : x).push_back(double(r));
      (m_order[r] == m_head ? ys : y).push_back(std::isfinite(v) ? v : 1e9);
      labels.push_back(QStringLiteral("h%1").arg(m_order[r]));
    }
    m_barItems->setData(x, y);
    m_barSel->setData(xs, ys);
    auto text = QSharedPointer<QCPAxisTickerText>::create();
    for (int r = 0; r < labels.size(); ++r) text->addTick(r, labels[r]);
    m_bars->xAxis->setTicker(text);
    m_bars->xAxis->setTickLabelRotation(labels.size() > 16 ? -90 : 0);
    m_bars->xAxis->setRange(-0.7, double(std::max<qsizetype>(labels.size(), 1)) - 0.3);
    m_bars->yAxis->rescale();
    m_bars->yAxis->setRange(std::max(0.1, m_bars->yAxis->range().lower / 2), m_bars->yAxis->range().upper * 2);

    // decay over lag
    m_curves->clearGraphs();
    m_curvesTitle->setText(m_head >= 0 ? tr("Layer %1: decay over lag (red: head %2)").arg(l).arg(m_head) : tr("Decay over lag"));
    for (size_t r = 0; r < m_order.size(); ++r) {
      const mamba::HeadMemory& hm = m_memory[size_t(m_order[r])];
      QVector<double> kx, ky;
      for (size_t k = 0; k < hm.decay_at_lag.size(); ++k) {
        kx.push_back(double(k + 1));
        ky.push_back(std::max(hm.decay_at_lag[k], 1e-30));
      }
      QCPGraph* g = m_curves->addGraph();
      const bool sel = hm.head == m_head;
      QColor c = sequentialGradient().color(double(r), QCPRange(0, double(std::max<size_t>(m_order.size(), 2) - 1)));
      c.setAlpha(sel ? 255 : 150);
      g->setPen(QPen(sel ? QColor(230, 30, 30) : c, sel ? 2.5 : 1.0));
      g->setData(kx, ky, true);
      g->setName(tr("head %1").arg(hm.head));
    }
    if (m_head >= 0)
      m_curves->graph(int(std::find(m_order.begin(), m_order.end(), m_head) - m_order.begin()))->setLayer(QStringLiteral("overlay"));
    m_curves->xAxis->setRange(1, std::max(2.0, double(m_memory.empty() ? 2 : m_memory[0].decay_at_lag.size())));
    m_curves->yAxis->setRange(1e-4, 1.2);

    // the chosen head's dt
    m_trace->clearGraphs();
    m_traceTitle->setText(
        m_head >= 0
            ? tr("dt of layer %1, head %2 (half-life %3 tokens)").arg(l).arg(m_head).arg(tokensText(m_memory[size_t(m_head)].half_life))
            : tr("dt of the head picked above"));
    if (m_head >= 0 && f.count) {
      QVector<double> px(f.count), py(f.count);
      for (qint64 t = 0; t < f.count; ++t) {
        px[t] = double(f.first + t);
        py[t] = f.dt[size_t((t * f.L + l) * f.H + m_head)];
      }
      QCPGraph* g = m_trace->addGraph();
      g->setPen(QPen(QColor(0x31688e), 1.6));
      g->setData(px, py, true);
      m_trace->rescaleAxes();
      m_trace->xAxis->setRange(double(f.first) - 0.5, double(f.first + f.count) - 0.5);
      m_trace->yAxis->scaleRange(1.15, m_trace->yAxis->range().center());
    }
    for (QCustomPlot* p : {m_map, m_bars, m_curves, m_trace}) p->replot(QCustomPlot::rpQueuedReplot);
  }

  Table halfLifeTable(qint64 onlyLayer = -1) const {
    const mamba::ProbeFrames& f = context()->probes();
    Table t;
    t.columns = {QStringLiteral("layer"), QStringLiteral("head"), QStringLiteral("half_life_tokens")};
    if (m_halfLives.empty()) return t;
    for (qint64 l = 0; l < f.L; ++l)
      for (qint64 h = 0; h < f.H; ++h)
        if (onlyLayer < 0 || l == onlyLayer)
          t.rows.push_back({QString::number(l), QString::number(h), QString::number(m_halfLives[size_t(l * f.H + h)], 'g', 9)});
    return t;
  }

  Table curvesTable() const {
    Table t;
    t.columns = {QStringLiteral("lag_tokens")};
    for (const auto& hm : m_memory) t.columns << QStringLiteral("layer%1_head%2").arg(hm.layer).arg(hm.head);
    const size_t n = m_memory.empty() ? 0 : m_memory[0].decay_at_lag.size();
    for (size_t k = 0; k < n; ++k) {
      QStringList row{QString::number(k + 1)};
      for (const auto& hm : m_memory) row << QString::number(hm.decay_at_lag[k], 'g', 9);
      t.rows.push_back(row);
    }
    return t;
  }

  Table traceTable() const {
    const mamba::ProbeFrames& f = context()->probes();
    Table t;
    t.columns = {QStringLiteral("position"), QStringLiteral("token_id"), QStringLiteral("token"),
                 QStringLiteral("layer"),    QStringLiteral("head"),     QStringLiteral("dt")};
    if (m_head < 0) return t;
    const auto& toks = context()->tokens();
    for (qint64 s = 0; s < f.count; ++s) {
      const qint64 pos = f.first + s;
      t.rows.push_back({QString::number(pos), pos < toks.size() ? QString::number(toks[pos].id) : QString(),
                        pos < toks.size() ? toks[pos].text : QString(), QString::number(layer()), QString::number(m_head),
                        QString::number(f.dt[size_t((s * f.L + layer()) * f.H + m_head)], 'g', 9)});
    }
    return t;
  }

  QComboBox* m_layer = nullptr;
  QSpinBox* m_maxLag = nullptr;
  QLabel* m_note = nullptr;
  QCustomPlot *m_map = nullptr, *m_bars = nullptr, *m_curves = nullptr, *m_trace = nullptr;
  QCPTextElement *m_mapTitle = nullptr, *m_barsTitle = nullptr, *m_curvesTitle = nullptr, *m_traceTitle = nullptr;
  QCPColorMap* m_colorMap = nullptr;
  QCPColorScale* m_scale = nullptr;
  QCPItemRect* m_selBox = nullptr;
  QCPBars *m_barItems = nullptr, *m_barSel = nullptr;
  QCPItemStraightLine* m_traceHover = nullptr;
  QTimer m_timer;
  std::vector<double> m_halfLives;          // (L, H)
  std::vector<mamba::HeadMemory> m_memory;  // the chosen layer's heads
  std::vector<qint64> m_order;              // heads by half-life, longest first
  qint64 m_head = -1;                       // the head picked
};

}  // namespace

InspectorView* makeMemoryView(InspectorContext* context, QWidget* parent) { return new MemoryView(context, parent); }

}  // namespace studio
