#include "ui/EngineTypes.h"

#include "ui/MatrixTypes.h"
#include "ui/SnapshotTypes.h"

namespace studio {

void registerEngineMetaTypes() {
  qRegisterMetaType<studio::SamplingSettings>();
  qRegisterMetaType<studio::GenerationRequest>();
  qRegisterMetaType<studio::TokenData>();
  qRegisterMetaType<studio::GenerationStats>();
  qRegisterMetaType<studio::ModelInfo>();
  qRegisterMetaType<studio::DeviceInfo>();
  qRegisterMetaType<studio::PromptTokens>();
  qRegisterMetaType<studio::ProbeBatch>();
  qRegisterMetaType<studio::MatrixRequest>();
  qRegisterMetaType<studio::MatrixResult>();
  registerSnapshotMetaTypes();
}

}  // namespace studio
