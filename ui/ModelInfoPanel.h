#pragma once
// The loaded model at a glance: shape, size, dtype, the state it carries per sequence, load time.
#include <QWidget>

#include "ui/EngineTypes.h"

class QFormLayout;
class QLabel;
class QStackedLayout;

namespace studio {

class ModelInfoPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ModelInfoPanel(QWidget* parent = nullptr);

  void setModel(const ModelInfo& info);
  void setBackendName(const QString& name);
  void clear();

 private:
  QLabel* addRow(const QString& name, const QString& whatsThis = {});

  QStackedLayout* m_stack = nullptr;
  QFormLayout* m_form = nullptr;
  QLabel* m_name = nullptr;
  QLabel* m_arch = nullptr;
  QLabel* m_format = nullptr;
  QLabel* m_tokenizer = nullptr;
  QLabel* m_headsLabel = nullptr;
  QLabel* m_layers = nullptr;
  QLabel* m_dModel = nullptr;
  QLabel* m_heads = nullptr;
  QLabel* m_dState = nullptr;
  QLabel* m_groups = nullptr;
  QLabel* m_conv = nullptr;
  QLabel* m_vocab = nullptr;
  QLabel* m_params = nullptr;
  QLabel* m_dtype = nullptr;
  QLabel* m_fileSize = nullptr;
  QLabel* m_state = nullptr;
  QLabel* m_loadTime = nullptr;
  QLabel* m_backend = nullptr;
};

}  // namespace studio
