#include "ui/SamplingPanel.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpressionValidator>
#include <QSpinBox>
#include <QVBoxLayout>

namespace studio {

SamplingPanel::SamplingPanel(QWidget* parent) : QWidget(parent) {
  m_maxNewTokens = new QSpinBox(this);
  m_maxNewTokens->setRange(1, 1'000'000);
  m_maxNewTokens->setToolTip(tr("Generation stops after this many new tokens (or at end-of-text)."));

  m_temperature = new QDoubleSpinBox(this);
  m_temperature->setRange(0.0, 5.0);
  m_temperature->setDecimals(2);
  m_temperature->setSingleStep(0.05);
  m_temperature->setSpecialValueText(tr("0 (greedy)"));
  m_temperature->setToolTip(tr("0 always picks the most likely token; higher values flatten the distribution."));

  m_topK = new QSpinBox(this);
  m_topK->setRange(0, 1'000'000);
  m_topK->setSpecialValueText(tr("off"));
  m_topK->setToolTip(tr("Sample only among the k most likely tokens (0: off)."));

  // top-p must stay above 0: the engine rejects 0
  m_topP = new QDoubleSpinBox(this);
  m_topP->setRange(0.01, 1.0);
  m_topP->setDecimals(2);
  m_topP->setSingleStep(0.05);
  m_topP->setToolTip(tr("Nucleus sampling: keep the smallest set of tokens whose probability reaches p (1: off)."));

  m_minP = new QDoubleSpinBox(this);
  m_minP->setRange(0.0, 1.0);
  m_minP->setDecimals(3);
  m_minP->setSingleStep(0.01);
  m_minP->setSpecialValueText(tr("off"));
  m_minP->setToolTip(tr("Drop tokens less likely than min-p times the most likely one (0: off)."));

  m_repeatPenalty = new QDoubleSpinBox(this);
  m_repeatPenalty->setRange(0.05, 5.0);
  m_repeatPenalty->setDecimals(2);
  m_repeatPenalty->setSingleStep(0.05);
  m_repeatPenalty->setToolTip(tr("Penalise tokens already in the text (1: off)."));

  m_seed = new QLineEdit(this);
  // any 64-bit value, as mamba-cli --seed takes it
  m_seed->setValidator(new QRegularExpressionValidator(QRegularExpression(QStringLiteral("[0-9]{1,19}")), m_seed));
  m_seed->setToolTip(tr("The same seed and settings give the same text (and the same ids as mamba-cli generate)."));
  m_randomSeed = new QCheckBox(tr("Random"), this);
  m_randomSeed->setToolTip(tr("Draw a new seed for every run; the seed used is shown here and saved with the transcript."));
  connect(m_randomSeed, &QCheckBox::toggled, m_seed, [this](bool on) { m_seed->setReadOnly(on); });

  auto* seedRow = new QHBoxLayout;
  seedRow->setContentsMargins(0, 0, 0, 0);
  seedRow->addWidget(m_seed, 1);
  seedRow->addWidget(m_randomSeed);

  auto* form = new QFormLayout;
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  form->addRow(tr("Max new tokens"), m_maxNewTokens);
  form->addRow(tr("Temperature"), m_temperature);
  form->addRow(tr("Top-k"), m_topK);
  form->addRow(tr("Top-p"), m_topP);
  form->addRow(tr("Min-p"), m_minP);
  form->addRow(tr("Repetition penalty"), m_repeatPenalty);
  form->addRow(tr("Seed"), seedRow);

  auto* greedy = new QPushButton(tr("Greedy"), this);
  greedy->setToolTip(tr("Temperature 0 with every filter off: the deterministic most-likely continuation."));
  connect(greedy, &QPushButton::clicked, this, &SamplingPanel::applyGreedyPreset);
  auto* defaults = new QPushButton(tr("Defaults"), this);
  connect(defaults, &QPushButton::clicked, this, &SamplingPanel::applyDefaults);
  auto* presets = new QHBoxLayout;
  presets->addWidget(greedy);
  presets->addWidget(defaults);
  presets->addStretch(1);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addLayout(presets);
  layout->addStretch(1);

  setSettings(SamplingSettings{});

  for (QSpinBox* b : {m_maxNewTokens, m_topK}) connect(b, &QSpinBox::valueChanged, this, &SamplingPanel::settingsChanged);
  for (QDoubleSpinBox* b : {m_temperature, m_topP, m_minP, m_repeatPenalty})
    connect(b, &QDoubleSpinBox::valueChanged, this, &SamplingPanel::settingsChanged);
  connect(m_seed, &QLineEdit::textEdited, this, &SamplingPanel::settingsChanged);
  connect(m_randomSeed, &QCheckBox::toggled, this, &SamplingPanel::settingsChanged);
}

SamplingSettings SamplingPanel::settings() const {
  SamplingSettings s;
  s.maxNewTokens = m_maxNewTokens->value();
  s.temperature = m_temperature->value();
  s.topK = m_topK->value();
  s.topP = m_topP->value();
  s.minP = m_minP->value();
  s.repeatPenalty = m_repeatPenalty->value();
  s.seed = m_seed->text().toULongLong();
  s.randomSeed = m_randomSeed->isChecked();
  return s;
}

void SamplingPanel::setSettings(const SamplingSettings& s) {
  const QSignalBlocker blockers[] = {QSignalBlocker(m_maxNewTokens), QSignalBlocker(m_temperature), QSignalBlocker(m_topK),
                                     QSignalBlocker(m_topP),         QSignalBlocker(m_minP),        QSignalBlocker(m_repeatPenalty),
                                     QSignalBlocker(m_seed),         QSignalBlocker(m_randomSeed)};
  m_maxNewTokens->setValue(s.maxNewTokens);
  m_temperature->setValue(s.temperature);
  m_topK->setValue(s.topK);
  m_topP->setValue(s.topP);
  m_minP->setValue(s.minP);
  m_repeatPenalty->setValue(s.repeatPenalty);
  m_seed->setText(QString::number(s.seed));
  m_randomSeed->setChecked(s.randomSeed);
  m_seed->setReadOnly(s.randomSeed);
  emit settingsChanged();
}

void SamplingPanel::showSeed(quint64 seed) { m_seed->setText(QString::number(seed)); }

void SamplingPanel::applyGreedyPreset() {
  SamplingSettings s = settings();
  s.temperature = 0.0;
  s.topK = 0;
  s.topP = 1.0;
  s.minP = 0.0;
  s.repeatPenalty = 1.0;
  setSettings(s);
}

void SamplingPanel::applyDefaults() {
  SamplingSettings s;
  s.maxNewTokens = m_maxNewTokens->value();  // a length is a choice about this text, not a sampling habit
  setSettings(s);
}

}  // namespace studio
