#include "ui/EngineTypes.h"

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
  registerSnapshotMetaTypes();
}

}  // namespace studio
