#include "ui/ModelInfoPanel.h"

#include <QFormLayout>
#include <QLabel>
#include <QLocale>
#include <QStackedLayout>

namespace studio {

namespace {
QString count(qint64 n) { return QLocale().toString(n); }

QString paramCount(qint64 n) {
  if (n >= 1'000'000'000) return QStringLiteral("%1 B").arg(double(n) / 1e9, 0, 'f', 2);
  if (n >= 1'000'000) return QStringLiteral("%1 M").arg(double(n) / 1e6, 0, 'f', 2);
  if (n >= 1'000) return QStringLiteral("%1 K").arg(double(n) / 1e3, 0, 'f', 1);
  return count(n);
}
}  // namespace

ModelInfoPanel::ModelInfoPanel(QWidget* parent) : QWidget(parent) {
  auto* empty = new QLabel(tr("No model loaded.\n\nOpen a model folder or file (File ▸ Open Model…: Hugging Face or state-spaces folders, "
                              "GGUF, mamba.c model.bin) or drop one onto the window."),
                           this);
  empty->setWordWrap(true);
  empty->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  empty->setMargin(8);

  auto* details = new QWidget(this);
  m_form = new QFormLayout(details);
  m_form->setLabelAlignment(Qt::AlignLeft);
  m_form->setRowWrapPolicy(QFormLayout::DontWrapRows);
  m_name = addRow(tr("Model"));
  m_name->setWordWrap(true);
  m_arch =
      addRow(tr("Architecture"), tr("Mamba-2 (SSD: a scalar decay per head) or Mamba-1 (selective scan: a diagonal decay per channel)."));
  m_format = addRow(tr("Format"), tr("How the weights were stored on disk."));
  m_format->setWordWrap(true);
  m_tokenizer = addRow(tr("Tokenizer"), tr("Where the tokenizer came from. Without one, prompts are typed as token ids."));
  m_tokenizer->setWordWrap(true);
  m_layers = addRow(tr("Layers"));
  m_dModel = addRow(tr("d_model"), tr("Width of the residual stream (D)."));
  m_heads = addRow(tr("Heads"), tr("SSM heads × head dimension (H × P)."));
  m_headsLabel = qobject_cast<QLabel*>(m_form->labelForField(m_heads));
  m_dState = addRow(tr("d_state"), tr("State size per head and channel (N)."));
  m_groups = addRow(tr("Groups"), tr("B/C groups shared by the heads (G)."));
  m_conv = addRow(tr("Conv / chunk"), tr("Causal convolution kernel (K) and the chunk length of the chunked scan (Q)."));
  m_vocab = addRow(tr("Vocabulary"));
  m_params = addRow(tr("Parameters"));
  m_dtype = addRow(tr("Weights"));
  m_fileSize = addRow(tr("File size"));
  m_state = addRow(tr("State"), tr("The recurrent state of one sequence. Unlike a transformer's KV cache it does not grow with the text."));
  m_state->setWordWrap(true);
  m_loadTime = addRow(tr("Load time"));
  m_backend = addRow(tr("Backend"));
  m_backend->setWordWrap(true);

  m_stack = new QStackedLayout(this);
  m_stack->addWidget(empty);
  m_stack->addWidget(details);
}

QLabel* ModelInfoPanel::addRow(const QString& name, const QString& whatsThis) {
  auto* value = new QLabel(this);
  value->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* label = new QLabel(name, this);
  if (!whatsThis.isEmpty()) {
    label->setToolTip(whatsThis);
    value->setToolTip(whatsThis);
  }
  m_form->addRow(label, value);
  return value;
}

void ModelInfoPanel::setModel(const ModelInfo& info) {
  const QLocale loc;
  m_name->setText(info.label);
  m_name->setToolTip(info.dir.isEmpty() ? info.summary : info.dir + QLatin1Char('\n') + info.summary);
  m_layers->setText(count(info.layers));
  m_dModel->setText(count(info.dModel));
  m_arch->setText(info.arch.isEmpty() ? tr("Mamba-2") : info.arch);
  m_format->setText(info.format.isEmpty() ? tr("—") : info.format);
  // The row names the source; the reason (why there is none, which fallback) is in its tooltip.
  const QString source =
      info.tokenizerSource.isEmpty() ? (info.tokenizerVocab ? tr("given with the model") : tr("none")) : info.tokenizerSource;
  QString shortSource = source.section(QLatin1Char(':'), 0, 0);
  if (shortSource.startsWith(QLatin1String("none"))) shortSource = tr("none: prompts are token ids");
  else if (shortSource.contains(QLatin1String(" ("))) shortSource = shortSource.section(QLatin1String(" ("), 0, 0);
  m_tokenizer->setText(shortSource);
  m_tokenizer->setToolTip(source);
  if (info.arch == QLatin1String("Mamba-1")) {
    if (m_headsLabel) m_headsLabel->setText(tr("Channels"));
    m_heads->setText(tr("%1 (dt rank %2)").arg(info.dInner).arg(info.dtRank));
    m_heads->setToolTip(
        tr("Mamba-1: every channel of the inner width E has its own state of d_state entries with its own decays "
           "(A is diagonal), fed by B and C shared across channels; dt comes from a rank-R projection."));
  } else {
    if (m_headsLabel) m_headsLabel->setText(tr("Heads"));
    m_heads->setText(QStringLiteral("%1 × %2").arg(info.heads).arg(info.headDim));
    m_heads->setToolTip(tr("SSM heads × head dimension (H × P)."));
  }
  m_dState->setText(count(info.dState));
  m_groups->setText(info.arch == QLatin1String("Mamba-1") ? tr("— (B and C shared by all channels)") : count(info.groups));
  m_conv->setText(QStringLiteral("%1 / %2").arg(info.convKernel).arg(info.chunkSize));
  QString vocab = count(info.vocabSize) + (info.tiedEmbeddings ? tr(" (tied)") : QString());
  const bool padded = info.vocabValid > 0 && info.vocabValid < info.vocabSize;
  if (padded) vocab += tr(", %1 used").arg(count(info.vocabValid));
  vocab += info.tokenizerVocab ? tr(", tokenizer %1").arg(count(info.tokenizerVocab)) : tr(", no tokenizer");
  m_vocab->setText(vocab);
  m_vocab->setToolTip(
      (padded ? tr("Embedding rows from id %1 on are padding and are never sampled. ").arg(count(info.vocabValid)) : QString()) +
      (info.tokenizerVocab ? QString() : tr("Without a tokenizer, prompts are typed as token ids.")));
  m_vocab->setWordWrap(true);
  m_params->setText(paramCount(info.params));
  m_params->setToolTip(count(info.params));
  m_dtype->setText(info.dtype.isEmpty() ? tr("random (in memory)") : info.dtype);
  m_fileSize->setText(info.fileBytes ? loc.formattedDataSize(qint64(info.fileBytes)) : tr("—"));
  m_state->setText(tr("%1 per sequence, whatever its length").arg(loc.formattedDataSize(qint64(info.stateBytes))));
  m_loadTime->setText(info.loadSeconds > 0 ? tr("%1 s").arg(info.loadSeconds, 0, 'f', 2) : tr("—"));
  m_backend->setText(info.backendName);
  m_stack->setCurrentIndex(1);
}

void ModelInfoPanel::setBackendName(const QString& name) { m_backend->setText(name); }

void ModelInfoPanel::clear() { m_stack->setCurrentIndex(0); }

}  // namespace studio
