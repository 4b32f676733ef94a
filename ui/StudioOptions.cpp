#include "ui/StudioOptions.h"

#include <QCommandLineParser>
#include <QRegularExpression>

namespace studio {

std::optional<StudioOptions> StudioOptions::parse(const QStringList& arguments, QString* error) {
  QCommandLineParser p;
  p.setApplicationDescription(QStringLiteral("Mamba Studio: run and inspect Mamba-2 language models."));
  p.addHelpOption();
  p.addVersionOption();
  const QCommandLineOption model(QStringLiteral("model"), QStringLiteral("Open this model folder instead of the last or default one."),
                                 QStringLiteral("DIR"));
  const QCommandLineOption screenshot(QStringLiteral("screenshot"), QStringLiteral("Render the window to a PNG and exit (works headless)."),
                                      QStringLiteral("FILE"));
  const QCommandLineOption prompt(QStringLiteral("prompt"), QStringLiteral("Prompt text for --generate."), QStringLiteral("TEXT"));
  const QCommandLineOption generate(QStringLiteral("generate"), QStringLiteral("Generate N tokens before the screenshot."),
                                    QStringLiteral("N"));
  const QCommandLineOption seed(QStringLiteral("seed"), QStringLiteral("Sampling seed (default for screenshots: 1)."), QStringLiteral("S"));
  const QCommandLineOption view(QStringLiteral("view"),
                                QStringLiteral("Capture only this view: window, tokens, prompt, model, sampling, snapshots, or an "
                                               "inspection view (dynamics, memory, branches, snapshot-diff)."),
                                QStringLiteral("NAME"));
  const QCommandLineOption size(QStringLiteral("size"), QStringLiteral("Window size for the screenshot, e.g. 1280x800."),
                                QStringLiteral("WxH"));
  const QCommandLineOption hover(QStringLiteral("hover-token"), QStringLiteral("Show generated token K's hover card in the screenshot."),
                                 QStringLiteral("K"));
  const QCommandLineOption demo(QStringLiteral("snapshot-demo"),
                                QStringLiteral("With --generate: take a snapshot, branch it, zero a head against an unedited control and "
                                               "compare them (the Snapshots panel) before the screenshot."));
  p.addOptions({model, screenshot, prompt, generate, seed, view, size, hover, demo});
  // view options: name, help, whether the value is a non-negative integer
  const struct {
    const char* name;
    const char* help;
    bool integer;
  } viewOpts[] = {
      {"layer", "Inspection views: the layer shown.", true},
      {"head", "Inspection views: the head shown.", true},
      {"chunk", "SSD matrix view: the chunk size of the block overlay; Compare view: the chunk size Q of the chunked runs.", true},
      {"colour", "SSD matrix view: log, signed or rows.", false},
      {"step", "SSD matrix view: highlight step 1..4 of the chunked algorithm (0: none).", true}};
  QList<QCommandLineOption> viewParsed;
  for (const auto& v : viewOpts)
    viewParsed.push_back(QCommandLineOption(QString::fromLatin1(v.name), QString::fromLatin1(v.help), QStringLiteral("V")));
  p.addOptions(viewParsed);
  p.process(arguments);  // exits on --help, --version and unknown options, with the message

  StudioOptions o;
  o.model = p.value(model);
  o.screenshot = p.value(screenshot);
  o.prompt = p.value(prompt);
  o.view = p.value(view);
  o.snapshotDemo = p.isSet(demo);
  bool ok = true;
  if (p.isSet(generate)) {
    o.generate = p.value(generate).toInt(&ok);
    if (!ok || o.generate < 0 || o.generate > kMaxGenerate) {
      *error = QStringLiteral("--generate wants a token count in 0..%1, not '%2'").arg(kMaxGenerate).arg(p.value(generate));
      return std::nullopt;
    }
  }
  if (p.isSet(seed)) {
    o.seed = p.value(seed).toULongLong(&ok);
    if (!ok) {
      *error = QStringLiteral("--seed wants a non-negative integer, not '%1'").arg(p.value(seed));
      return std::nullopt;
    }
  }
  if (p.isSet(size)) {
    const auto m = QRegularExpression(QStringLiteral("^(\\d{1,5})[xX](\\d{1,5})$")).match(p.value(size));
    const auto inRange = [](int v) { return v >= 1 && v <= kMaxSide; };
    if (!m.hasMatch() || !inRange(m.captured(1).toInt()) || !inRange(m.captured(2).toInt())) {
      *error = QStringLiteral("--size wants WxH with sides in 1..%1, e.g. 1280x800, not '%2'").arg(kMaxSide).arg(p.value(size));
      return std::nullopt;
    }
    o.size = QSize(m.captured(1).toInt(), m.captured(2).toInt());
  }
  if (p.isSet(hover)) {
    o.hoverToken = p.value(hover).toInt(&ok);
    if (!ok || o.hoverToken < 0) {
      *error = QStringLiteral("--hover-token wants a token index >= 0, not '%1'").arg(p.value(hover));
      return std::nullopt;
    }
  }
  for (qsizetype i = 0; i < viewParsed.size(); ++i) {
    if (!p.isSet(viewParsed[i])) continue;
    const QString name = QString::fromLatin1(viewOpts[i].name), value = p.value(viewParsed[i]);
    const int v = value.toInt(&ok);
    if (viewOpts[i].integer && (!ok || v < 0)) {
      *error = QStringLiteral("--%1 wants an integer >= 0, not '%2'").arg(name, value);
      return std::nullopt;
    }
    if (name == QLatin1String("colour") && value != QLatin1String("log") && value != QLatin1String("signed") &&
        value != QLatin1String("rows")) {
      *error = QStringLiteral("--colour wants log, signed or rows, not '%1'").arg(value);
      return std::nullopt;
    }
    o.viewOptions.insert(name, value);
  }
  if (o.screenshot.isEmpty() && !o.viewOptions.isEmpty()) {
    *error = QStringLiteral("--layer, --head, --chunk, --colour and --step go with --screenshot FILE --view NAME");
    return std::nullopt;
  }
  if (o.screenshot.isEmpty() && (o.generate > 0 || !o.view.isEmpty() || o.size.isValid() || o.hoverToken >= 0)) {
    *error = QStringLiteral("--generate, --view, --size and --hover-token go with --screenshot FILE");
    return std::nullopt;
  }
  if (o.snapshotDemo && o.generate <= 0) {
    *error = QStringLiteral("--snapshot-demo needs --generate N (the branches continue N tokens each)");
    return std::nullopt;
  }
  if (o.generate > 0 && o.prompt.isEmpty()) {
    *error = QStringLiteral("--generate needs --prompt TEXT");
    return std::nullopt;
  }
  return o;
}

}  // namespace studio
