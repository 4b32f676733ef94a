#include "ui/EngineTypes.h"

namespace studio {

void registerEngineMetaTypes() {
  qRegisterMetaType<studio::SamplingSettings>();
  qRegisterMetaType<studio::GenerationRequest>();
  qRegisterMetaType<studio::TokenData>();
  qRegisterMetaType<studio::GenerationStats>();
  qRegisterMetaType<studio::ModelInfo>();
  qRegisterMetaType<studio::DeviceInfo>();
}

}  // namespace studio
