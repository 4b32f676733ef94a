// The SSD matrix view: the state-space / attention duality drawn from the live model. One layer and
// head's semiseparable matrix M over the text (y = M x + D x), its factors on hover, the chunked
// algorithm's block decomposition with each off-diagonal block's rank, the four steps one by one with
// their FLOPs, and the duality checked against the scan's own output.
#include <qcustomplot.h>
#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "ui/EngineWorker.h"
#include "ui/MatrixTypes.h"
#include "ui/views/InspectorContext.h"
#include "ui/views/InspectorView.h"
#include "ui/views/PlotStyle.h"

namespace studio {

namespace {

using mamba::MatrixColour;

QString flopsText(int64_t f) {
  if (f >= 1000000000) return QString::number(double(f) / 1e9, 'f', 2) + QStringLiteral(" GFLOP");
  if (f >= 1000000) return QString::number(double(f) / 1e6, 'f', 2) + QStringLiteral(" MFLOP");
  if (f >= 1000) return QString::number(double(f) / 1e3, 'f', 1) + QStringLiteral(" kFLOP");
  return QString::number(f) + QStringLiteral(" FLOP");
}

// The chunked algorithm's steps (ssd_minimal's numbering), as the view highlights them.
const char* kStepNames[] = {"", "1. diagonal blocks", "2. chunk states", "3. state passing", "4. off-diagonal outputs"};
const char* kStepHelp[] = {
    "",
    "Each chunk's own block of M, computed densely like attention: (L ∘ C·Bᵀ) · (dt·x).",
    "Each chunk sums its tokens into a state: S_c = Σ_s exp(Σ dt·A to the chunk's end) dt_s x_s B_sᵀ — the columns of "
    "the blocks below each diagonal block, compressed to rank ≤ d_state.",
    "The states pass from chunk to chunk, decaying: S_in(c+1) = exp(Σ dt·A over chunk c) · S_in(c) + S_c — the decay that "
    "links every block to the ones above it.",
    "Each chunk reads the state it was handed: y_off[t] = exp(cum_a[t]) · S_in(c) · C_t — the rows of every block left of "
    "the diagonal.",
};

class SsdMatrixView final : public InspectorView {
 public:
  SsdMatrixView(InspectorContext* ctx, QWidget* parent) : InspectorView(ctx, parent) {
    QHBoxLayout* row = controlRow();
    m_layer = new QComboBox(this);
    m_layer->setObjectName(QStringLiteral("layerChoice"));
    m_head = new QComboBox(this);
    m_head->setObjectName(QStringLiteral("headChoice"));
    m_head->setToolTip(tr("Heads of one group read the same B and C: their matrices share C·B and differ in dt and A"));
    m_colour = new QComboBox(this);
    m_colour->setObjectName(QStringLiteral("colourMode"));
    m_colour->addItem(tr("log10 |M|"), int(MatrixColour::Log10Abs));
    m_colour->addItem(tr("signed M"), int(MatrixColour::Signed));
    m_colour->addItem(tr("row-normalised |M|"), int(MatrixColour::RowNormalised));
    m_floor = new QSpinBox(this);
    m_floor->setRange(-16, -1);
    m_floor->setValue(-8);
    m_floor->setPrefix(tr("floor 1e"));
    m_floor->setToolTip(tr("log10 mode: values below this fraction of the largest |M| share the lowest colour"));
    m_chunk = new QSpinBox(this);
    m_chunk->setObjectName(QStringLiteral("chunkSize"));
    m_chunk->setRange(1, int(EngineWorker::kMaxMatrixTokens));
    m_chunk->setPrefix(tr("Q = "));
    m_chunk->setToolTip(tr("Chunk size of the block overlay (the model's by default): the grid, and each off-diagonal block's rank"));
    m_overlay = new QCheckBox(tr("chunks"), this);
    m_overlay->setObjectName(QStringLiteral("chunkOverlay"));
    m_overlay->setChecked(true);
    m_prev = new QPushButton(QStringLiteral("◀"), this);
    m_next = new QPushButton(QStringLiteral("▶"), this);
    for (QPushButton* b : {m_prev, m_next}) b->setFixedWidth(32);
    m_prev->setToolTip(tr("Previous step of the chunked algorithm"));
    m_next->setToolTip(tr("Next step of the chunked algorithm"));
    m_stepLabel = new QLabel(tr("steps"), this);
    m_compute = new QPushButton(tr("Compute"), this);
    m_compute->setObjectName(QStringLiteral("compute"));
    m_compute->setToolTip(tr("Build M for this layer and head over the current text (float64, on the engine's thread)"));
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setEnabled(false);
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1000);
    m_progress->setMaximumWidth(120);
    m_progress->setTextVisible(false);
    m_progress->setVisible(false);
    for (QComboBox* c : {m_layer, m_head, m_colour}) c->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    for (QWidget* w :
         std::initializer_list<QWidget*>{new QLabel(tr("Layer"), this), m_layer, new QLabel(tr("Head"), this), m_head, m_colour, m_floor,
                                         m_overlay, m_chunk, m_prev, m_stepLabel, m_next, m_compute, m_cancel, m_progress})
      row->addWidget(w);
    row->addStretch(1);

    m_plot = new QCustomPlot(this);
    m_plot->setObjectName(QStringLiteral("matrix"));
    setUpPlot(m_plot, tr("s (token read)"), tr("t (token written)"));
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->axisRect()->setRangeDrag(Qt::Horizontal | Qt::Vertical);
    m_plot->axisRect()->setRangeZoom(Qt::Horizontal | Qt::Vertical);
    m_plot->yAxis->setRangeReversed(true);
    m_plot->axisRect()->setBackground(QColor(232, 232, 232));  // the causal upper triangle, apart from M = 0
    m_title = new QCPTextElement(m_plot, tr("Compute the matrix of a layer and head"), QFont(font().family(), 9, QFont::Bold));
    m_plot->plotLayout()->insertRow(0);
    m_plot->plotLayout()->addElement(0, 0, m_title);
    m_map = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
    m_map->setInterpolate(false);
    m_scale = new QCPColorScale(m_plot);
    m_plot->plotLayout()->addElement(1, 1, m_scale);
    m_map->setColorScale(m_scale);
    auto* group = new QCPMarginGroup(m_plot);
    m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
    m_plot->addLayer(QStringLiteral("blocks"), m_plot->layer(QStringLiteral("main")), QCustomPlot::limAbove);
    m_hoverRow = addLine(Qt::Horizontal);
    m_hoverCol = addLine(Qt::Vertical);

    m_info = new QLabel(this);
    m_info->setObjectName(QStringLiteral("info"));
    m_info->setWordWrap(true);
    m_info->setTextFormat(Qt::RichText);
    m_info->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    m_duality = new QCustomPlot(this);
    m_duality->setObjectName(QStringLiteral("duality"));
    setUpPlot(m_duality, tr("token"), tr("y (channel p)"));
    m_duality->legend->setVisible(true);
    m_duality->legend->setFont(QFont(font().family(), 8));
    m_dualityTitle = new QCPTextElement(m_duality, QString(), QFont(font().family(), 9, QFont::Bold));
    m_duality->plotLayout()->insertRow(0);
    m_duality->plotLayout()->addElement(0, 0, m_dualityTitle);
    m_channel = new QSpinBox(this);
    m_channel->setPrefix(tr("channel p = "));
    auto* side = new QWidget(this);
    auto* sl = new QVBoxLayout(side);
    sl->setContentsMargins(4, 0, 0, 0);
    sl->addWidget(m_info, 3);
    sl->addWidget(m_channel);
    sl->addWidget(m_duality, 4);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_plot);
    split->addWidget(side);
    split->setSizes({900, 420});
    layout()->addWidget(split);

    connect(m_compute, &QPushButton::clicked, this, [this] { request(false); });
    connect(m_cancel, &QPushButton::clicked, this, [this] {
      if (EngineWorker* w = context()->worker()) w->requestCancelMatrix();
    });
    connect(m_layer, &QComboBox::currentIndexChanged, this, [this] { autoRequest(); });
    connect(m_head, &QComboBox::currentIndexChanged, this, [this] { autoRequest(); });
    connect(m_colour, &QComboBox::currentIndexChanged, this, [this] { redrawMatrix(); });
    connect(m_floor, &QSpinBox::valueChanged, this, [this] { redrawMatrix(); });
    connect(m_overlay, &QCheckBox::toggled, this, [this] { redrawBlocks(); });
    connect(m_chunk, &QSpinBox::valueChanged, this, [this] {
      if (m_result.matrix && m_chunk->value() != m_result.chunk) request(true);
    });
    connect(m_prev, &QPushButton::clicked, this, [this] { setStep((m_step + 4) % 5); });
    connect(m_next, &QPushButton::clicked, this, [this] { setStep((m_step + 1) % 5); });
    connect(m_channel, &QSpinBox::valueChanged, this, [this] { redrawDuality(); });
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) { onHover(e->pos(), e->globalPosition().toPoint()); });
    connect(m_plot, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
      const qint64 t = qint64(std::llround(m_plot->yAxis->pixelToCoord(e->pos().y())));
      if (m_result.matrix && t >= 0 && t < m_result.T && e->button() == Qt::LeftButton) context()->select(t);
    });
    connect(m_plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { updateRankLabels(); });
    connect(ctx, &InspectorContext::modelChanged, this, &SsdMatrixView::onModel);
    connect(ctx, &InspectorContext::sequenceReset, this, [this] { setStale(tr("the text changed: press Compute")); });
    connect(ctx, &InspectorContext::hoveredChanged, this, &SsdMatrixView::onHovered);
    if (EngineWorker* w = ctx->worker()) {
      connect(w, &EngineWorker::matrixProgress, this,
              [this](int done, int total) { m_progress->setValue(1000 * done / std::max(1, total)); });
      connect(w, &EngineWorker::matrixReady, this, &SsdMatrixView::onResult);
      connect(w, &EngineWorker::matrixFailed, this, [this](const QString& e) {
        busy(false);
        m_title->setText(tr("No matrix: %1").arg(e));
        m_plot->replot();
        if (m_capturing) emit captureReady();
      });
    }
    if (ctx->hasModel()) onModel();
    setStep(0);
  }

  QString name() const override { return QStringLiteral("ssd"); }
  QString title() const override { return tr("SSD matrix"); }

  QList<Exportable> exportables() override {
    Exportable m{QStringLiteral("matrix"), m_plot, [this] { return matrixTable(); }};
    if (m_result.matrix) {
      m.npyValues = [this] { return m_result.matrix->M; };
      m.npyShape = {m_result.T, m_result.T};
    }
    return {m, {QStringLiteral("duality"), m_duality, [this] { return dualityTable(); }}};
  }

  // --layer, --head, --chunk, --colour (log, signed, rows), --step: compute, then captureReady().
  bool prepareCapture(const QMap<QString, QString>& o) override {
    const QSignalBlocker b1(m_layer), b2(m_head), b3(m_chunk), b4(m_colour);
    if (o.contains(QStringLiteral("layer"))) m_layer->setCurrentIndex(o.value(QStringLiteral("layer")).toInt());
    if (o.contains(QStringLiteral("head"))) m_head->setCurrentIndex(o.value(QStringLiteral("head")).toInt());
    if (o.contains(QStringLiteral("chunk"))) m_chunk->setValue(o.value(QStringLiteral("chunk")).toInt());
    const QString c = o.value(QStringLiteral("colour"));
    if (c == QLatin1String("signed")) m_colour->setCurrentIndex(1);
    else if (c == QLatin1String("rows")) m_colour->setCurrentIndex(2);
    if (o.contains(QStringLiteral("step"))) m_step = std::clamp(o.value(QStringLiteral("step")).toInt(), 0, 4);
    m_capturing = true;
    request(false);
    return true;
  }

 private:
  QCPItemStraightLine* addLine(Qt::Orientation o) {
    auto* l = new QCPItemStraightLine(m_plot);
    l->setPen(QPen(QColor(220, 30, 30, 170), 1, Qt::DashLine));
    l->setVisible(false);
    l->setProperty("orientation", int(o));
    return l;
  }

  void onModel() {
    const ModelInfo& info = context()->model();
    const QSignalBlocker b1(m_layer), b2(m_head), b3(m_chunk);
    m_layer->clear();
    for (qint64 l = 0; l < info.layers; ++l) m_layer->addItem(tr("layer %1").arg(l));
    m_head->clear();
    const qint64 per = info.groups > 0 ? info.heads / info.groups : info.heads;
    for (qint64 h = 0; h < info.heads; ++h) m_head->addItem(tr("head %1 · group %2").arg(h).arg(per ? h / per : 0));
    m_chunk->setValue(int(std::clamp<qint64>(info.chunkSize, 1, EngineWorker::kMaxMatrixTokens)));
    m_result = MatrixResult{};
    for (QCPAxis* a : {m_plot->xAxis, m_plot->yAxis}) {
      a->setTicker(QSharedPointer<QCPAxisTicker>(new TokenTicker(a, [this](qint64 pos) { return context()->tokenLabel(pos, 10); })));
    }
    m_plot->xAxis->setTickLabelRotation(-60);
    m_duality->xAxis->setTicker(
        QSharedPointer<QCPAxisTicker>(new TokenTicker(m_duality->xAxis, [this](qint64 pos) { return context()->tokenLabel(pos); })));
    m_duality->xAxis->setTickLabelRotation(-60);
    setStale(tr("Compute the matrix of a layer and head"));
  }

  void setStale(const QString& why) {
    m_title->setText(why);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
  }

  void autoRequest() {
    if (m_result.matrix) request(false);  // once a matrix is shown, changing layer or head recomputes
  }

  void request(bool ranksOnly) {
    EngineWorker* w = context()->worker();
    if (!w) return;
    MatrixRequest r;
    r.layer = std::max(0, m_layer->currentIndex());
    r.head = std::max(0, m_head->currentIndex());
    r.chunk = m_chunk->value();
    r.ranksOnly = ranksOnly;
    busy(true);
    QMetaObject::invokeMethod(w, "computeMatrix", Qt::QueuedConnection, Q_ARG(studio::MatrixRequest, r));
  }

  void busy(bool on) {
    m_cancel->setEnabled(on);
    m_progress->setVisible(on);
    m_compute->setEnabled(!on);
    if (on) {
      m_progress->setValue(0);
      m_title->setText(tr("Computing M for layer %1, head %2…").arg(m_layer->currentIndex()).arg(m_head->currentIndex()));
      m_plot->replot(QCustomPlot::rpQueuedReplot);
    }
  }

  void onResult(const MatrixResult& r) {
    busy(false);
    const bool same = m_result.matrix == r.matrix;
    m_result = r;
    {
      const QSignalBlocker b(m_chunk);
      m_chunk->setValue(int(r.chunk));
    }
    const qint64 P = context()->model().headDim;
    m_channel->setRange(0, int(std::max<qint64>(P - 1, 0)));
    if (!same) {
      redrawMatrix();
      m_plot->xAxis->setRange(-0.5, double(r.T) - 0.5);
      m_plot->yAxis->setRange(-0.5, double(r.T) - 0.5);
    }
    setStep(m_step);
    redrawDuality();
    if (m_capturing) {
      m_capturing = false;
      emit captureReady();
    }
  }

  MatrixColour colour() const { return MatrixColour(m_colour->currentData().toInt()); }

  void redrawMatrix() {
    if (!m_result.matrix) return;
    const MatrixColour c = colour();
    const mamba::MatrixImage img = mamba::matrix_image(*m_result.matrix, c, std::pow(10.0, m_floor->value()), 2048);
    m_floor->setEnabled(c == MatrixColour::Log10Abs);
    auto* d = m_map->data();
    const qint64 n = img.cells, k = img.stride;
    d->setSize(int(n), int(n));
    // cell i covers tokens [i k, (i + 1) k): its centre sits there
    const double c0 = (k - 1) / 2.0, c1 = double((n - 1) * k) + (k - 1) / 2.0;
    d->setRange(QCPRange(c0, std::max(c1, c0 + 1e-9)), QCPRange(c0, std::max(c1, c0 + 1e-9)));
    for (qint64 i = 0; i < n; ++i)
      for (qint64 j = 0; j < n; ++j) d->setCell(int(j), int(i), img.v[size_t(i * n + j)]);
    QCPColorGradient g = c == MatrixColour::Signed ? divergingGradient() : sequentialGradient();
    g.setNanHandling(QCPColorGradient::nhTransparent);  // the upper triangle
    m_map->setGradient(g);
    m_map->setDataRange(QCPRange(img.lo, img.hi > img.lo ? img.hi : img.lo + 1));
    const QString mode = m_colour->currentText();
    m_scale->axis()->setLabel(c == MatrixColour::Log10Abs ? tr("log10 |M|")
                              : c == MatrixColour::Signed ? tr("M (signed)")
                                                          : tr("|M| / row max"));
    QString title = tr("M = (C·B) · exp(Σ dt·A) · dt — layer %1, head %2 (group %3), %4 tokens — %5")
                        .arg(m_result.layer)
                        .arg(m_result.head)
                        .arg(m_result.group)
                        .arg(m_result.T)
                        .arg(mode);
    if (k > 1) title += tr(" — shown in %1×%1 blocks (largest |M| of each)").arg(k);
    if (m_result.textTokens > m_result.T) title += tr(" — the first %1 of %2 tokens").arg(m_result.T).arg(m_result.textTokens);
    m_title->setText(title);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
  }

  // The chunk grid, the diagonal / off-diagonal shading, the ranks and the highlighted step.
  void redrawBlocks() {
    for (QCPAbstractItem* it : m_blockItems) m_plot->removeItem(it);
    m_blockItems.clear();
    m_rankLabels.clear();
    const qint64 T = m_result.T, Q = m_result.chunk;
    if (!m_result.matrix || !m_overlay->isChecked() || Q < 1) {
      m_plot->replot(QCustomPlot::rpQueuedReplot);
      return;
    }
    const qint64 nc = (T + Q - 1) / Q;
    if (nc > 96) {
      m_title->setText(m_title->text().section(QStringLiteral(" — chunk grid"), 0, 0) +
                       tr(" — chunk grid hidden: %1 chunks (Q ≥ %2 shows it)").arg(nc).arg((T + 95) / 96));
      m_plot->replot(QCustomPlot::rpQueuedReplot);
      return;
    }
    m_plot->setCurrentLayer(QStringLiteral("blocks"));
    auto rect = [&](qint64 i, qint64 j, const QColor& fill, const QPen& pen) {
      auto* r = new QCPItemRect(m_plot);
      r->topLeft->setCoords(double(j * Q) - 0.5, double(i * Q) - 0.5);
      r->bottomRight->setCoords(double(std::min(T, (j + 1) * Q)) - 0.5, double(std::min(T, (i + 1) * Q)) - 0.5);
      r->setBrush(fill);
      r->setPen(pen);
      r->setSelectable(false);
      m_blockItems << r;
      return r;
    };
    const QColor diagFill(255, 255, 255, 0), offFill(255, 255, 255, 0);
    const QPen grid(QColor(255, 255, 255, 150), 1), diagPen(QColor(255, 140, 0, 230), 2);
    const QColor hi(255, 60, 60, 45), hiSoft(255, 200, 0, 45);
    for (qint64 i = 0; i < nc; ++i)
      for (qint64 j = 0; j <= i; ++j) {
        const bool diag = i == j;
        QColor fill = diag ? diagFill : offFill;
        // the step being explained
        if (m_step == 1 && diag) fill = hi;
        if (m_step == 2 && !diag) fill = hiSoft;   // each column strip below a diagonal block: B side
        if (m_step == 3 && i == j + 1) fill = hi;  // the hand-over from chunk j to j + 1
        if (m_step == 3 && i > j + 1) fill = QColor(255, 200, 0, 25);
        if (m_step == 4 && !diag) fill = hi;
        rect(i, j, fill, diag ? diagPen : grid);
        if (!diag && !m_result.ranks.isEmpty()) {
          auto* t = new QCPItemText(m_plot);
          t->position->setCoords((double(j * Q) + double(std::min(T, (j + 1) * Q))) / 2 - 0.5,
                                 (double(i * Q) + double(std::min(T, (i + 1) * Q))) / 2 - 0.5);
          const int r = m_result.ranks.value(int(i * nc + j), -1);
          t->setText(r >= 0 ? QString::number(r) : QStringLiteral("?"));
          t->setColor(Qt::white);
          t->setBrush(QColor(20, 20, 20, 150));  // readable on light and dark cells alike
          t->setPadding(QMargins(3, 1, 3, 1));
          t->setFont(QFont(font().family(), 9, QFont::Bold));
          t->setSelectable(false);
          m_blockItems << t;
          m_rankLabels << t;
        }
      }
    m_plot->setCurrentLayer(QStringLiteral("main"));
    updateRankLabels();
    m_plot->replot(QCustomPlot::rpQueuedReplot);
  }

  // Ranks are written only where a block is big enough on screen to hold the number.
  void updateRankLabels() {
    if (m_rankLabels.isEmpty() || m_result.chunk < 1) return;
    const double px = std::abs(m_plot->xAxis->coordToPixel(double(m_result.chunk)) - m_plot->xAxis->coordToPixel(0));
    for (QCPItemText* t : m_rankLabels) t->setVisible(px >= 22);
  }

  void setStep(int step) {
    m_step = step;
    m_stepLabel->setText(step == 0 ? tr("steps") : tr("step %1/4").arg(step));
    redrawBlocks();
    updateInfo();
  }

  void updateInfo() {
    if (!m_result.matrix) {
      m_info->setText(
          tr("<p>Dao &amp; Gu's duality: a Mamba-2 layer's scan is <b>y = M·x + D·x</b> with a lower-triangular "
             "semiseparable M. Press <b>Compute</b> to build M from the values this layer used on the current text.</p>"));
      return;
    }
    const mamba::SsdFlops& f = m_result.flops;
    const ModelInfo& info = context()->model();
    QString s;
    s += tr("<p><b>Layer %1, head %2</b> · group %3 (B and C shared with heads %4) · A = %5 · D = %6 · T = %7 · d_state N = %8</p>")
             .arg(m_result.layer)
             .arg(m_result.head)
             .arg(m_result.group)
             .arg(groupText())
             .arg(m_result.matrix->A, 0, 'g', 4)
             .arg(m_result.matrix->D, 0, 'g', 4)
             .arg(m_result.T)
             .arg(info.dState);
    int maxRank = -1;
    for (int r : m_result.ranks) maxRank = std::max(maxRank, r);
    s += tr("<p>Chunks of Q = %1: every block below the diagonal has rank ≤ N = %2 (largest here: <b>%3</b>) — the state is "
            "all that passes between chunks.</p>")
             .arg(m_result.chunk)
             .arg(info.dState)
             .arg(maxRank);
    if (m_step > 0) s += QStringLiteral("<p><b>%1</b>: %2</p>").arg(tr(kStepNames[m_step]), tr(kStepHelp[m_step]));
    s += tr("<p>FLOPs of this head for T = %1, Q = %2:</p><table cellspacing=0 cellpadding=1>").arg(m_result.T).arg(m_result.chunk);
    const int64_t steps[] = {0, f.diagonal, f.states, f.passing, f.offdiagonal};
    for (int i = 1; i <= 4; ++i) {
      const bool cur = i == m_step;
      s += QStringLiteral("<tr><td>%1%2%3</td><td align=right>&nbsp;%1%4%3</td></tr>")
               .arg(cur ? QStringLiteral("<b>") : QString(), tr(kStepNames[i]), cur ? QStringLiteral("</b>") : QString(),
                    flopsText(steps[i]));
    }
    s += tr("<tr><td>chunked, all four</td><td align=right>&nbsp;%1</td></tr>").arg(flopsText(f.chunked()));
    s += tr("<tr><td>recurrent scan</td><td align=right>&nbsp;%1</td></tr>").arg(flopsText(f.recurrent));
    s += tr("<tr><td>attention over M</td><td align=right>&nbsp;%1</td></tr></table>").arg(flopsText(f.attention));
    s += tr("<p>Built in %1 s (float64).</p>").arg(m_result.seconds, 0, 'f', 2);
    m_info->setText(s);
  }

  QString groupText() const {
    if (m_result.sharing.isEmpty()) return {};
    return m_result.sharing.size() == 1 ? tr("none") : QStringLiteral("%1–%2").arg(m_result.sharing.first()).arg(m_result.sharing.last());
  }

  void redrawDuality() {
    m_duality->clearGraphs();
    const qint64 P = context()->model().headDim, T = m_result.T, p = m_channel->value();
    if (!m_result.matrix || m_result.yScan.size() != T * P) {
      m_dualityTitle->setText(tr("The duality, checked: M·x + D·x against the scan"));
      m_duality->replot(QCustomPlot::rpQueuedReplot);
      return;
    }
    QVector<double> x(T), ys(T), ym(T);
    for (qint64 t = 0; t < T; ++t) {
      x[t] = double(t);
      ys[t] = m_result.yScan[t * P + p];
      ym[t] = m_result.yMatrix[t * P + p];
    }
    QCPGraph* a = m_duality->addGraph();
    a->setName(tr("scan output y (the engine's)"));
    a->setPen(QPen(QColor(0x31688e), 2.5));
    a->setData(x, ys, true);
    QCPGraph* b = m_duality->addGraph();
    b->setName(tr("M·x + D·x (float64)"));
    b->setPen(QPen(QColor(230, 90, 20), 1.4, Qt::DashLine));
    b->setData(x, ym, true);
    m_duality->rescaleAxes();
    m_duality->yAxis->scaleRange(1.15, m_duality->yAxis->range().center());
    m_dualityTitle->setText(tr("‖M·x + D·x − y‖ / ‖y‖ = %1 (all %2 channels)").arg(m_result.dualityError, 0, 'e', 2).arg(P));
    m_duality->replot(QCustomPlot::rpQueuedReplot);
  }

  void onHover(const QPoint& at, const QPoint& global) {
    if (!m_result.matrix) return;
    const qint64 s = qint64(std::llround(m_plot->xAxis->pixelToCoord(at.x()))),
                 t = qint64(std::llround(m_plot->yAxis->pixelToCoord(at.y())));
    const qint64 T = m_result.T;
    if (s < 0 || t < 0 || s >= T || t >= T) {
      QToolTip::hideText();
      return;
    }
    context()->hover(t);
    const mamba::SsdMatrix& m = *m_result.matrix;
    QString text = tr("row t = %1 “%2” reads column s = %3 “%4”<br>")
                       .arg(t)
                       .arg(context()->tokenLabel(t, 24).toHtmlEscaped())
                       .arg(s)
                       .arg(context()->tokenLabel(s, 24).toHtmlEscaped());
    if (s > t) {
      text += tr("above the diagonal: M = 0 (causal)");
    } else {
      text += tr("<b>M[t,s] = %1</b><br>= C_t·B_s %2<br>× exp(Σ dt·A) %3<br>× dt_s %4")
                  .arg(m.at(t, s), 0, 'g', 6)
                  .arg(m.cb(*m_result.capture, t, s), 0, 'g', 6)
                  .arg(m.decay(t, s), 0, 'g', 6)
                  .arg(m.dt(*m_result.capture, s), 0, 'g', 6);
      const qint64 Q = m_result.chunk;
      if (Q > 0)
        text += tr("<br>block (%1, %2): %3")
                    .arg(t / Q)
                    .arg(s / Q)
                    .arg(t / Q == s / Q ? tr("diagonal")
                                        : tr("off-diagonal, rank %1").arg(m_result.ranks.value(int((t / Q) * ((T + Q - 1) / Q) + s / Q))));
    }
    QToolTip::showText(global, text, m_plot);
  }

  void onHovered(qint64 pos) {
    const bool on = m_result.matrix && pos >= 0 && pos < m_result.T;
    m_hoverRow->setVisible(on);
    m_hoverCol->setVisible(on);
    if (on) {
      m_hoverRow->point1->setCoords(0, double(pos));
      m_hoverRow->point2->setCoords(1, double(pos));
      m_hoverCol->point1->setCoords(double(pos), 0);
      m_hoverCol->point2->setCoords(double(pos), 1);
    }
    m_plot->replot(QCustomPlot::rpQueuedReplot);
  }

  Table matrixTable() const {
    Table tb;
    tb.columns << QStringLiteral("t");
    const qint64 T = m_result.T;
    for (qint64 s = 0; s < T; ++s) tb.columns << QStringLiteral("s%1").arg(s);
    if (!m_result.matrix) return tb;
    for (qint64 t = 0; t < T; ++t) {
      QStringList row{QString::number(t)};
      for (qint64 s = 0; s < T; ++s) row << QString::number(m_result.matrix->at(t, s), 'g', 17);
      tb.rows.push_back(row);
    }
    return tb;
  }

  Table dualityTable() const {
    Table tb;
    tb.columns = {QStringLiteral("position"), QStringLiteral("token"), QStringLiteral("channel"), QStringLiteral("y_scan"),
                  QStringLiteral("y_matrix")};
    const qint64 P = context()->model().headDim;
    for (qint64 t = 0; t < m_result.T && m_result.yScan.size() == m_result.T * P; ++t)
      for (qint64 p = 0; p < P; ++p)
        tb.rows.push_back({QString::number(t), context()->tokenLabel(t, 40), QString::number(p),
                           QString::number(m_result.yScan[t * P + p], 'g', 17), QString::number(m_result.yMatrix[t * P + p], 'g', 17)});
    return tb;
  }

  QComboBox *m_layer = nullptr, *m_head = nullptr, *m_colour = nullptr;
  QSpinBox *m_floor = nullptr, *m_chunk = nullptr, *m_channel = nullptr;
  QCheckBox* m_overlay = nullptr;
  QPushButton *m_prev = nullptr, *m_next = nullptr, *m_compute = nullptr, *m_cancel = nullptr;
  QLabel *m_stepLabel = nullptr, *m_info = nullptr;
  QProgressBar* m_progress = nullptr;
  QCustomPlot *m_plot = nullptr, *m_duality = nullptr;
  QCPTextElement *m_title = nullptr, *m_dualityTitle = nullptr;
  QCPColorMap* m_map = nullptr;
  QCPColorScale* m_scale = nullptr;
  QCPItemStraightLine *m_hoverRow = nullptr, *m_hoverCol = nullptr;
  QList<QCPAbstractItem*> m_blockItems;
  QList<QCPItemText*> m_rankLabels;
  bool m_capturing = false;
  MatrixResult m_result;
  int m_step = 0;  // 0: none; 1..4 the chunked algorithm's steps
};

}  // namespace

InspectorView* makeSsdMatrixView(InspectorContext* context, QWidget* parent) { return new SsdMatrixView(context, parent); }

}  // namespace studio
