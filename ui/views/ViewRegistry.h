#pragma once
// The inspection views the main window offers, in tab order.
#include <QList>
#include <QWidget>

namespace studio {

class InspectorContext;
class InspectorView;

using ViewFactory = InspectorView* (*)(InspectorContext* context, QWidget* parent);
QList<ViewFactory> registeredViews();

}  // namespace studio
