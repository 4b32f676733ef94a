#include "ui/StudioResources.h"

#include <QtGlobal>

// Q_INIT_RESOURCE must sit outside any namespace.
void initStudioResources() { Q_INIT_RESOURCE(studio); }
