#pragma once
// Writing a view's plots and numbers to files, each write atomic (the old file stays whole on failure).
#include <QJsonObject>
#include <QString>
#include <cstdint>
#include <vector>

class QCustomPlot;

namespace studio {

struct Table;

// The provenance record of one exported plot: the context's record plus which view and plot.
QJsonObject exportRecord(const QJsonObject& provenance, const QString& view, const QString& plot);
// PNG, SVG or PDF by the path's suffix, at the plot's on-screen size (at least 640 x 400). "" or the error.
QString savePlot(QCustomPlot* plot, const QString& path);
// CSV: '#' comment lines with the record (model, hash, prompt, settings), then a header row and the rows.
QString saveTableCsv(const Table& table, const QJsonObject& record, const QString& path);
// A float64 array in numpy's .npy format (version 1.0, C order).
QString saveNpy(const std::vector<double>& values, const std::vector<int64_t>& shape, const QString& path);
// The record as JSON beside the export: `path` with its suffix replaced by .json (or .json appended).
QString saveRecordSidecar(const QJsonObject& record, const QString& path);

}  // namespace studio
