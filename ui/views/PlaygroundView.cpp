// The SSD playground: a toy one-head, one-channel state-space layer with sliders for A, dt and its
// pattern, the state size and the chunk size, and random, structured or hand-set B and C. M, the
// recurrent state and the chunked computation redraw as the sliders move: the duality from scratch.
#include <qcustomplot.h>
#include <QComboBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "engine/ssd_toy.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotStyle.h"

namespace studio {

namespace {

using mamba::ToyBC;
using mamba::ToyDt;

// A slider over a log scale [lo, hi] in `steps` steps.
struct LogSlider {
  QSlider* slider;
  QLabel* value;
  double lo, hi;
  double get() const { return lo * std::pow(hi / lo, slider->value() / double(slider->maximum())); }
  void set(double v) { slider->setValue(int(std::lround(std::log(v / lo) / std::log(hi / lo) * slider->maximum()))); }
};

class PlaygroundView final : public InspectorView {
 public:
  PlaygroundView(InspectorContext* ctx, QWidget* parent) : InspectorView(ctx, parent) {
    QHBoxLayout* row = controlRow();
    auto* intro =
        new QLabel(tr("A toy state-space layer (one head, one channel) computed three ways: the recurrence, the matrix y = M·x, and "
                      "the chunked algorithm. Move the sliders."),
                   this);
    intro->setWordWrap(true);
    intro->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    row->addWidget(intro, 1);

    auto* controls = new QWidget(this);
    controls->setObjectName(QStringLiteral("playgroundControls"));
    controls->setFixedWidth(270);
    auto* form = new QFormLayout(controls);
    m_T = intSlider(form, tr("tokens T"), 4, 64, 24);
    m_N = intSlider(form, tr("state size N"), 1, 8, 4);
    m_Q = intSlider(form, tr("chunk size Q"), 1, 64, 8);
    m_A = logSlider(form, tr("−A (forgetting)"), 0.01, 5.0, 0.5);
    m_dt = logSlider(form, tr("dt (step)"), 0.01, 2.0, 0.3);
    m_T.slider->setObjectName(QStringLiteral("tokens"));
    m_N.slider->setObjectName(QStringLiteral("stateSize"));
    m_Q.slider->setObjectName(QStringLiteral("chunkSize"));
    m_A.slider->setObjectName(QStringLiteral("forgetting"));
    m_dt.slider->setObjectName(QStringLiteral("dtStep"));
    m_pattern = new QComboBox(controls);
    m_pattern->setObjectName(QStringLiteral("dtPattern"));
    for (ToyDt p : {ToyDt::Constant, ToyDt::Spike, ToyDt::Ramp, ToyDt::Periodic, ToyDt::Random})
      m_pattern->addItem(QString::fromLatin1(mamba::toy_dt_name(p)), int(p));
    form->addRow(tr("dt pattern"), m_pattern);
    m_spike = intSlider(form, tr("spike at"), 0, 63, 12);
    m_bc = new QComboBox(controls);
    m_bc->setObjectName(QStringLiteral("bcChoice"));
    for (ToyBC p : {ToyBC::Random, ToyBC::Ones, ToyBC::OneHot, ToyBC::HandSet})
      m_bc->addItem(QString::fromLatin1(mamba::toy_bc_name(p)), int(p));
    m_bc->setToolTip(
        tr("random: Gaussian; ones: C·B constant, so M is pure decay; one-hot: B_t = C_t = e_(t mod N); hand-set: edit below"));
    form->addRow(tr("B and C"), m_bc);
    m_seed = new QSpinBox(controls);
    m_seed->setRange(1, 9999);
    form->addRow(tr("seed (B, C, x)"), m_seed);
    m_table = new QTableWidget(controls);
    m_table->setObjectName(QStringLiteral("handSet"));
    m_table->setToolTip(tr("B_t and C_t of every token: type values to set them by hand"));
    m_table->verticalHeader()->setDefaultSectionSize(18);
    m_table->horizontalHeader()->setDefaultSectionSize(44);
    form->addRow(m_table);
    m_table->setVisible(false);

    m_matrix = plot(QStringLiteral("toyMatrix"), tr("s (token read)"), tr("t (token written)"));
    m_matrix->yAxis->setRangeReversed(true);
    m_matrix->axisRect()->setBackground(QColor(232, 232, 232));  // the empty upper triangle, apart from M = 0
    m_map = new QCPColorMap(m_matrix->xAxis, m_matrix->yAxis);
    m_map->setInterpolate(false);
    m_scale = new QCPColorScale(m_matrix);
    m_matrix->plotLayout()->addElement(1, 1, m_scale);
    m_scale->axis()->setLabel(tr("M (signed)"));
    m_map->setColorScale(m_scale);
    QCPColorGradient g = divergingGradient();
    g.setNanHandling(QCPColorGradient::nhTransparent);
    m_map->setGradient(g);
    m_state = plot(QStringLiteral("toyState"), tr("token t"), tr("state dimension n"));
    m_stateMap = new QCPColorMap(m_state->xAxis, m_state->yAxis);
    m_stateMap->setInterpolate(false);
    m_stateScale = new QCPColorScale(m_state);
    m_state->plotLayout()->addElement(1, 1, m_stateScale);
    m_stateScale->axis()->setLabel(tr("h_t[n]"));
    m_stateMap->setColorScale(m_stateScale);
    m_stateMap->setGradient(divergingGradient());
    m_outputs = plot(QStringLiteral("toyOutputs"), tr("token t"), tr("y_t"));
    m_outputs->legend->setVisible(true);
    m_outputs->legend->setFont(QFont(font().family(), 8));
    m_outputs->legend->setBrush(QColor(255, 255, 255, 190));
    m_outputs->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignLeft);
    m_dtPlot = plot(QStringLiteral("toyDt"), tr("token t"), tr("dt"));
    m_dtPlot->yAxis2->setVisible(true);
    m_dtPlot->yAxis2->setLabel(tr("decay exp(dt·A)"));
    m_dtPlot->yAxis2->setRange(0, 1.05);

    auto* grid = new QWidget(this);
    auto* gl = new QGridLayout(grid);
    gl->setContentsMargins(0, 0, 0, 0);
    gl->addWidget(m_matrix, 0, 0, 2, 1);
    gl->addWidget(m_outputs, 0, 1);
    gl->addWidget(m_state, 1, 1);
    gl->addWidget(m_dtPlot, 2, 0, 1, 2);
    gl->setColumnStretch(0, 5);
    gl->setColumnStretch(1, 6);
    gl->setRowStretch(0, 3);
    gl->setRowStretch(1, 3);
    gl->setRowStretch(2, 2);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(controls);
    split->addWidget(grid);
    split->setStretchFactor(1, 1);
    layout()->addWidget(split);

    for (QSlider* s : {m_T.slider, m_N.slider, m_Q.slider, m_A.slider, m_dt.slider, m_spike.slider})
      connect(s, &QSlider::valueChanged, this, [this] { update(); });
    connect(m_pattern, &QComboBox::currentIndexChanged, this, [this] { update(); });
    connect(m_bc, &QComboBox::currentIndexChanged, this, [this] {
      if (bc() == ToyBC::HandSet) fillTable();  // start from what was shown
      update();
    });
    connect(m_seed, &QSpinBox::valueChanged, this, [this] { update(); });
    connect(m_table, &QTableWidget::cellChanged, this, [this] {
      if (!m_filling) update();
    });
    connect(m_matrix, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) { hover(e->pos(), e->globalPosition().toPoint()); });
    update();
  }

  QString name() const override { return QStringLiteral("playground"); }
  QString title() const override { return tr("SSD playground"); }

  QList<Exportable> exportables() override {
    Exportable m{QStringLiteral("matrix"), m_matrix, [this] { return matrixTable(); }};
    m.npyValues = [this] { return m_result.M; };
    m.npyShape = {m_result.T, m_result.T};
    return {m,
            {QStringLiteral("outputs"), m_outputs, [this] { return outputsTable(); }},
            {QStringLiteral("state"), m_state, [this] { return stateTable(); }},
            {QStringLiteral("dt"), m_dtPlot, [this] { return outputsTable(); }}};
  }

 private:
  struct IntSlider {
    QSlider* slider;
    QLabel* value;
    int get() const { return slider->value(); }
  };

  IntSlider intSlider(QFormLayout* form, const QString& label, int lo, int hi, int v) {
    auto* w = new QWidget(this);
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    auto* s = new QSlider(Qt::Horizontal, w);
    s->setRange(lo, hi);
    s->setValue(v);
    auto* l = new QLabel(QString::number(v), w);
    l->setMinimumWidth(36);
    connect(s, &QSlider::valueChanged, l, [l](int x) { l->setText(QString::number(x)); });
    h->addWidget(s, 1);
    h->addWidget(l);
    form->addRow(label, w);
    return {s, l};
  }

  LogSlider logSlider(QFormLayout* form, const QString& label, double lo, double hi, double v) {
    auto* w = new QWidget(this);
    auto* h = new QHBoxLayout(w);
    h->setContentsMargins(0, 0, 0, 0);
    auto* s = new QSlider(Qt::Horizontal, w);
    s->setRange(0, 200);
    auto* l = new QLabel(w);
    l->setMinimumWidth(36);
    h->addWidget(s, 1);
    h->addWidget(l);
    form->addRow(label, w);
    LogSlider ls{s, l, lo, hi};
    connect(s, &QSlider::valueChanged, l, [ls] { ls.value->setText(QString::number(ls.get(), 'g', 3)); });
    ls.set(v);
    l->setText(QString::number(ls.get(), 'g', 3));
    return ls;
  }

  QCustomPlot* plot(const QString& name, const QString& x, const QString& y) {
    auto* p = new QCustomPlot(this);
    p->setObjectName(name);
    setUpPlot(p, x, y);
    p->setInteractions({});
    p->setMouseTracking(true);
    auto* t = new QCPTextElement(p, QString(), QFont(font().family(), 9, QFont::Bold));
    p->plotLayout()->insertRow(0);
    p->plotLayout()->addElement(0, 0, t);
    m_titles[p] = t;
    return p;
  }

  ToyBC bc() const { return ToyBC(m_bc->currentData().toInt()); }

  mamba::ToyParams params() const {
    mamba::ToyParams p;
    p.T = m_T.get();
    p.N = m_N.get();
    p.Q = std::min(m_Q.get(), m_T.get());
    p.A = -m_A.get();
    p.dt = m_dt.get();
    p.dt_pattern = ToyDt(m_pattern->currentData().toInt());
    p.spike_at = std::min(m_spike.get(), m_T.get() - 1);
    p.bc = bc();
    p.seed = uint64_t(m_seed->value());
    if (p.bc == ToyBC::HandSet) {
      p.B_hand.assign(size_t(p.T * p.N), 0.0);
      p.C_hand.assign(size_t(p.T * p.N), 0.0);
      for (int64_t t = 0; t < std::min<int64_t>(p.T, m_table->rowCount()); ++t)
        for (int64_t n = 0; n < std::min<int64_t>(p.N, m_table->columnCount() / 2); ++n) {
          p.B_hand[t * p.N + n] = m_table->item(int(t), int(n)) ? m_table->item(int(t), int(n))->text().toDouble() : 0.0;
          p.C_hand[t * p.N + n] = m_table->item(int(t), int(p.N + n)) ? m_table->item(int(t), int(p.N + n))->text().toDouble() : 0.0;
        }
    }
    return p;
  }

  // The hand-set table starts from the B and C last shown.
  void fillTable() {
    m_filling = true;
    const int64_t T = m_result.T, N = m_result.N;
    m_table->setRowCount(int(T));
    m_table->setColumnCount(int(2 * N));
    QStringList head;
    for (int64_t n = 0; n < N; ++n) head << QStringLiteral("B%1").arg(n);
    for (int64_t n = 0; n < N; ++n) head << QStringLiteral("C%1").arg(n);
    m_table->setHorizontalHeaderLabels(head);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        m_table->setItem(int(t), int(n), new QTableWidgetItem(QString::number(m_result.B[t * N + n], 'g', 3)));
        m_table->setItem(int(t), int(N + n), new QTableWidgetItem(QString::number(m_result.C[t * N + n], 'g', 3)));
      }
    m_filling = false;
  }

  void update() {
    m_Q.slider->setMaximum(m_T.get());
    m_spike.slider->setMaximum(m_T.get() - 1);
    m_spike.slider->setEnabled(ToyDt(m_pattern->currentData().toInt()) == ToyDt::Spike);
    m_seed->setEnabled(bc() == ToyBC::Random || ToyDt(m_pattern->currentData().toInt()) == ToyDt::Random);
    m_table->setVisible(bc() == ToyBC::HandSet);
    if (bc() == ToyBC::HandSet && (m_table->rowCount() != m_T.get() || m_table->columnCount() != 2 * m_N.get())) {
      // the shape changed: keep what fits, zeros elsewhere
      m_filling = true;
      m_table->setRowCount(m_T.get());
      m_table->setColumnCount(2 * m_N.get());
      m_filling = false;
    }
    try {
      m_result = mamba::run_toy(params());
    } catch (const std::exception& e) {
      m_titles[m_matrix]->setText(QString::fromStdString(e.what()));
      m_matrix->replot();
      return;
    }
    drawMatrix();
    drawState();
    drawOutputs();
    drawDt();
  }

  void chunkGrid(QCustomPlot* p, bool both) {
    for (QCPAbstractItem* it : m_grid.value(p)) p->removeItem(it);
    QList<QCPAbstractItem*> items;
    const int64_t T = m_result.T, Q = m_result.Q;
    for (int64_t b = Q; b < T; b += Q) {
      auto* v = new QCPItemStraightLine(p);
      v->point1->setCoords(double(b) - 0.5, 0);
      v->point2->setCoords(double(b) - 0.5, 1);
      v->setPen(QPen(QColor(255, 140, 0), 1.5, Qt::DashLine));
      items << v;
      if (both) {
        auto* h = new QCPItemStraightLine(p);
        h->point1->setCoords(0, double(b) - 0.5);
        h->point2->setCoords(1, double(b) - 0.5);
        h->setPen(QPen(QColor(255, 140, 0), 1.5, Qt::DashLine));
        items << h;
      }
    }
    m_grid[p] = items;
  }

  void drawMatrix() {
    const int64_t T = m_result.T;
    auto* d = m_map->data();
    d->setSize(int(T), int(T));
    d->setRange(QCPRange(0, double(std::max<int64_t>(T - 1, 1))), QCPRange(0, double(std::max<int64_t>(T - 1, 1))));
    double peak = 0;
    for (double v : m_result.M) peak = std::max(peak, std::abs(v));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < T; ++s) d->setCell(int(s), int(t), s <= t ? m_result.M[t * T + s] : std::nan(""));
    m_map->setDataRange(QCPRange(-std::max(peak, 1e-12), std::max(peak, 1e-12)));
    m_matrix->xAxis->setRange(-0.5, double(T) - 0.5);
    m_matrix->yAxis->setRange(-0.5, double(T) - 0.5);
    chunkGrid(m_matrix, true);
    m_titles[m_matrix]->setText(tr("M[t,s] = (C_t·B_s) · exp(Σ dt·A) · dt_s — chunks of %1").arg(m_result.Q));
    m_matrix->replot(QCustomPlot::rpQueuedReplot);
  }

  void drawState() {
    const int64_t T = m_result.T, N = m_result.N;
    auto* d = m_stateMap->data();
    d->setSize(int(T), int(N));
    d->setRange(QCPRange(0, double(std::max<int64_t>(T - 1, 1))), QCPRange(0, double(std::max<int64_t>(N - 1, 1))));
    double peak = 0;
    for (double v : m_result.h) peak = std::max(peak, std::abs(v));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) d->setCell(int(t), int(n), m_result.h[t * N + n]);
    m_stateMap->setDataRange(QCPRange(-std::max(peak, 1e-12), std::max(peak, 1e-12)));
    m_state->xAxis->setRange(-0.5, double(T) - 0.5);
    m_state->yAxis->setRange(-0.5, double(N) - 0.5);
    chunkGrid(m_state, false);
    m_titles[m_state]->setText(tr("State h_t = exp(dt·A)·h_(t−1) + dt·x_t·B_t: all the past it keeps"));
    m_state->replot(QCustomPlot::rpQueuedReplot);
  }

  void drawOutputs() {
    m_outputs->clearGraphs();
    const int64_t T = m_result.T;
    QVector<double> x(T);
    for (int64_t t = 0; t < T; ++t) x[t] = double(t);
    auto line = [&](const std::vector<double>& v, const QString& name, const QPen& pen, QCPScatterStyle sc = {}) {
      QCPGraph* g = m_outputs->addGraph();
      g->setName(name);
      g->setPen(pen);
      g->setScatterStyle(sc);
      g->setData(x, QVector<double>(v.begin(), v.end()), true);
    };
    line(m_result.y_diag, tr("chunked step 1: inside the chunk"), QPen(QColor(150, 150, 150), 1));
    line(m_result.y_off, tr("chunked step 4: from the state handed in"), QPen(QColor(120, 180, 120), 1));
    line(m_result.y_recurrent, tr("recurrence: h_t · C_t"), QPen(QColor(0x31688e), 3));
    line(m_result.y_matrix, tr("matrix: (M x)_t"), QPen(QColor(230, 90, 20), 1.5, Qt::DashLine));
    const std::vector<double> yc = m_result.y_chunked();
    line(yc, tr("chunked: step 1 + step 4"), QPen(Qt::NoPen), QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(20, 20, 20), 4));
    const double diff = m_result.max_disagreement();
    m_outputs->rescaleAxes();
    m_outputs->xAxis->setRange(-0.5, double(T) - 0.5);
    m_outputs->yAxis->scaleRange(1.2, m_outputs->yAxis->range().center());
    chunkGrid(m_outputs, false);
    m_titles[m_outputs]->setText(tr("y three ways — largest difference %1").arg(diff, 0, 'e', 1));
    m_outputs->replot(QCustomPlot::rpQueuedReplot);
  }

  void drawDt() {
    m_dtPlot->clearPlottables();
    const int64_t T = m_result.T;
    QVector<double> x(T);
    for (int64_t t = 0; t < T; ++t) x[t] = double(t);
    const QVector<double> dt(m_result.dt.begin(), m_result.dt.end()), decay(m_result.decay.begin(), m_result.decay.end());
    const double A = -m_A.get();
    auto* bars = new QCPBars(m_dtPlot->xAxis, m_dtPlot->yAxis);
    bars->setName(tr("dt"));
    bars->setData(x, dt, true);
    bars->setBrush(QColor(0x31688e));
    bars->setPen(Qt::NoPen);
    bars->setWidth(0.7);
    QCPGraph* g = m_dtPlot->addGraph(m_dtPlot->xAxis, m_dtPlot->yAxis2);
    g->setName(tr("decay exp(dt·A)"));
    g->setPen(QPen(QColor(230, 90, 20), 2));
    g->setData(x, decay, true);
    m_dtPlot->xAxis->setRange(-0.5, double(T) - 0.5);
    m_dtPlot->yAxis->rescale();
    m_dtPlot->yAxis->setRange(0, m_dtPlot->yAxis->range().upper * 1.15);
    m_titles[m_dtPlot]->setText(
        tr("dt (%1) and the share of the state each token keeps, A = %2").arg(m_pattern->currentText()).arg(A, 0, 'g', 3));
    m_dtPlot->replot(QCustomPlot::rpQueuedReplot);
  }

  void hover(const QPoint& at, const QPoint& global) {
    const int64_t T = m_result.T;
    const int64_t s = std::llround(m_matrix->xAxis->pixelToCoord(at.x())), t = std::llround(m_matrix->yAxis->pixelToCoord(at.y()));
    if (s < 0 || t < 0 || s >= T || t >= T) return QToolTip::hideText();
    if (s > t)
      return QToolTip::showText(global, tr("t = %1, s = %2: above the diagonal, M = 0 (the future is not read)").arg(t).arg(s), m_matrix);
    QToolTip::showText(global,
                       tr("t = %1 reads s = %2<br><b>M = %3</b><br>= C_t·B_s %4 × exp(Σ dt·A) %5 × dt_s %6")
                           .arg(t)
                           .arg(s)
                           .arg(m_result.M[t * T + s], 0, 'g', 5)
                           .arg(m_result.cb(t, s), 0, 'g', 4)
                           .arg(m_result.decay_between(t, s), 0, 'g', 4)
                           .arg(m_result.dt[s], 0, 'g', 4),
                       m_matrix);
  }

  Table matrixTable() const {
    Table tb;
    tb.columns << QStringLiteral("t");
    for (int64_t s = 0; s < m_result.T; ++s) tb.columns << QStringLiteral("s%1").arg(s);
    for (int64_t t = 0; t < m_result.T; ++t) {
      QStringList row{QString::number(t)};
      for (int64_t s = 0; s < m_result.T; ++s) row << QString::number(m_result.M[t * m_result.T + s], 'g', 17);
      tb.rows.push_back(row);
    }
    return tb;
  }

  Table outputsTable() const {
    Table tb;
    tb.columns = {QStringLiteral("t"),        QStringLiteral("dt"),           QStringLiteral("x"),          QStringLiteral("y_recurrent"),
                  QStringLiteral("y_matrix"), QStringLiteral("y_chunk_diag"), QStringLiteral("y_chunk_off")};
    for (int64_t t = 0; t < m_result.T; ++t)
      tb.rows.push_back({QString::number(t), QString::number(m_result.dt[t], 'g', 17), QString::number(m_result.x[t], 'g', 17),
                         QString::number(m_result.y_recurrent[t], 'g', 17), QString::number(m_result.y_matrix[t], 'g', 17),
                         QString::number(m_result.y_diag[t], 'g', 17), QString::number(m_result.y_off[t], 'g', 17)});
    return tb;
  }

  Table stateTable() const {
    Table tb;
    tb.columns << QStringLiteral("t");
    for (int64_t n = 0; n < m_result.N; ++n) tb.columns << QStringLiteral("h%1").arg(n);
    for (int64_t t = 0; t < m_result.T; ++t) {
      QStringList row{QString::number(t)};
      for (int64_t n = 0; n < m_result.N; ++n) row << QString::number(m_result.h[t * m_result.N + n], 'g', 17);
      tb.rows.push_back(row);
    }
    return tb;
  }

  IntSlider m_T{}, m_N{}, m_Q{}, m_spike{};
  LogSlider m_A{}, m_dt{};
  QComboBox *m_pattern = nullptr, *m_bc = nullptr;
  QSpinBox* m_seed = nullptr;
  QTableWidget* m_table = nullptr;
  bool m_filling = false;
  QCustomPlot *m_matrix = nullptr, *m_state = nullptr, *m_outputs = nullptr, *m_dtPlot = nullptr;
  QCPColorMap *m_map = nullptr, *m_stateMap = nullptr;
  QCPColorScale *m_scale = nullptr, *m_stateScale = nullptr;
  QMap<QCustomPlot*, QCPTextElement*> m_titles;
  QMap<QCustomPlot*, QList<QCPAbstractItem*>> m_grid;
  mamba::ToyResult m_result;
};

}  // namespace

InspectorView* makePlaygroundView(InspectorContext* context, QWidget* parent) { return new PlaygroundView(context, parent); }

}  // namespace studio
