#include "ui/views/PlotExport.h"

#include <qcustomplot.h>
#include <QBuffer>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>

#include "ui/views/InspectorView.h"

namespace studio {

namespace {

QString failed(const QSaveFile& f) {
  return QObject::tr("could not write %1: %2")
      .arg(f.fileName(), f.error() == QFileDevice::NoError ? QObject::tr("short write (disk full?)") : f.errorString());
}

// The whole file at once through QSaveFile, every step checked: QSaveFile::commit() itself misses a short
// write and a failing final flush (a full disk, Qt 6.4) and would replace the old file with a truncated one.
QString writeAtomic(const QString& path, const QByteArray& bytes) {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly)) return failed(f);
  if (f.write(bytes) != bytes.size() || !f.flush()) {
    const QString error = failed(f);
    f.cancelWriting();
    return error;
  }
  if (!f.commit()) return failed(f);
  return {};
}

QString csvField(QString s) {
  if (s.contains(QLatin1Char(',')) || s.contains(QLatin1Char('"')) || s.contains(QLatin1Char('\n'))) {
    s.replace(QLatin1Char('"'), QStringLiteral("\"\""));
    return QLatin1Char('"') + s + QLatin1Char('"');
  }
  return s;
}

}  // namespace

QJsonObject exportRecord(const QJsonObject& provenance, const QString& view, const QString& plot) {
  QJsonObject r = provenance;
  r.insert(QStringLiteral("view"), view);
  r.insert(QStringLiteral("plot"), plot);
  return r;
}

QString savePlot(QCustomPlot* plot, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const int w = std::max(plot->width(), 640), h = std::max(plot->height(), 400);
  // Rendered in memory first: QSvgGenerator and QPdfWriter do not report write errors.
  QBuffer out;
  out.open(QIODevice::WriteOnly);
  if (suffix == QLatin1String("png")) {
    if (!plot->toPixmap(w, h, 2.0).toImage().save(&out, "PNG")) return QObject::tr("could not encode %1 as PNG").arg(path);
  } else if (suffix == QLatin1String("svg")) {
    QSvgGenerator svg;
    svg.setOutputDevice(&out);
    svg.setSize(QSize(w, h));
    svg.setViewBox(QRect(0, 0, w, h));
    svg.setTitle(plot->objectName());
    QCPPainter painter;
    painter.begin(&svg);
    plot->toPainter(&painter, w, h);
    painter.end();
  } else if (suffix == QLatin1String("pdf")) {
    QPdfWriter pdf(&out);
    pdf.setPageSize(QPageSize(QSizeF(w, h), QPageSize::Point));
    pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
    pdf.setResolution(72);
    pdf.setCreator(QStringLiteral("mamba-studio"));
    QCPPainter painter;
    painter.begin(&pdf);
    plot->toPainter(&painter, w, h);
    painter.end();
  } else {
    return QObject::tr("%1: plots export as .png, .svg or .pdf").arg(path);
  }
  return writeAtomic(path, out.data());
}

QString saveTableCsv(const Table& table, const QJsonObject& record, const QString& path) {
  QByteArray out;
  const QJsonObject model = record.value(QStringLiteral("model")).toObject();
  out += "# mamba-studio " + record.value(QStringLiteral("view")).toString().toUtf8() + " / " +
         record.value(QStringLiteral("plot")).toString().toUtf8() + "\n";
  out += "# model: " + model.value(QStringLiteral("label")).toString().toUtf8() + " (" +
         model.value(QStringLiteral("summary")).toString().toUtf8() + ")\n";
  out += "# model_dir: " + model.value(QStringLiteral("dir")).toString().toUtf8() + "\n";
  out += "# model_hash: " + model.value(QStringLiteral("hash")).toString().toUtf8() + "\n";
  // the prompt as a JSON string (quoted and escaped, so newlines stay on this line): a one-element array's content
  out += "# prompt: " + QJsonDocument(QJsonArray{record.value(QStringLiteral("prompt"))}).toJson(QJsonDocument::Compact).mid(1).chopped(1) +
         "\n";
  out += "# settings: " + QJsonDocument(record.value(QStringLiteral("settings")).toObject()).toJson(QJsonDocument::Compact) + "\n";
  out += "# created: " + record.value(QStringLiteral("created")).toString().toUtf8() + "\n";
  QStringList header;
  for (const QString& c : table.columns) header << csvField(c);
  out += header.join(QLatin1Char(',')).toUtf8() + "\n";
  for (const QStringList& row : table.rows) {
    QStringList cells;
    for (const QString& c : row) cells << csvField(c);
    out += cells.join(QLatin1Char(',')).toUtf8() + "\n";
  }
  return writeAtomic(path, out);
}

QString saveNpy(const std::vector<double>& values, const std::vector<int64_t>& shape, const QString& path) {
  int64_t n = 1;
  QByteArray dims;
  for (int64_t d : shape) {
    n *= d;
    dims += QByteArray::number(qlonglong(d)) + ", ";
  }
  dims.chop(shape.size() > 1 ? 2 : 1);  // "(3, 4)"; a single dimension keeps its comma: "(3,)"
  if (n != int64_t(values.size())) return QObject::tr("%1: %2 values do not fill the shape").arg(path).arg(values.size());
  QByteArray header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + header length (2) + header + padding + '\n' is a multiple of 64
  const int total = ((10 + int(header.size()) + 1 + 63) / 64) * 64;
  header += QByteArray(total - 10 - int(header.size()) - 1, ' ') + '\n';
  QByteArray out("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char((header.size() >> 8) & 0xff);
  out += header;
  static_assert(Q_BYTE_ORDER == Q_LITTLE_ENDIAN, "the .npy header says little-endian doubles");
  out += QByteArray(reinterpret_cast<const char*>(values.data()), qsizetype(values.size() * sizeof(double)));
  return writeAtomic(path, out);
}

QString saveRecordSidecar(const QJsonObject& record, const QString& path) {
  const QFileInfo fi(path);
  const QString json = fi.suffix().isEmpty() ? path + QStringLiteral(".json")
                                             : fi.path() + QLatin1Char('/') + fi.completeBaseName() + QStringLiteral(".json");
  return writeAtomic(json, QJsonDocument(record).toJson(QJsonDocument::Indented));
}

}  // namespace studio
