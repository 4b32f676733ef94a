// The Dynamics view: per layer and token, dt and the state norm (or any probe) as heat strips, and chosen
// layers as lines below; everything fills in while text streams and follows the linked hover.
#include <qcustomplot.h>
#include <QCheckBox>
#include <QComboBox>
#include <QElapsedTimer>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QSplitter>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "engine/probe_stats.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotStyle.h"

namespace studio {

namespace {

using mamba::ProbeMetric;

const ProbeMetric kMetrics[] = {ProbeMetric::Dt, ProbeMetric::Decay, ProbeMetric::StateNorm, ProbeMetric::YNorm, ProbeMetric::ResidNorm};

QString metricText(ProbeMetric m) {
  switch (m) {
    case ProbeMetric::Dt: return QObject::tr("dt (step size)");
    case ProbeMetric::Decay: return QObject::tr("decay exp(dt·A)");
    case ProbeMetric::StateNorm: return QObject::tr("state norm ‖h‖");
    case ProbeMetric::YNorm: return QObject::tr("output norm ‖y‖");
    case ProbeMetric::ResidNorm: return QObject::tr("residual norm ‖r‖");
  }
  return {};
}

QString metricNote(ProbeMetric m) {
  switch (m) {
    case ProbeMetric::Dt:
      return QObject::tr(
          "dt: how far each token moves the state, after softplus and the time-step limit. Large dt: the token is written in strongly and "
          "the old state fades.");
    case ProbeMetric::Decay:
      return QObject::tr("exp(dt·A): the share of the head's state that survives this token. 1: kept; 0: forgotten.");
    case ProbeMetric::StateNorm:
      return QObject::tr("‖h‖: Frobenius norm of the head's state (head_dim × d_state) after the token: how much the head holds.");
    case ProbeMetric::YNorm: return QObject::tr("‖y‖: norm of the head's output before the gate (the scan's output plus D·x).");
    case ProbeMetric::ResidNorm: return QObject::tr("‖r‖: norm of the residual stream entering the layer.");
  }
  return {};
}

QComboBox* metricCombo(QWidget* parent, ProbeMetric initial) {
  auto* c = new QComboBox(parent);
  for (ProbeMetric m : kMetrics) c->addItem(metricText(m), int(m));
  c->setCurrentIndex(c->findData(int(initial)));
  c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  c->setMinimumContentsLength(6);  // the docks stay small when the window is
  return c;
}

ProbeMetric metricOf(const QComboBox* c) { return ProbeMetric(c->currentData().toInt()); }

QColor lineColour(int i) {
  static const QColor c[] = {QColor(0x1f77b4), QColor(0xd62728), QColor(0x2ca02c), QColor(0x9467bd), QColor(0xff7f0e),
                             QColor(0x8c564b), QColor(0xe377c2), QColor(0x17becf), QColor(0x7f7f7f), QColor(0xbcbd22)};
  return c[i % 10];
}

class DynamicsView final : public InspectorView {
 public:
  DynamicsView(InspectorContext* context, QWidget* parent) : InspectorView(context, parent) {
    QHBoxLayout* row = controlRow();
    m_head = new QComboBox(this);
    m_head->setObjectName(QStringLiteral("headChoice"));
    m_head->setToolTip(tr("One head, or the mean or maximum over the heads of each layer"));
    m_head->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_head->setMinimumContentsLength(6);
    m_top = metricCombo(this, ProbeMetric::Dt);
    m_bottom = metricCombo(this, ProbeMetric::StateNorm);
    m_lineMetric = metricCombo(this, ProbeMetric::StateNorm);
    m_log = new QCheckBox(tr("Log scale"), this);
    m_log->setObjectName(QStringLiteral("logScale"));
    m_log->setToolTip(tr("Colour scales and the line plot's y axis on a logarithmic scale"));
    row->addWidget(new QLabel(tr("Heads"), this));
    row->addWidget(m_head);
    row->addSpacing(8);
    row->addWidget(new QLabel(tr("Upper strip"), this));
    row->addWidget(m_top);
    row->addWidget(new QLabel(tr("Lower strip"), this));
    row->addWidget(m_bottom);
    row->addWidget(m_log);
    row->addStretch(1);
    m_status = new QLabel(this);
    row->addWidget(m_status);

    auto* split = new QSplitter(Qt::Vertical, this);
    for (int i = 0; i < 2; ++i) {
      // each row: the plot, then a side panel as wide as the lines' layer list, so the x axes line up
      auto* rowWidget = new QWidget(this);
      auto* rl = new QHBoxLayout(rowWidget);
      rl->setContentsMargins(0, 0, 0, 0);
      rl->addWidget(makeMap(m_maps[i], i == 0 ? QStringLiteral("upperStrip") : QStringLiteral("lowerStrip")), 1);
      m_maps[i].note = new QLabel(rowWidget);
      m_maps[i].note->setWordWrap(true);
      m_maps[i].note->setFixedWidth(kSideWidth);
      m_maps[i].note->setAlignment(Qt::AlignTop | Qt::AlignLeft);
      m_maps[i].note->setStyleSheet(QStringLiteral("color: #444; padding-top: 24px;"));
      rl->addWidget(m_maps[i].note);
      split->addWidget(rowWidget);
    }
    auto* lines = new QWidget(this);
    auto* lh = new QHBoxLayout(lines);
    lh->setContentsMargins(0, 0, 0, 0);
    m_lines = new QCustomPlot(lines);
    m_lines->setObjectName(QStringLiteral("lines"));
    setUpPlot(m_lines, tr("token"), QString());
    m_lines->legend->setVisible(true);
    m_lines->legend->setFont(QFont(font().family(), 8));
    m_lines->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
    m_lineHover = addHoverLine(m_lines);
    // the same column as the strips' colour scales, so all three share one x scale on screen
    auto* gutter = new QCPLayoutElement(m_lines);
    m_lines->plotLayout()->addElement(0, 1, gutter);
    gutter->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    gutter->setMinimumSize(kScaleWidth, 10);
    gutter->setMaximumSize(kScaleWidth, QWIDGETSIZE_MAX);
    alignLeft(m_lines);
    hookMouse(m_lines, nullptr);
    lh->addWidget(m_lines, 1);
    auto* side = new QVBoxLayout;
    side->addWidget(new QLabel(tr("Lines"), lines));
    side->addWidget(m_lineMetric);
    m_layers = new QListWidget(lines);
    m_layers->setObjectName(QStringLiteral("layerList"));
    m_layers->setToolTip(tr("Layers drawn as lines"));
    m_layers->setMinimumHeight(30);
    m_lineMetric->setFixedWidth(kSideWidth);
    m_layers->setFixedWidth(kSideWidth);
    side->addWidget(m_layers, 1);
    lh->addLayout(side);
    split->addWidget(lines);
    split->setSizes({300, 300, 320});
    layout()->addWidget(split);

    for (QCustomPlot* p : plots()) {
      connect(p->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this, p](const QCPRange& r) { syncRange(p, r); });
      connect(p, &QCustomPlot::afterLayout, this, &DynamicsView::alignRightEdges);
    }
    auto refreshAll = [this] { refresh(); };
    connect(m_head, &QComboBox::currentIndexChanged, this, refreshAll);
    connect(m_top, &QComboBox::currentIndexChanged, this, refreshAll);
    connect(m_bottom, &QComboBox::currentIndexChanged, this, refreshAll);
    connect(m_lineMetric, &QComboBox::currentIndexChanged, this, refreshAll);
    connect(m_log, &QCheckBox::toggled, this, refreshAll);
    connect(m_layers, &QListWidget::itemChanged, this, refreshAll);
    m_timer.setSingleShot(true);
    m_timer.setInterval(kMinRefreshMs);  // streaming: a few redraws a second at most, whatever the token rate
    connect(&m_timer, &QTimer::timeout, this, &DynamicsView::refresh);

    connect(context, &InspectorContext::modelChanged, this, &DynamicsView::onModel);
    connect(context, &InspectorContext::sequenceReset, this, [this] {
      m_follow = true;
      refresh();
    });
    connect(context, &InspectorContext::probesChanged, this, [this] {
      if (!m_timer.isActive()) m_timer.start();
    });
    connect(context, &InspectorContext::tokensChanged, this, [this] {
      if (!m_timer.isActive()) m_timer.start();
    });
    connect(context, &InspectorContext::hoveredChanged, this, &DynamicsView::onHovered);
    connect(context, &InspectorContext::selectedChanged, this, [this](qint64 pos) { scrollTo(pos); });
    if (context->hasModel()) onModel();
    refresh();
  }

  QString name() const override { return QStringLiteral("dynamics"); }
  QString title() const override { return tr("Dynamics"); }
  bool needsProbes() const override { return true; }

  QList<Exportable> exportables() override {
    QList<Exportable> out;
    for (int i = 0; i < 2; ++i) {
      const QString what = i == 0 ? QStringLiteral("upper-strip") : QStringLiteral("lower-strip");
      out.push_back({what, m_maps[i].plot, [this, i] { return mapTable(i); }});
    }
    out.push_back({QStringLiteral("lines"), m_lines, [this] { return linesTable(); }});
    return out;
  }

 private:
  struct Map {
    QCustomPlot* plot = nullptr;
    QCPColorMap* map = nullptr;
    QCPColorScale* scale = nullptr;
    QCPTextElement* title = nullptr;
    QCPItemStraightLine* hover = nullptr;
    QLabel* note = nullptr;  // what the metric is
  };

  QList<QCustomPlot*> plots() const { return {m_maps[0].plot, m_maps[1].plot, m_lines}; }
  static constexpr int kMinRefreshMs = 100, kMaxRefreshMs = 2000;
  static constexpr int kScaleWidth = 110, kSideWidth = 170, kRightMargin = 12;
  // fixed left and right margins (room for the y labels) keep the stacked plots' x axes aligned
  static void alignLeft(QCustomPlot* p) {
    p->axisRect()->setAutoMargins(QCP::msTop | QCP::msBottom);
    p->axisRect()->setMargins(QMargins(70, 0, kRightMargin, 0));
  }

  // The strips share the line plot's token axis: when they are short, only the line plot labels it.
  void showStripAxes(bool all) {
    for (Map& m : m_maps) {
      const bool on = all || m.plot->height() >= 220;
      if (m.plot->xAxis->tickLabels() == on) continue;
      m.plot->xAxis->setTickLabels(on);
      m.plot->xAxis->setLabel(on ? tr("token") : QString());
      m.plot->replot(QCustomPlot::rpQueuedReplot);
    }
  }
  void prepareExport(bool exporting) override { showStripAxes(exporting); }

  // The colour scales' widths follow their labels: widen the right margins so the three axis rects end
  // at the same x, and a token sits at the same place in every plot.
  void alignRightEdges() {
    const QList<QCustomPlot*> ps = plots();
    int edge = INT_MAX;
    QVector<int> natural;
    for (QCustomPlot* p : ps) {
      natural << p->axisRect()->rect().right() + p->axisRect()->margins().right() - kRightMargin;
      edge = std::min(edge, natural.back());
    }
    for (qsizetype i = 0; i < ps.size(); ++i) {
      QMargins m = ps[i]->axisRect()->margins();
      const int want = kRightMargin + natural[i] - edge;
      if (m.right() == want) continue;
      m.setRight(want);
      ps[i]->axisRect()->setMargins(m);
      ps[i]->replot(QCustomPlot::rpQueuedReplot);
    }
  }
  void resizeEvent(QResizeEvent* e) override {
    InspectorView::resizeEvent(e);
    showStripAxes(false);
  }
  const QComboBox* mapMetric(int i) const { return i == 0 ? m_top : m_bottom; }

  QWidget* makeMap(Map& m, const QString& objectName) {
    m.plot = new QCustomPlot(this);
    m.plot->setObjectName(objectName);
    setUpPlot(m.plot, tr("token"), tr("layer"));
    m.title = new QCPTextElement(m.plot, QString(), QFont(font().family(), 9, QFont::Bold));
    m.plot->plotLayout()->insertRow(0);
    m.plot->plotLayout()->addElement(0, 0, m.title);
    m.map = new QCPColorMap(m.plot->xAxis, m.plot->yAxis);
    m.map->setInterpolate(false);
    m.scale = new QCPColorScale(m.plot);
    m.plot->plotLayout()->addElement(1, 1, m.scale);
    m.scale->setType(QCPAxis::atRight);
    m.scale->setSizeConstraintRect(QCPLayoutElement::scrOuterRect);
    m.scale->setMinimumSize(kScaleWidth, 10);
    m.scale->setMaximumSize(kScaleWidth, QWIDGETSIZE_MAX);
    alignLeft(m.plot);
    m.map->setColorScale(m.scale);
    m.map->setGradient(sequentialGradient());
    auto* group = new QCPMarginGroup(m.plot);
    m.plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m.scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m.hover = addHoverLine(m.plot);
    hookMouse(m.plot, &m);
    return m.plot;
  }

  void hookMouse(QCustomPlot* plot, Map* map) {
    plot->setMouseTracking(true);
    connect(plot, &QCustomPlot::mouseMove, this,
            [this, plot, map](QMouseEvent* e) { onMouse(plot, map, e->pos(), e->globalPosition().toPoint()); });
    connect(plot, &QCustomPlot::mousePress, this, [this, plot](QMouseEvent* e) {
      if (e->button() != Qt::LeftButton) return;
      const qint64 pos = positionAt(plot, e->pos().x());
      if (pos >= 0) context()->select(pos);
    });
    connect(plot, &QCustomPlot::mouseDoubleClick, this, [this] {
      m_follow = true;  // double click: show the whole text again
      refresh();
    });
    plot->installEventFilter(this);
  }

  bool eventFilter(QObject* o, QEvent* e) override {
    if (e->type() == QEvent::Leave && plots().contains(qobject_cast<QCustomPlot*>(o))) context()->hover(-1);
    return InspectorView::eventFilter(o, e);
  }

  qint64 positionAt(QCustomPlot* plot, int x) const {
    const mamba::ProbeFrames& f = context()->probes();
    const qint64 pos = qint64(std::llround(plot->xAxis->pixelToCoord(x)));
    return pos >= f.first && pos < f.first + f.count ? pos : -1;
  }

  void onMouse(QCustomPlot* plot, Map* map, const QPoint& at, const QPoint& global) {
    const qint64 pos = positionAt(plot, at.x());
    context()->hover(pos);
    if (pos < 0) {
      QToolTip::hideText();
      return;
    }
    const QString token = QStringLiteral("token %1 “%2”").arg(pos).arg(context()->tokenLabel(pos, 24).toHtmlEscaped());
    QString text;
    if (map) {
      const int i = map == &m_maps[0] ? 0 : 1;
      const qint64 layer = qint64(std::llround(plot->yAxis->pixelToCoord(at.y())));
      if (layer < 0 || layer >= context()->probes().L) return QToolTip::hideText();
      const ProbeMetric m = metricOf(mapMetric(i));
      text = QStringLiteral("%1<br>layer %2, %3<br><b>%4 = %5</b>")
                 .arg(token)
                 .arg(layer)
                 .arg(m == ProbeMetric::ResidNorm ? tr("whole layer") : headText())
                 .arg(QString::fromUtf8(mamba::metric_label(m)))
                 .arg(valueAt(m, layer, pos), 0, 'g', 6);
    } else {
      const ProbeMetric m = metricOf(m_lineMetric);
      text = token;
      for (int l : checkedLayers())
        text += QStringLiteral("<br>layer %1: %2 = %3")
                    .arg(l)
                    .arg(QString::fromUtf8(mamba::metric_label(m)))
                    .arg(valueAt(m, l, pos), 0, 'g', 6);
      text += QStringLiteral("<br>(%1)").arg(headText());
    }
    QToolTip::showText(global, text, plot);
  }

  float valueAt(ProbeMetric m, qint64 layer, qint64 pos) const {
    const mamba::ProbeFrames& f = context()->probes();
    const qint64 t = pos - f.first, L = f.L, H = f.H;
    if (t < 0 || t >= f.count) return std::nanf("");
    if (m == ProbeMetric::ResidNorm) return f.resid_norm[t * L + layer];
    // one position's value through the same reduction as the strips
    mamba::ProbeFrames one;
    one.L = L;
    one.H = H;
    one.S = f.S;
    one.count = 1;
    const qint64 S = f.S > 0 ? f.S : H;  // the norms' width: channel groups for Mamba-1
    const size_t o = size_t((t * L) * H), n = size_t(L * H), os = size_t((t * L) * S), ns = size_t(L * S);
    one.dt.assign(f.dt.begin() + o, f.dt.begin() + o + n);
    one.decay.assign(f.decay.begin() + o, f.decay.begin() + o + n);
    one.state_norm.assign(f.state_norm.begin() + os, f.state_norm.begin() + os + ns);
    one.y_norm.assign(f.y_norm.begin() + os, f.y_norm.begin() + os + ns);
    return mamba::layer_series(one, m, headChoice())[size_t(layer)];
  }

  qint64 headChoice() const { return m_head->currentData().toLongLong(); }
  QString headText() const {
    const qint64 h = headChoice();
    return h == mamba::kMeanOverHeads ? tr("mean over heads") : h == mamba::kMaxOverHeads ? tr("max over heads") : tr("head %1").arg(h);
  }

  QList<int> checkedLayers() const {
    QList<int> out;
    for (int i = 0; i < m_layers->count(); ++i)
      if (m_layers->item(i)->checkState() == Qt::Checked) out << i;
    return out;
  }

  void onModel() {
    const ModelInfo& info = context()->model();
    const QSignalBlocker b1(m_head), b2(m_layers);
    m_head->clear();
    m_head->addItem(tr("mean over heads"), qlonglong(mamba::kMeanOverHeads));
    m_head->addItem(tr("max over heads"), qlonglong(mamba::kMaxOverHeads));
    for (qint64 h = 0; h < info.heads; ++h) m_head->addItem(tr("head %1").arg(h), qlonglong(h));
    m_layers->clear();
    for (qint64 l = 0; l < info.layers; ++l) {
      auto* item = new QListWidgetItem(tr("layer %1").arg(l), m_layers);
      const bool on = l == 0 || l == info.layers / 2 || l == info.layers - 1;
      item->setCheckState(on ? Qt::Checked : Qt::Unchecked);
      item->setForeground(lineColour(int(l)));
    }
    for (QCustomPlot* p : plots()) {
      p->xAxis->setTicker(
          QSharedPointer<QCPAxisTicker>(new TokenTicker(p->xAxis, [this](qint64 pos) { return context()->tokenLabel(pos); })));
      p->xAxis->setTickLabelRotation(-60);
    }
    for (Map& m : m_maps) {
      auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
      ticker->setTickStep(1.0);
      ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
      m.plot->yAxis->setTicker(ticker);
    }
    m_follow = true;
    refresh();
  }

  void refresh() {
    QElapsedTimer clock;
    clock.start();
    refreshData();
    // While text streams, redraws take at most a tenth of the time: the next waits nine times what this
    // one cost (the data above plus the plots' last paint), so painting never starves generation.
    double cost = clock.nsecsElapsed() * 1e-6;
    for (QCustomPlot* p : plots()) cost += p->replotTime();
    m_timer.setInterval(std::clamp(int(9 * cost), kMinRefreshMs, kMaxRefreshMs));
  }

  void refreshData() {
    const mamba::ProbeFrames& f = context()->probes();
    const bool log = m_log->isChecked();
    m_status->setText(f.count ? tr("%n token(s) with probes", nullptr, int(f.count)) : tr("no probes yet: generate some text"));
    for (int i = 0; i < 2; ++i) refreshMap(m_maps[i], metricOf(mapMetric(i)), log);
    refreshLines(log);
    if (m_follow && f.count > 0) {
      m_settingRange = true;
      for (QCustomPlot* p : plots()) p->xAxis->setRange(double(f.first) - 0.5, double(f.first + f.count) - 0.5);
      m_settingRange = false;
    }
    for (QCustomPlot* p : plots()) p->replot(QCustomPlot::rpQueuedReplot);
  }

  void refreshMap(Map& m, ProbeMetric metric, bool log) {
    const mamba::ProbeFrames& f = context()->probes();
    const QString head = metric == ProbeMetric::ResidNorm ? tr("per layer") : headText();
    m.title->setText(QStringLiteral("%1 — %2").arg(metricText(metric), head));
    m.note->setText(metricNote(metric));
    m.scale->axis()->setLabel(QString::fromUtf8(mamba::metric_label(metric)) + (log ? tr(" (log)") : QString()));
    m.scale->setDataScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    m.scale->axis()->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                                   : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    const qint64 L = std::max<qint64>(1, f.L), T = f.count;
    if (T == 0) {
      m.map->data()->clear();
      m.plot->yAxis->setRange(-0.5, double(L) - 0.5);
      return;
    }
    const std::vector<float> v = mamba::layer_series(f, metric, metric == ProbeMetric::ResidNorm ? 0 : headChoice());
    auto* d = m.map->data();
    d->setSize(int(T), int(L));
    d->setRange(QCPRange(double(f.first), double(f.first + std::max<qint64>(T, 2) - 1)), QCPRange(0, double(std::max<qint64>(L, 2) - 1)));
    for (qint64 l = 0; l < L; ++l)
      for (qint64 t = 0; t < T; ++t) d->setCell(int(t), int(l), v[size_t(l * T + t)]);
    m.map->rescaleDataRange(true);
    m.plot->yAxis->setRange(-0.5, double(L) - 0.5);
  }

  void refreshLines(bool log) {
    const mamba::ProbeFrames& f = context()->probes();
    const ProbeMetric metric = metricOf(m_lineMetric);
    m_lines->clearGraphs();
    m_lines->yAxis->setLabel(
        QStringLiteral("%1 — %2").arg(metricText(metric), metric == ProbeMetric::ResidNorm ? tr("per layer") : headText()));
    m_lines->yAxis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    m_lines->yAxis->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog) : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    if (f.count == 0) return;
    const std::vector<float> v = mamba::layer_series(f, metric, metric == ProbeMetric::ResidNorm ? 0 : headChoice());
    QVector<double> x(f.count);
    for (qint64 t = 0; t < f.count; ++t) x[t] = double(f.first + t);
    for (int l : checkedLayers()) {
      QVector<double> y(f.count);
      for (qint64 t = 0; t < f.count; ++t) y[t] = v[size_t(l * f.count + t)];
      QCPGraph* g = m_lines->addGraph();
      g->setName(tr("layer %1").arg(l));
      g->setPen(QPen(lineColour(l), 1.6));
      g->setData(x, y, true);
    }
    m_lines->yAxis->rescale(true);
    m_lines->yAxis->scaleRange(1.08, m_lines->yAxis->range().center());
  }

  void syncRange(QCustomPlot* from, const QCPRange& r) {
    if (m_syncing) return;
    m_syncing = true;
    if (!m_settingRange) m_follow = false;  // the user dragged or zoomed: stop following the text's end
    for (QCustomPlot* p : plots())
      if (p != from) {
        p->xAxis->setRange(r);
        p->replot(QCustomPlot::rpQueuedReplot);
      }
    m_syncing = false;
  }

  void scrollTo(qint64 pos) {
    if (pos < 0) return;
    const QCPRange r = m_lines->xAxis->range();
    if (pos >= r.lower && pos <= r.upper) return;
    m_follow = false;
    m_settingRange = true;
    const double half = r.size() / 2;
    for (QCustomPlot* p : plots()) {
      p->xAxis->setRange(double(pos) - half, double(pos) + half);
      p->replot(QCustomPlot::rpQueuedReplot);
    }
    m_settingRange = false;
  }

  void onHovered(qint64 pos) {
    for (Map& m : m_maps) placeHoverLine(m.hover, pos);
    placeHoverLine(m_lineHover, pos);
    for (QCustomPlot* p : plots()) p->replot(QCustomPlot::rpQueuedReplot);
  }

  Table mapTable(int i) const {
    const mamba::ProbeFrames& f = context()->probes();
    const ProbeMetric m = metricOf(mapMetric(i));
    Table t;
    t.columns = {QStringLiteral("position"), QStringLiteral("token_id"), QStringLiteral("token"),
                 QStringLiteral("layer"),    QStringLiteral("heads"),    QString::fromUtf8(mamba::metric_name(m))};
    if (f.count == 0) return t;
    const std::vector<float> v = mamba::layer_series(f, m, m == ProbeMetric::ResidNorm ? 0 : headChoice());
    const QString heads = m == ProbeMetric::ResidNorm ? QStringLiteral("layer") : headText();
    for (qint64 s = 0; s < f.count; ++s)
      for (qint64 l = 0; l < f.L; ++l) {
        const qint64 pos = f.first + s;
        const auto& toks = context()->tokens();
        t.rows.push_back({QString::number(pos), pos < toks.size() ? QString::number(toks[pos].id) : QString(),
                          pos < toks.size() ? toks[pos].text : QString(), QString::number(l), heads,
                          QString::number(v[size_t(l * f.count + s)], 'g', 9)});
      }
    return t;
  }

  Table linesTable() const {
    const mamba::ProbeFrames& f = context()->probes();
    const ProbeMetric m = metricOf(m_lineMetric);
    Table t;
    t.columns = {QStringLiteral("position"), QStringLiteral("token_id"), QStringLiteral("token")};
    const QList<int> layers = checkedLayers();
    for (int l : layers) t.columns << QStringLiteral("%1_layer%2").arg(QString::fromUtf8(mamba::metric_name(m))).arg(l);
    if (f.count == 0) return t;
    const std::vector<float> v = mamba::layer_series(f, m, m == ProbeMetric::ResidNorm ? 0 : headChoice());
    const auto& toks = context()->tokens();
    for (qint64 s = 0; s < f.count; ++s) {
      const qint64 pos = f.first + s;
      QStringList row{QString::number(pos), pos < toks.size() ? QString::number(toks[pos].id) : QString(),
                      pos < toks.size() ? toks[pos].text : QString()};
      for (int l : layers) row << QString::number(v[size_t(l * f.count + s)], 'g', 9);
      t.rows.push_back(row);
    }
    return t;
  }

  QComboBox *m_head = nullptr, *m_top = nullptr, *m_bottom = nullptr, *m_lineMetric = nullptr;
  QCheckBox* m_log = nullptr;
  QLabel* m_status = nullptr;
  QListWidget* m_layers = nullptr;
  Map m_maps[2];
  QCustomPlot* m_lines = nullptr;
  QCPItemStraightLine* m_lineHover = nullptr;
  QTimer m_timer;
  bool m_follow = true;  // the x range shows the whole text as it grows, until the user zooms or pans (double click: again)
  bool m_settingRange = false;
  bool m_syncing = false;
};

}  // namespace

InspectorView* makeDynamicsView(InspectorContext* context, QWidget* parent) { return new DynamicsView(context, parent); }

}  // namespace studio
