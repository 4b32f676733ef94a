#pragma once
// The one interface of an inspection view. A view is a widget built on the shared InspectorContext
// (tokens, probes, linked hover / selection); it names itself, says whether it needs probes, and lists
// what it can export. A new view is one file in ui/views/ plus one line in ViewRegistry.cpp.
#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <functional>
#include <vector>

class QCustomPlot;
class QHBoxLayout;
class QToolButton;

namespace studio {

class InspectorContext;

// Rows of numbers with named columns, as a view's CSV export writes them.
struct Table {
  QStringList columns;
  QVector<QStringList> rows;
};

class InspectorView : public QWidget {
  Q_OBJECT

 public:
  struct Exportable {
    QString name;                  // file-name part and menu label, e.g. "dt-map"
    QCustomPlot* plot = nullptr;   // drawn to PNG / SVG / PDF
    std::function<Table()> table;  // the plotted numbers, to CSV
    // Optional: the plotted matrix as a float64 .npy array (numpy's file format).
    std::function<std::vector<double>()> npyValues;
    std::vector<int64_t> npyShape;
  };

  InspectorView(InspectorContext* context, QWidget* parent = nullptr);

  virtual QString name() const = 0;   // --view NAME
  virtual QString title() const = 0;  // the dock's title
  virtual bool needsProbes() const { return false; }
  virtual QList<Exportable> exportables() = 0;

  // Writes every exportable as <base>-<name>.{png,svg,pdf,csv,json}; "" on success, else the error.
  QString exportAll(const QString& base);

  // Before a headless capture (mamba-studio --screenshot --view NAME): what to show, from the command
  // line's view options (--layer, --head, ...). True when the view started work on the engine's thread
  // and will emit captureReady() once it has drawn the result.
  virtual bool prepareCapture(const QMap<QString, QString>& /*options*/) { return false; }

 signals:
  void captureReady();

 protected:
  InspectorContext* context() const { return m_context; }
  // Around every export: a view that hides detail on screen to save room (tick labels of stacked plots)
  // shows it in the exported files.
  virtual void prepareExport(bool /*exporting*/) {}
  // A row for the view's own controls, with the Export menu at its right end (built on first use).
  QHBoxLayout* controlRow();

 private:
  void chooseExport(const Exportable& e, const QString& format);
  QString writeAll(const QString& base);
  InspectorContext* m_context;
  QHBoxLayout* m_controls = nullptr;
  QToolButton* m_export = nullptr;
};

}  // namespace studio
