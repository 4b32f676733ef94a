#include "ui/EngineTypes.h"

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
}

}  // namespace studio
