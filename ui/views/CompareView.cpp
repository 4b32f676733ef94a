// The Compare view: the text through the chunked and recurrent scans (and CUDA per weight dtype) against
// the float64 reference (engine/compare.h, run by the worker): a layer x token heatmap of the relative
// error of the chosen pair of runs, per-layer and per-run tables, and the chunk-size sweep as log-log
// plots of time, FLOPs and error against Q with the model's Q marked.
#include <qcustomplot.h>
#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "ui/CompareTypes.h"
#include "ui/EngineWorker.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotStyle.h"

namespace studio {

namespace {

QString sci(double v, int digits = 3) {
  if (std::isnan(v)) return QStringLiteral("—");
  return QString::number(v, 'e', digits - 1);
}

QString ms(double seconds) { return QString::number(seconds * 1e3, 'f', seconds < 0.01 ? 3 : 1); }

QString runLabel(const CompareRunData& r) {
  if (r.device == QLatin1String("cpu"))
    return r.scan == QLatin1String("chunked") ? QStringLiteral("CPU chunked (Q = %1)").arg(r.chunkSize) : QStringLiteral("CPU recurrent");
  return QStringLiteral("%1 %2 %3")
      .arg(r.device.toUpper(), r.dtype, r.scan == QLatin1String("chunked") ? QStringLiteral("chunked (Q = %1)").arg(r.chunkSize) : r.scan);
}

QColor seriesColour(int i) {
  static const QColor c[] = {QColor(0x1f77b4), QColor(0xd62728), QColor(0x2ca02c), QColor(0x9467bd), QColor(0xff7f0e)};
  return c[i % 5];
}

class CompareView final : public InspectorView {
 public:
  CompareView(InspectorContext* context, QWidget* parent) : InspectorView(context, parent) {
    qRegisterMetaType<CompareData>();
    qRegisterMetaType<CompareRequest>();
    QHBoxLayout* row = controlRow();
    m_run = new QPushButton(tr("Compare"), this);
    m_run->setObjectName(QStringLiteral("runCompare"));
    m_run->setToolTip(tr("Run the text (prompt and generated tokens) through every scan and compare each with float64"));
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setObjectName(QStringLiteral("cancelCompare"));
    m_cancel->setEnabled(false);
    m_chunk = new QSpinBox(this);
    m_chunk->setObjectName(QStringLiteral("chunkSize"));
    m_chunk->setRange(0, 1 << 20);
    m_chunk->setSpecialValueText(tr("model's"));
    m_chunk->setToolTip(tr("Chunk size Q of the chunked runs"));
    m_sweep = new QCheckBox(tr("Sweep Q"), this);
    m_sweep->setObjectName(QStringLiteral("sweep"));
    m_sweep->setChecked(true);
    m_sweep->setToolTip(tr("Also time and measure the chunked scan at Q = 1, 2, 4, …, T"));
    m_gpu = new QCheckBox(tr("GPU runs"), this);
    m_gpu->setObjectName(QStringLiteral("gpuRuns"));
    m_gpu->setToolTip(tr("Add the CUDA backend in f32, bf16 and f16 (where a GPU is present)"));
    m_a = new QComboBox(this);
    m_a->setObjectName(QStringLiteral("runA"));
    m_b = new QComboBox(this);
    m_b->setObjectName(QStringLiteral("runB"));
    for (QComboBox* c : {m_a, m_b}) c->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1000);
    m_progress->setMaximumWidth(160);
    m_progress->setVisible(false);
    m_status = new QLabel(tr("Press Compare to measure the current text"), this);
    row->addWidget(m_run);
    row->addWidget(m_cancel);
    row->addWidget(new QLabel(tr("Q"), this));
    row->addWidget(m_chunk);
    row->addWidget(m_sweep);
    row->addWidget(m_gpu);
    row->addSpacing(12);
    row->addWidget(new QLabel(tr("Error of"), this));
    row->addWidget(m_a);
    row->addWidget(new QLabel(tr("against"), this));
    row->addWidget(m_b);
    row->addSpacing(12);
    row->addWidget(m_progress);
    row->addWidget(m_status, 1);

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(makeHeatmap());
    auto* lower = new QSplitter(Qt::Horizontal, split);
    auto* tabs = new QTabWidget(lower);
    m_layerTable = new QTableWidget(tabs);
    m_layerTable->setObjectName(QStringLiteral("layerTable"));
    m_runTable = new QTableWidget(tabs);
    m_runTable->setObjectName(QStringLiteral("runTable"));
    for (QTableWidget* t : {m_layerTable, m_runTable}) {
      t->setEditTriggers(QAbstractItemView::NoEditTriggers);
      t->verticalHeader()->setVisible(false);
      t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    }
    tabs->addTab(m_layerTable, tr("Per layer"));
    tabs->addTab(m_runTable, tr("Per run"));
    lower->addWidget(tabs);
    m_time = makeSweepPlot(QStringLiteral("sweepTime"), tr("prefill time (ms)"));
    m_err = makeSweepPlot(QStringLiteral("sweepError"), tr("max relative error vs float64"));
    lower->addWidget(m_time);
    lower->addWidget(m_err);
    lower->setSizes({520, 360, 360});
    split->addWidget(lower);
    split->setSizes({430, 330});
    layout()->addWidget(split);

    EngineWorker* worker = context->worker();
    connect(m_run, &QPushButton::clicked, this, &CompareView::start);
    connect(m_cancel, &QPushButton::clicked, this, [worker] {
      if (worker) worker->requestCancelCompare();
    });
    if (worker) {
      connect(worker, &EngineWorker::compareStarted, this, [this](qint64 tokens) {
        setRunning(true);
        m_status->setText(tr("comparing %n token(s)…", nullptr, int(tokens)));
      });
      connect(worker, &EngineWorker::compareProgress, this, [this](double f, const QString& what) {
        m_progress->setValue(int(f * 1000));
        m_status->setText(what);
      });
      connect(worker, &EngineWorker::compareFinished, this, [this](const CompareData& d) {
        setRunning(false);
        setData(d);
      });
      connect(worker, &EngineWorker::compareFailed, this, [this](const QString& error, bool cancelled) {
        setRunning(false);
        m_status->setText(cancelled ? tr("cancelled; the previous result stays") : tr("failed: %1").arg(error));
      });
      connect(worker, &EngineWorker::devicesProbed, this, [this](const DeviceInfo& info) { setGpuAvailable(info.cudaAvailable); });
    }
    setGpuAvailable(false);
    connect(m_a, &QComboBox::currentIndexChanged, this, &CompareView::refreshPair);
    connect(m_b, &QComboBox::currentIndexChanged, this, &CompareView::refreshPair);
    connect(context, &InspectorContext::hoveredChanged, this, [this](qint64 pos) {
      placeHoverLine(m_hoverLine, pos < m_data.tokens ? pos : -1);
      m_map->replot(QCustomPlot::rpQueuedReplot);
    });
    connect(context, &InspectorContext::modelChanged, this, [this] {
      m_data = CompareData();
      showData();
      m_status->setText(tr("Press Compare to measure the current text"));
    });
  }

  QString name() const override { return QStringLiteral("compare"); }
  QString title() const override { return tr("Compare"); }

  QList<Exportable> exportables() override {
    return {{QStringLiteral("heatmap"), m_map, [this] { return heatmapTable(); }},
            {QStringLiteral("layers"), nullptr, [this] { return tableOf(m_layerTable); }},
            {QStringLiteral("runs"), nullptr, [this] { return tableOf(m_runTable); }},
            {QStringLiteral("sweep-time"), m_time, [this] { return sweepTable(); }},
            {QStringLiteral("sweep-error"), m_err, [this] { return sweepTable(); }}};
  }

  // --screenshot --view compare: compare the text first (--chunk Q sets the chunk size), then captureReady().
  bool prepareCapture(const QMap<QString, QString>& options) override {
    if (m_data.tokens > 0 || !context()->hasModel() || !context()->worker()) return false;
    if (options.contains(QStringLiteral("chunk"))) m_chunk->setValue(options.value(QStringLiteral("chunk")).toInt());
    m_capturing = true;
    start();
    return true;
  }

  // The hover text of a heatmap cell (tests read it; the tooltip shows it).
  QString cellText(qint64 layer, qint64 pos) const {
    const CompareDiffData* d = currentDiff();
    if (!d || layer < 0 || layer >= m_data.layers || pos < 0 || pos >= m_data.tokens) return {};
    const qsizetype i = qsizetype(layer * m_data.tokens + pos);
    const QString a = runName(d->a), b = runName(d->b);
    const double na = normOf(d->a, i), nb = normOf(d->b, i);
    QString s = QStringLiteral("layer %1, token %2 “%3”<br>").arg(layer).arg(pos).arg(tokenText(pos).toHtmlEscaped());
    if (std::isnan(d->err[i])) return s + tr("%1 gave no layer outputs").arg(std::isnan(na) ? a : b);
    s += tr("<b>‖%1 − %2‖ / ‖%2‖ = %3</b><br>").arg(a, b, sci(d->err[i]));
    s += tr("‖%1‖ = %2, ‖%3‖ = %4<br>").arg(a).arg(na, 0, 'g', 9).arg(b).arg(nb, 0, 'g', 9);
    s += tr("largest difference in channel %1:<br>").arg(d->at[i]);
    s += QStringLiteral("&nbsp;&nbsp;%1 = %2<br>&nbsp;&nbsp;%3 = %4<br>&nbsp;&nbsp;difference %5")
             .arg(a)
             .arg(d->va[i], 0, 'g', 9)
             .arg(b)
             .arg(d->vb[i], 0, 'g', 17)
             .arg(sci(d->va[i] - d->vb[i], 4));
    return s;
  }

 private:
  QWidget* makeHeatmap() {
    m_map = new QCustomPlot(this);
    m_map->setObjectName(QStringLiteral("heatmap"));
    setUpPlot(m_map, tr("token"), tr("layer"));
    m_title = new QCPTextElement(m_map, tr("no comparison yet"), QFont(font().family(), 9, QFont::Bold));
    m_map->plotLayout()->insertRow(0);
    m_map->plotLayout()->addElement(0, 0, m_title);
    m_cells = new QCPColorMap(m_map->xAxis, m_map->yAxis);
    m_cells->setInterpolate(false);
    m_scale = new QCPColorScale(m_map);
    m_map->plotLayout()->addElement(1, 1, m_scale);
    m_scale->setType(QCPAxis::atRight);
    m_scale->setDataScaleType(QCPAxis::stLogarithmic);
    m_scale->axis()->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    m_scale->axis()->setNumberFormat(QStringLiteral("eb"));
    m_scale->axis()->setNumberPrecision(0);
    m_scale->axis()->setLabel(tr("relative error (log scale, viridis)"));
    m_cells->setColorScale(m_scale);
    QCPColorGradient g = sequentialGradient();
    g.setNanHandling(QCPColorGradient::nhTransparent);
    m_cells->setGradient(g);
    auto* group = new QCPMarginGroup(m_map);
    m_map->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1.0);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_map->yAxis->setTicker(ticker);
    m_map->xAxis->setTicker(
        QSharedPointer<QCPAxisTicker>(new TokenTicker(m_map->xAxis, [this](qint64 pos) { return tokenText(pos, 10); })));
    m_map->xAxis->setTickLabelRotation(-60);
    m_hoverLine = addHoverLine(m_map);
    m_map->setMouseTracking(true);
    connect(m_map, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
      const qint64 pos = qint64(std::llround(m_map->xAxis->pixelToCoord(e->pos().x())));
      const qint64 layer = qint64(std::llround(m_map->yAxis->pixelToCoord(e->pos().y())));
      const QString text = cellText(layer, pos);
      if (text.isEmpty()) {
        QToolTip::hideText();
        context()->hover(-1);
        return;
      }
      if (linkedToContext()) context()->hover(pos);
      QToolTip::showText(e->globalPosition().toPoint(), text, m_map);
    });
    connect(m_map, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
      const qint64 pos = qint64(std::llround(m_map->xAxis->pixelToCoord(e->pos().x())));
      if (e->button() == Qt::LeftButton && linkedToContext() && pos >= 0 && pos < m_data.tokens) context()->select(pos);
    });
    return m_map;
  }

  QCustomPlot* makeSweepPlot(const QString& objectName, const QString& yLabel) {
    auto* p = new QCustomPlot(this);
    p->setObjectName(objectName);
    setUpPlot(p, tr("chunk size Q (log)"), yLabel);
    p->setInteractions(QCP::Interactions());
    for (QCPAxis* a : {p->xAxis, p->yAxis}) {
      a->setScaleType(QCPAxis::stLogarithmic);
      auto t = QSharedPointer<QCPAxisTickerLog>::create();
      t->setLogBase(a == p->xAxis ? 2 : 10);
      a->setTicker(t);
    }
    p->yAxis->setNumberFormat(QStringLiteral("gb"));
    // the legend in a row under the plot, where it hides no point
    p->legend->setVisible(true);
    p->legend->setFont(QFont(font().family(), 8));
    p->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    p->legend->setBorderPen(Qt::NoPen);
    p->plotLayout()->addElement(1, 0, p->legend);
    p->plotLayout()->setRowStretchFactor(1, 0.001);
    p->setMouseTracking(true);
    connect(p, &QCustomPlot::mouseMove, this, [this, p](QMouseEvent* e) {
      const QString text = sweepText(p->xAxis->pixelToCoord(e->pos().x()));
      if (text.isEmpty()) QToolTip::hideText();
      else QToolTip::showText(e->globalPosition().toPoint(), text, p);
    });
    return p;
  }

  void start() {
    EngineWorker* worker = context()->worker();
    if (!worker || m_running) return;
    CompareRequest req;
    req.chunkSize = m_chunk->value();
    req.sweep = m_sweep->isChecked();
    req.gpu = m_gpu->isEnabled() && m_gpu->isChecked();
    setRunning(true);
    QMetaObject::invokeMethod(
        worker, [worker, req] { worker->compare(req); }, Qt::QueuedConnection);
  }

  void setRunning(bool on) {
    m_running = on;
    m_run->setEnabled(!on);
    m_cancel->setEnabled(on);
    m_progress->setVisible(on);
    if (on) m_progress->setValue(0);
    if (!on && m_capturing) {
      m_capturing = false;
      QMetaObject::invokeMethod(
          this, [this] { emit captureReady(); }, Qt::QueuedConnection);  // after setData has drawn
    }
  }

  void setGpuAvailable(bool on) {
    m_gpu->setEnabled(on);
    if (!on) m_gpu->setChecked(false);
    m_gpu->setToolTip(on ? tr("Add the CUDA backend in f32, bf16 and f16") : tr("No GPU: the CUDA runs are not available"));
  }

  void setData(const CompareData& d) {
    m_data = d;
    showData();
    m_status->setText(tr("%n token(s), %1 layers; float64 reference %2 ms", nullptr, int(d.tokens)).arg(d.layers).arg(ms(d.refSeconds)));
  }

  void showData() {
    const QSignalBlocker ba(m_a), bb(m_b);
    m_a->clear();
    m_b->clear();
    for (int i = 0; i < m_data.runs.size(); ++i) {
      m_a->addItem(runLabel(m_data.runs[i]), i);
      m_b->addItem(runLabel(m_data.runs[i]), i);
    }
    m_b->addItem(tr("float64 reference"), -1);
    m_a->setCurrentIndex(0);
    m_b->setCurrentIndex(m_b->count() - 1);
    refreshPair();
    fillRunTable();
    fillSweep();
  }

  int selected(QComboBox* c) const { return c->currentIndex() < 0 ? -1 : c->currentData().toInt(); }

  const CompareDiffData* currentDiff() const {
    const int a = selected(m_a), b = selected(m_b);
    if (a < 0 || a == b) return nullptr;
    if (const CompareDiffData* d = m_data.diff(a, b)) return d;
    return m_data.diff(b, a);  // the pair is stored once, in run order
  }

  QString runName(int i) const { return i < 0 ? QStringLiteral("float64") : m_data.runs[i].name; }

  double normOf(int run, qsizetype i) const {
    const QVector<float>& n = run < 0 ? m_data.refNorm : m_data.runs[run].norm;
    return i < n.size() ? double(n[i]) : std::nan("");
  }

  QString tokenText(qint64 pos, int maxChars = 24) const {
    if (pos < 0 || pos >= m_data.pieces.size()) return {};
    QString t = m_data.pieces[pos];
    t.replace(QLatin1Char('\n'), QStringLiteral("↵")).replace(QLatin1Char(' '), QStringLiteral("·"));
    return t.size() > maxChars ? t.left(maxChars - 1) + QStringLiteral("…") : t;
  }

  // Hover and selection go to the other views only when the compared text is the sequence they show.
  bool linkedToContext() const {
    const auto& toks = context()->tokens();
    if (toks.size() < m_data.ids.size()) return false;
    for (qsizetype i = 0; i < m_data.ids.size(); ++i)
      if (toks[i].id != m_data.ids[i]) return false;
    return true;
  }

  void refreshPair() {
    const CompareDiffData* d = currentDiff();
    auto* cells = m_cells->data();
    const qint64 L = std::max<qint64>(1, m_data.layers), T = m_data.tokens;
    if (!d || T == 0) {
      cells->clear();
      m_title->setText(m_data.tokens ? tr("choose two different runs") : tr("no comparison yet: press Compare"));
      m_map->replot(QCustomPlot::rpQueuedReplot);
      fillLayerTable(nullptr);
      return;
    }
    cells->setSize(int(T), int(L));
    cells->setRange(QCPRange(0, double(std::max<qint64>(T, 2) - 1)), QCPRange(0, double(std::max<qint64>(L, 2) - 1)));
    // exact zeros (identical rows) sit at the bottom of the log scale rather than off it
    const double floor = d->minErr > 0 ? d->minErr : 1e-12;
    for (qint64 l = 0; l < L; ++l)
      for (qint64 t = 0; t < T; ++t) {
        const float e = d->err[qsizetype(l * T + t)];
        cells->setCell(int(t), int(l), std::isnan(e) ? std::nan("") : std::max(double(e), floor));
      }
    // whole decades, so the colours mean the same in every pair and the ticks are powers of ten
    const double lo = std::pow(10.0, std::floor(std::log10(floor))),
                 hi = std::pow(10.0, std::ceil(std::log10(std::max(d->maxErr, floor * 1.01))));
    m_scale->setDataRange(QCPRange(lo, std::max(hi, lo * 10)));
    m_title->setText(tr("‖%1 − %2‖ / ‖%2‖ of the residual stream after each layer, per token")
                         .arg(runLabel(m_data.runs[d->a]), d->b < 0 ? tr("float64") : runLabel(m_data.runs[d->b])));
    m_map->xAxis->setRange(-0.5, double(T) - 0.5);
    m_map->yAxis->setRange(-0.5, double(L) - 0.5);
    m_map->replot(QCustomPlot::rpQueuedReplot);
    fillLayerTable(d);
  }

  static QTableWidgetItem* item(const QString& s) {
    auto* it = new QTableWidgetItem(s);
    it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return it;
  }

  void fillLayerTable(const CompareDiffData* d) {
    m_layerTable->clear();
    m_layerTable->setRowCount(0);
    if (!d) return;
    QStringList cols{tr("layer"), tr("max rel err"), tr("mean rel err"), tr("SSM state err"), tr("conv state err")};
    const CompareRunData& a = m_data.runs[d->a];
    const bool timeA = !a.layerSeconds.isEmpty(), timeB = d->b >= 0 && !m_data.runs[d->b].layerSeconds.isEmpty();
    if (timeA) cols << tr("%1 time (ms)").arg(a.name);
    if (timeB) cols << tr("%1 time (ms)").arg(m_data.runs[d->b].name);
    // every run against float64, side by side (devices and dtypes as extra columns)
    for (const auto& r : m_data.runs) cols << tr("%1 vs f64 (max)").arg(r.name);
    m_layerTable->setColumnCount(int(cols.size()));
    m_layerTable->setHorizontalHeaderLabels(cols);
    m_layerTable->setRowCount(int(m_data.layers));
    for (qint64 l = 0; l < m_data.layers; ++l) {
      int c = 0;
      m_layerTable->setItem(int(l), c++, item(QString::number(l)));
      m_layerTable->setItem(int(l), c++, item(sci(d->layerMax[l])));
      m_layerTable->setItem(int(l), c++, item(sci(d->layerMean[l])));
      m_layerTable->setItem(int(l), c++, item(sci(d->ssmErr[l])));
      m_layerTable->setItem(int(l), c++, item(sci(d->convErr[l])));
      if (timeA) m_layerTable->setItem(int(l), c++, item(ms(a.layerSeconds[l])));
      if (timeB) m_layerTable->setItem(int(l), c++, item(ms(m_data.runs[d->b].layerSeconds[l])));
      for (int r = 0; r < m_data.runs.size(); ++r) m_layerTable->setItem(int(l), c++, item(sci(m_data.diff(r, -1)->layerMax[l])));
    }
  }

  void fillRunTable() {
    const QStringList cols{tr("run"),          tr("backend"),     tr("time (ms)"),    tr("GFLOP"),           tr("GFLOP/s"),
                           tr("layers (max)"), tr("state (max)"), tr("logits (max)"), tr("KL (mean, nats)"), tr("top-1 agree")};
    m_runTable->clear();
    m_runTable->setColumnCount(int(cols.size()));
    m_runTable->setHorizontalHeaderLabels(cols);
    m_runTable->setRowCount(m_data.tokens ? int(m_data.runs.size()) + 1 : 0);
    if (!m_data.tokens) return;
    auto put = [&](int row, const QString& name, const QString& backend, double s, double flops, const QStringList& errs) {
      QStringList cells{name, backend, ms(s), QString::number(flops / 1e9, 'g', 4),
                        QString::number(flops / 1e9 / std::max(s, 1e-12), 'g', 4)};
      cells << errs;
      for (int c = 0; c < cells.size(); ++c) {
        auto* it = item(cells[c]);
        if (c < 2) it->setTextAlignment(Qt::AlignLeft | Qt::AlignVCenter);
        m_runTable->setItem(row, c, it);
      }
    };
    put(0, tr("float64 reference (recurrent)"), tr("cpu, double"), m_data.refSeconds, m_data.refFlops,
        {tr("truth"), QString(), QString(), QString(), QString()});
    for (int i = 0; i < m_data.runs.size(); ++i) {
      const CompareRunData& r = m_data.runs[i];
      const CompareDiffData* d = m_data.diff(i, -1);
      double layers = 0, state = 0;
      for (double v : d->layerMax) layers = std::isnan(v) || std::isnan(layers) ? std::nan("") : std::max(layers, v);
      for (qsizetype l = 0; l < d->ssmErr.size(); ++l) state = std::max({state, d->ssmErr[l], d->convErr[l]});
      put(i + 1, runLabel(r), r.backend, r.seconds, r.flops,
          {sci(layers), sci(state), sci(r.maxLogitErr), sci(r.klMean), QStringLiteral("%1 %").arg(100 * r.top1Agree, 0, 'f', 1)});
    }
  }

  void fillSweep() {
    for (QCustomPlot* p : {m_time, m_err}) {
      p->clearGraphs();
      p->clearItems();
    }
    if (m_data.sweep.isEmpty()) {
      for (QCustomPlot* p : {m_time, m_err}) p->replot(QCustomPlot::rpQueuedReplot);
      return;
    }
    QVector<double> q, sec, gflop, err, state;
    for (const auto& p : m_data.sweep) {
      q << double(p.chunkSize);
      sec << p.seconds * 1e3;
      gflop << p.flops / 1e9;
      err << p.maxRelErr;
      state << p.stateRelErr;
    }
    auto graph = [](QCustomPlot* p, QCPAxis* y, const QString& name, const QVector<double>& x, const QVector<double>& v, const QColor& c) {
      QCPGraph* g = p->addGraph(p->xAxis, y);
      g->setName(name);
      g->setPen(QPen(c, 1.8));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, Qt::white, 6));
      g->setData(x, v, true);
      return g;
    };
    graph(m_time, m_time->yAxis, tr("chunked: time (ms)"), q, sec, seriesColour(0));
    m_time->yAxis2->setVisible(true);
    m_time->yAxis2->setScaleType(QCPAxis::stLogarithmic);
    m_time->yAxis2->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    m_time->yAxis2->setLabel(tr("GFLOP (formula)"));
    graph(m_time, m_time->yAxis2, tr("chunked: GFLOP"), q, gflop, seriesColour(2));
    graph(m_err, m_err->yAxis, tr("chunked: layer outputs"), q, err, seriesColour(0));
    graph(m_err, m_err->yAxis, tr("chunked: final SSM state"), q, state, seriesColour(3));
    const CompareSweepPoint& rec = m_data.sweepRecurrent;
    hline(m_time, m_time->yAxis, rec.seconds * 1e3, tr("recurrent %1 ms").arg(ms(rec.seconds)), seriesColour(1));
    hline(m_err, m_err->yAxis, rec.maxRelErr, tr("recurrent %1").arg(sci(rec.maxRelErr)), seriesColour(1));
    // log ranges that hold every plotted value (and the recurrent lines) with a margin
    auto span = [](std::initializer_list<const QVector<double>*> series, double extra) {
      double lo = extra > 0 ? extra : INFINITY, hi = extra > 0 ? extra : 0;
      for (const QVector<double>* v : series)
        for (double x : *v)
          if (x > 0 && std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
      return std::isfinite(lo) ? QCPRange(lo / 1.8, hi * 1.8) : QCPRange(1e-8, 1);
    };
    m_time->yAxis->setRange(span({&sec}, rec.seconds * 1e3));
    m_time->yAxis2->setRange(span({&gflop}, rec.flops / 1e9));
    m_err->yAxis->setRange(span({&err, &state}, rec.maxRelErr));
    const double qmax = std::max(q.last(), double(std::max(m_data.modelChunkSize, m_data.chunkSize)));
    for (QCustomPlot* p : {m_time, m_err}) {
      p->xAxis->setRange(0.7, qmax * 1.5);
      vline(p, double(m_data.modelChunkSize), tr("model's Q = %1").arg(m_data.modelChunkSize));
      if (m_data.chunkSize != m_data.modelChunkSize) vline(p, double(m_data.chunkSize), tr("compared Q = %1").arg(m_data.chunkSize));
    }
    for (QCustomPlot* p : {m_time, m_err}) p->replot(QCustomPlot::rpQueuedReplot);
  }

  void hline(QCustomPlot* p, QCPAxis* y, double v, const QString& label, const QColor& c) {
    if (!(v > 0)) return;
    auto* line = new QCPItemStraightLine(p);
    line->point1->setAxes(p->xAxis, y);
    line->point2->setAxes(p->xAxis, y);
    line->point1->setCoords(1, v);
    line->point2->setCoords(2, v);
    line->setPen(QPen(c, 1.5, Qt::DashLine));
    auto* text = new QCPItemText(p);
    text->position->setAxes(p->xAxis, y);
    text->position->setCoords(1.0, v);
    text->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    text->setText(label);
    text->setColor(c);
    text->setFont(QFont(font().family(), 8));
  }

  void vline(QCustomPlot* p, double x, const QString& label) {
    auto* line = new QCPItemStraightLine(p);
    line->point1->setCoords(x, 1);
    line->point2->setCoords(x, 2);
    line->setPen(QPen(QColor(0x55, 0x55, 0x55), 1.2, Qt::DotLine));
    auto* text = new QCPItemText(p);
    text->position->setTypeX(QCPItemPosition::ptPlotCoords);
    text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    text->position->setCoords(x, 0.03);
    text->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
    text->setRotation(-90);
    text->setText(label);
    text->setFont(QFont(font().family(), 8));
    text->setColor(QColor(0x55, 0x55, 0x55));
  }

  QString sweepText(double q) const {
    if (m_data.sweep.isEmpty() || !(q > 0)) return {};
    const CompareSweepPoint* best = nullptr;
    for (const auto& p : m_data.sweep)
      if (!best || std::abs(std::log2(double(p.chunkSize)) - std::log2(q)) < std::abs(std::log2(double(best->chunkSize)) - std::log2(q)))
        best = &p;
    if (std::abs(std::log2(double(best->chunkSize)) - std::log2(q)) > 0.5) return {};
    const CompareSweepPoint& r = m_data.sweepRecurrent;
    return tr("<b>Q = %1</b> (%2)<br>prefill %3 ms, %4 GFLOP, %5 GFLOP/s<br>layer outputs: max rel err %6<br>final SSM state: rel err %7"
              "<br><i>recurrent: %8 ms, %9 GFLOP, max rel err %10</i>")
        .arg(best->chunkSize)
        .arg(m_data.sweepBackend)
        .arg(ms(best->seconds))
        .arg(best->flops / 1e9, 0, 'g', 4)
        .arg(best->flops / 1e9 / std::max(best->seconds, 1e-12), 0, 'g', 4)
        .arg(sci(best->maxRelErr))
        .arg(sci(best->stateRelErr))
        .arg(ms(r.seconds))
        .arg(r.flops / 1e9, 0, 'g', 4)
        .arg(sci(r.maxRelErr));
  }

  Table heatmapTable() const {
    Table t;
    t.columns = {QStringLiteral("layer"),   QStringLiteral("position"), QStringLiteral("token_id"), QStringLiteral("token"),
                 QStringLiteral("run_a"),   QStringLiteral("run_b"),    QStringLiteral("rel_err"),  QStringLiteral("channel"),
                 QStringLiteral("value_a"), QStringLiteral("value_b"),  QStringLiteral("norm_a"),   QStringLiteral("norm_b")};
    const CompareDiffData* d = currentDiff();
    if (!d) return t;
    for (qint64 l = 0; l < m_data.layers; ++l)
      for (qint64 p = 0; p < m_data.tokens; ++p) {
        const qsizetype i = qsizetype(l * m_data.tokens + p);
        t.rows.push_back({QString::number(l), QString::number(p), QString::number(m_data.ids[p]), m_data.pieces.value(p), runName(d->a),
                          runName(d->b), QString::number(d->err[i], 'g', 9), QString::number(d->at[i]), QString::number(d->va[i], 'g', 9),
                          QString::number(d->vb[i], 'g', 17), QString::number(normOf(d->a, i), 'g', 9),
                          QString::number(normOf(d->b, i), 'g', 9)});
      }
    return t;
  }

  Table sweepTable() const {
    Table t;
    t.columns = {QStringLiteral("scan"),        QStringLiteral("chunk_size"),    QStringLiteral("seconds"), QStringLiteral("flops"),
                 QStringLiteral("max_rel_err"), QStringLiteral("state_rel_err"), QStringLiteral("backend")};
    auto row = [&](const CompareSweepPoint& p) {
      t.rows.push_back({p.chunkSize ? QStringLiteral("chunked") : QStringLiteral("recurrent"), QString::number(p.chunkSize),
                        QString::number(p.seconds, 'g', 6), QString::number(p.flops, 'f', 0), QString::number(p.maxRelErr, 'g', 6),
                        QString::number(p.stateRelErr, 'g', 6), m_data.sweepBackend});
    };
    for (const auto& p : m_data.sweep) row(p);
    if (!m_data.sweep.isEmpty()) row(m_data.sweepRecurrent);
    return t;
  }

  static Table tableOf(const QTableWidget* w) {
    Table t;
    for (int c = 0; c < w->columnCount(); ++c) t.columns << (w->horizontalHeaderItem(c) ? w->horizontalHeaderItem(c)->text() : QString());
    for (int r = 0; r < w->rowCount(); ++r) {
      QStringList row;
      for (int c = 0; c < w->columnCount(); ++c) row << (w->item(r, c) ? w->item(r, c)->text() : QString());
      t.rows.push_back(row);
    }
    return t;
  }

  QPushButton *m_run = nullptr, *m_cancel = nullptr;
  QSpinBox* m_chunk = nullptr;
  QCheckBox *m_sweep = nullptr, *m_gpu = nullptr;
  QComboBox *m_a = nullptr, *m_b = nullptr;
  QProgressBar* m_progress = nullptr;
  QLabel* m_status = nullptr;
  QCustomPlot* m_map = nullptr;
  QCPTextElement* m_title = nullptr;
  QCPColorMap* m_cells = nullptr;
  QCPColorScale* m_scale = nullptr;
  QCPItemStraightLine* m_hoverLine = nullptr;
  QTableWidget *m_layerTable = nullptr, *m_runTable = nullptr;
  QCustomPlot *m_time = nullptr, *m_err = nullptr;
  CompareData m_data;
  bool m_running = false;
  bool m_capturing = false;  // a headless capture waits for this comparison
};

}  // namespace

InspectorView* makeCompareView(InspectorContext* context, QWidget* parent) { return new CompareView(context, parent); }

}  // namespace studio
