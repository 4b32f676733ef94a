#pragma once
// The studio's compiled-in resources (icons) live in a static library, where the linker would drop
// their registration unless something calls it; MainWindow does.
void initStudioResources();
