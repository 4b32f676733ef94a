// The one place inspection views are registered: each view's file defines its factory
// `InspectorView* makeXView(InspectorContext*, QWidget*)`; one line here adds it.
#include "ui/views/ViewRegistry.h"

namespace studio {

#define STUDIO_VIEW(factory)                             \
  {                                                      \
    InspectorView* factory(InspectorContext*, QWidget*); \
    views.push_back(&factory);                           \
  }

QList<ViewFactory> registeredViews() {
  QList<ViewFactory> views;
  STUDIO_VIEW(makeDynamicsView)
  STUDIO_VIEW(makeMemoryView)
  STUDIO_VIEW(makeSsdMatrixView)
  STUDIO_VIEW(makePlaygroundView)
  STUDIO_VIEW(makeCompareView)
  STUDIO_VIEW(makeBranchesView)
  STUDIO_VIEW(makeSnapshotDiffView)
  return views;
}

}  // namespace studio
