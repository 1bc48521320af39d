#include "device/riscv/sim/cost_table.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace joule::riscv {
namespace {

constexpr size_t kMaxLines = 100000;
constexpr size_t kMaxAxis = 64;  // Values per axis.
// Interpolated values stay within their corners' range, so positive and
// at most 1; below this a figure means nothing.
constexpr double kMinUtilization = 1e-4;

absl::Status LineError(int line, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("cost table line %d: %s", line, why));
}

// Where `x` falls between axis values: the lower index and the weight of
// the upper one, in log2 (the axes are sizes spanning decades).
std::pair<size_t, double> Bracket(const std::vector<double>& axis, double x) {
  if (axis.size() == 1 || x <= axis.front()) return {0, 0.0};
  if (x >= axis.back()) return {axis.size() - 2, 1.0};
  const size_t hi =
      std::upper_bound(axis.begin(), axis.end(), x) - axis.begin();
  const double a = std::log2(axis[hi - 1]), b = std::log2(axis[hi]);
  return {hi - 1, (std::log2(x) - a) / (b - a)};
}

}  // namespace

double CostTable::Grid::At(const std::vector<double>& point) const {
  // Multilinear interpolation over the 2^dims corners of the cell.
  const size_t dims = axes.size();
  std::vector<std::pair<size_t, double>> at(dims);
  for (size_t d = 0; d < dims; ++d) at[d] = Bracket(axes[d], point[d]);
  double sum = 0;
  for (size_t corner = 0; corner < (size_t{1} << dims); ++corner) {
    double weight = 1;
    size_t index = 0;
    for (size_t d = 0; d < dims; ++d) {
      const bool upper = (corner >> d) & 1;
      const size_t i = std::min(at[d].first + upper, axes[d].size() - 1);
      weight *= upper ? at[d].second : 1 - at[d].second;
      index = index * axes[d].size() + i;
    }
    if (weight != 0) sum += weight * values[index];
  }
  return sum;
}

absl::StatusOr<CostTable::Grid> CostTable::MakeGrid(
    const std::string& kernel,
    const std::map<std::vector<double>, double>& points, size_t dims) {
  Grid g;
  g.axes.resize(dims);
  std::vector<std::set<double>> seen(dims);
  for (const auto& [p, v] : points)
    for (size_t d = 0; d < dims; ++d) seen[d].insert(p[d]);
  size_t total = 1;
  for (size_t d = 0; d < dims; ++d) {
    if (seen[d].empty() || seen[d].size() > kMaxAxis) {
      return absl::InvalidArgumentError(
          absl::StrFormat("cost table: %s needs 1 to %d values on each axis",
                          kernel, kMaxAxis));
    }
    g.axes[d].assign(seen[d].begin(), seen[d].end());
    for (size_t i = 1; i < g.axes[d].size(); ++i) {
      // Interpolation divides by the log2 distance of neighbours.
      if (std::log2(g.axes[d][i]) - std::log2(g.axes[d][i - 1]) < 1e-6) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "cost table: %s's axis values %g and %g are too close", kernel,
            g.axes[d][i - 1], g.axes[d][i]));
      }
    }
    total *= g.axes[d].size();
  }
  if (total != points.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cost table: %s has %d entries, but its axes make a grid of %d: "
        "every combination must be given",
        kernel, points.size(), total));
  }
  for (const auto& [p, v] : points) g.values.push_back(v);  // Row-major.
  return g;
}

absl::StatusOr<CostTable> CostTable::Parse(const std::string& text) {
  std::map<std::vector<double>, double> gemm, attention;
  CostTable t;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (++line_no > static_cast<int>(kMaxLines))
      return LineError(line_no, "too many lines");
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    const std::string kernel(f[0]);
    const size_t want = kernel == "gemm" ? 5 : kernel == "attention" ? 4 : 2;
    if (kernel != "gemm" && kernel != "attention" && kernel != "rmsnorm" &&
        kernel != "swiglu" && kernel != "rope") {
      return LineError(line_no, "unknown kernel '" + kernel + "'");
    }
    if (f.size() != want) {
      return LineError(
          line_no, absl::StrFormat("%s takes %d numbers", kernel, want - 1));
    }
    std::vector<double> v(want - 1);
    for (size_t i = 1; i < want; ++i) {
      if (!absl::SimpleAtod(f[i], &v[i - 1]) || !std::isfinite(v[i - 1]))
        return LineError(line_no, "bad number '" + std::string(f[i]) + "'");
    }
    const double u = v.back();
    if (!(u >= kMinUtilization && u <= 1)) {
      return LineError(
          line_no,
          absl::StrFormat("a utilization must be in [%g, 1]", kMinUtilization));
    }
    v.pop_back();
    for (double c : v) {
      if (!(c >= 1 && c <= 1e9))
        return LineError(line_no, "a shape must be in 1..1e9");
    }
    auto& dest = kernel == "gemm" ? gemm : attention;
    if (kernel == "gemm" || kernel == "attention") {
      if (!dest.emplace(v, u).second)
        return LineError(line_no, "repeats an entry");
    } else if (!t.elementwise_.emplace(kernel, u).second) {
      return LineError(line_no, "repeats " + kernel);
    }
  }
  if (gemm.empty() || attention.empty()) {
    return absl::InvalidArgumentError(
        "cost table: needs gemm and attention entries");
  }
  auto g = MakeGrid("gemm", gemm, 3);
  if (!g.ok()) return g.status();
  auto a = MakeGrid("attention", attention, 2);
  if (!a.ok()) return a.status();
  t.gemm_ = *std::move(g);
  t.attention_ = *std::move(a);
  return t;
}

absl::StatusOr<CostTable> CostTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read cost table " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().size() > (size_t{4} << 20))
    return absl::InvalidArgumentError(path + ": over 4 MiB");
  auto t = Parse(s.str());
  if (!t.ok()) {
    return absl::Status(t.status().code(),
                        path + ": " + std::string(t.status().message()));
  }
  return t;
}

double CostTable::Gemm(double rows, double k, double tokens) const {
  return gemm_.At({rows, k, tokens});
}

double CostTable::Attention(double head, double keys) const {
  return attention_.At({head, keys});
}

std::optional<double> CostTable::Elementwise(const std::string& kernel) const {
  auto it = elementwise_.find(kernel);
  if (it == elementwise_.end()) return std::nullopt;
  return it->second;
}

}  // namespace joule::riscv
