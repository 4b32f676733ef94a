#include "ui/views/InspectorView.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QMenu>
#include <QMessageBox>
#include <QToolButton>
#include <QVBoxLayout>

#include "ui/views/InspectorContext.h"
#include "ui/views/PlotExport.h"

namespace studio {

InspectorView::InspectorView(InspectorContext* context, QWidget* parent) : QWidget(parent), m_context(context) {}

QHBoxLayout* InspectorView::controlRow() {
  if (m_controls) return m_controls;
  m_controls = new QHBoxLayout;
  m_controls->setContentsMargins(4, 2, 4, 2);
  m_export = new QToolButton(this);
  m_export->setText(tr("Export"));
  m_export->setToolTip(
      tr("Save a plot as PNG, SVG or PDF, or its numbers as CSV; each with a JSON record of the model, prompt and settings"));
  m_export->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(m_export);
  connect(menu, &QMenu::aboutToShow, this, [this, menu] {
    menu->clear();
    for (const Exportable& e : exportables()) {
      QMenu* sub = menu->addMenu(e.name);
      for (const QString& f : {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf"), QStringLiteral("csv")}) {
        if (f != QLatin1String("csv") && !e.plot) continue;
        if (f == QLatin1String("csv") && !e.table) continue;
        sub->addAction(f.toUpper() + QStringLiteral("…"), this, [this, e, f] { chooseExport(e, f); });
      }
      if (e.npyValues) sub->addAction(QStringLiteral("NPY…"), this, [this, e] { chooseExport(e, QStringLiteral("npy")); });
    }
  });
  m_export->setMenu(menu);
  auto* outer = qobject_cast<QVBoxLayout*>(layout());
  if (!outer) {
    outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->setSpacing(0);
  }
  auto* row = new QHBoxLayout;
  row->addLayout(m_controls, 1);
  row->addWidget(m_export);
  outer->insertLayout(0, row);
  return m_controls;
}

void InspectorView::chooseExport(const Exportable& e, const QString& format) {
  const QString suggested = QStringLiteral("%1-%2.%3").arg(name(), e.name, format);
  const QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(e.name), suggested,
                                                    format.toUpper() + QStringLiteral(" (*.") + format + QLatin1Char(')'));
  if (path.isEmpty()) return;
  const QJsonObject record = exportRecord(context()->provenance(), name(), e.name);
  prepareExport(true);
  QString error = format == QLatin1String("csv")   ? saveTableCsv(e.table(), record, path)
                  : format == QLatin1String("npy") ? saveNpy(e.npyValues(), e.npyShape, path)
                                                   : savePlot(e.plot, path);
  prepareExport(false);
  if (error.isEmpty()) error = saveRecordSidecar(record, path);
  if (!error.isEmpty()) QMessageBox::warning(this, tr("Export failed"), error);
}

QString InspectorView::exportAll(const QString& base) {
  prepareExport(true);
  const QString error = writeAll(base);
  prepareExport(false);
  return error;
}

QString InspectorView::writeAll(const QString& base) {
  for (const Exportable& e : exportables()) {
    const QJsonObject record = exportRecord(context()->provenance(), name(), e.name);
    const QString stem = base + QLatin1Char('-') + e.name;
    if (e.plot)
      for (const char* f : {".png", ".svg", ".pdf"})
        if (QString err = savePlot(e.plot, stem + QLatin1String(f)); !err.isEmpty()) return err;
    if (e.table)
      if (QString err = saveTableCsv(e.table(), record, stem + QStringLiteral(".csv")); !err.isEmpty()) return err;
    if (e.npyValues)
      if (QString err = saveNpy(e.npyValues(), e.npyShape, stem + QStringLiteral(".npy")); !err.isEmpty()) return err;
    if (QString err = saveRecordSidecar(record, stem); !err.isEmpty()) return err;
  }
  return {};
}

}  // namespace studio
