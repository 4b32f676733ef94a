#include "ui/CompareTypes.h"

#include <cmath>
#include <limits>

#include "engine/compare.h"

namespace studio {

namespace {

template <class T, class U>
QVector<T> vec(const std::vector<U>& v) {
  return QVector<T>(v.begin(), v.end());
}

CompareDiffData diffData(const mamba::LayerDiff& d, int a, int b, int64_t L, int64_t T) {
  CompareDiffData o;
  o.a = a;
  o.b = b;
  o.err = vec<float>(d.err);
  o.at = vec<qint32>(d.at);
  o.va = vec<double>(d.a);
  o.vb = vec<double>(d.b);
  o.ssmErr = vec<double>(d.ssm_err);
  o.convErr = vec<double>(d.conv_err);
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (float e : d.err)
    if (std::isfinite(e) && e > 0) lo = std::min(lo, double(e)), hi = std::max(hi, double(e));
  o.minErr = std::isfinite(lo) ? lo : 0;
  o.maxErr = hi;
  for (int64_t l = 0; l < L; ++l) {
    o.layerMax.push_back(d.max_err(l, T));
    o.layerMean.push_back(d.mean_err(l, T));
  }
  return o;
}

CompareSweepPoint point(const mamba::SweepPoint& p) {
  return {p.chunk_size, p.seconds, double(p.flops.total()), p.max_rel_err, p.state_rel_err};
}

}  // namespace

const CompareDiffData* CompareData::diff(int a, int b) const {
  for (const auto& d : diffs)
    if (d.a == a && d.b == b) return &d;
  return nullptr;
}

CompareData toCompareData(const mamba::CompareResult& r) {
  CompareData o;
  o.layers = r.L;
  o.tokens = r.T;
  o.dModel = r.D;
  o.chunkSize = r.chunk_size;
  o.modelChunkSize = r.model_chunk_size;
  o.ids = vec<qint32>(r.ids);
  o.refSeconds = r.ref_seconds;
  o.refFlops = double(r.ref_flops.total());
  o.refNorm = vec<float>(r.ref_norm);
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const mamba::RunReport& rr = r.runs[i];
    CompareRunData d;
    d.name = QString::fromStdString(rr.spec.name);
    d.device = QString::fromStdString(rr.spec.device);
    d.dtype = QString::fromStdString(rr.spec.dtype);
    d.scan = QString::fromLatin1(mamba::scan_name(rr.spec.scan));
    d.backend = QString::fromStdString(rr.backend);
    d.chunkSize = rr.chunk_size;
    d.seconds = rr.seconds;
    d.flops = double(rr.flops.total());
    d.layerSeconds = vec<double>(rr.layer_seconds);
    d.norm = vec<float>(rr.norm);
    d.logitErr = vec<float>(rr.logit_err);
    d.kl = vec<float>(rr.kl);
    d.top1 = vec<quint8>(rr.top1);
    d.maxLogitErr = rr.max_logit_err();
    d.klMean = rr.kl_mean();
    d.top1Agree = rr.top1_agree();
    o.runs.push_back(d);
    o.diffs.push_back(diffData(rr.vs_ref, int(i), -1, r.L, r.T));
  }
  for (const auto& p : r.pairs) o.diffs.push_back(diffData(p.diff, p.a, p.b, r.L, r.T));
  o.sweepBackend = QString::fromStdString(r.sweep_backend);
  for (const auto& p : r.sweep) o.sweep.push_back(point(p));
  o.sweepRecurrent = point(r.sweep_recurrent);
  o.json = QString::fromStdString(mamba::compare_json(r).dump(2));
  return o;
}

}  // namespace studio
