#include "clients/load_report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace joule::clients {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

struct Stats {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  s.p50 = Percentile(v, 50);
  s.p90 = Percentile(v, 90);
  s.p95 = Percentile(v, 95);
  s.p99 = Percentile(v, 99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

std::string StatsRow(const char* name, const Stats& s) {
  return absl::StrFormat("  %-22s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n",
                         name, s.min * 1e3, s.mean * 1e3, s.p50 * 1e3,
                         s.p90 * 1e3, s.p95 * 1e3, s.p99 * 1e3, s.max * 1e3);
}

std::string StatsJson(const Stats& s) {
  return absl::StrFormat(
      "{\"count\": %d, \"min\": %.0f, \"mean\": %.0f, \"p50\": %.0f, "
      "\"p90\": %.0f, \"p95\": %.0f, \"p99\": %.0f, \"max\": %.0f}",
      s.n, s.min * 1e9, s.mean * 1e9, s.p50 * 1e9, s.p90 * 1e9, s.p95 * 1e9,
      s.p99 * 1e9, s.max * 1e9);
}

}  // namespace

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

LoadReport::LoadReport(std::vector<RequestRecord> records, absl::Duration wall,
                       std::string options_json)
    : records_(std::move(records)),
      wall_(wall),
      options_json_(std::move(options_json)) {
  for (const RequestRecord& r : records_) {
    errors_ += r.code != "OK";
    codes_[r.code]++;
    if (r.code != "OK") error_messages_[absl::StrCat(r.code, ": ", r.error)]++;
    total_.push_back(absl::ToDoubleSeconds(r.total));
    if (r.ttft != absl::InfiniteDuration())
      ttft_.push_back(absl::ToDoubleSeconds(r.ttft));
    for (absl::Duration d : r.inter_token)
      itl_.push_back(absl::ToDoubleSeconds(d));
    tokens_ += r.tokens;
    if (r.code == "OK" && !r.instance.empty()) instances_[r.instance]++;
    for (const auto& [device, e] : r.energy) {
      energy_[device].tokens += e.tokens;
      energy_[device].joules += e.joules;
      energy_[device].source = e.source;
    }
  }
}

std::string LoadReport::Table() const {
  const double wall = absl::ToDoubleSeconds(wall_);
  std::string out = absl::StrFormat(
      "Summary:\n  requests %d (%d failed) in %.2f s: %.2f req/s, %.1f "
      "generated tok/s\n\nLatency (ms):            min      mean       p50  "
      "     p90       p95       p99       max\n",
      records_.size(), errors_, wall, records_.size() / wall, tokens_ / wall);
  out += StatsRow("time to first token", Summarize(ttft_));
  out += StatsRow("inter-token", Summarize(itl_));
  out += StatsRow("end to end", Summarize(total_));
  out += "\nEnergy by device:\n";
  if (energy_.empty()) out += "  (no device reported energy)\n";
  for (const auto& [device, e] : energy_) {
    out += absl::StrFormat("  %-12s %10.6f J/token over %d tokens (%s)\n",
                           device, e.tokens ? e.joules / e.tokens : 0.0,
                           e.tokens, e.source);
  }
  out += "\nStatus codes:\n";
  for (const auto& [code, n] : codes_)
    out += absl::StrFormat("  [%s] %d\n", code, n);
  if (instances_.size() > 1) {
    out += "\nServed by:\n";
    for (const auto& [instance, n] : instances_)
      out += absl::StrFormat("  %-24s %d\n", instance, n);
  }
  return out;
}

std::string LoadReport::Json() const {
  const Stats t = Summarize(total_);
  std::vector<double> sorted = total_;
  std::vector<std::string> dist;
  for (int p : {10, 25, 50, 75, 90, 95, 99}) {
    dist.push_back(absl::StrFormat("{\"percentage\": %d, \"latency\": %.0f}", p,
                                   Percentile(sorted, p) * 1e9));
  }
  auto counts = [](const std::map<std::string, int>& m) {
    std::vector<std::string> items;
    for (const auto& [k, v] : m)
      items.push_back(absl::StrCat(JsonString(k), ": ", v));
    return absl::StrCat("{", absl::StrJoin(items, ", "), "}");
  };
  std::vector<std::string> energy_items;
  for (const auto& [device, e] : energy_) {
    energy_items.push_back(absl::StrFormat(
        "{\"device\": %s, \"source\": %s, \"tokens\": %d, \"joules\": %.9g, "
        "\"joulesPerToken\": %.9g}",
        JsonString(device), JsonString(e.source), e.tokens, e.joules,
        e.tokens ? e.joules / e.tokens : 0.0));
  }
  const double wall = absl::ToDoubleSeconds(wall_);
  return absl::StrFormat(
      "{\n  \"date\": %s,\n  \"options\": %s,\n  \"count\": %d,\n  \"total\": "
      "%.0f,\n  \"average\": %.0f,\n  \"fastest\": %.0f,\n  \"slowest\": "
      "%.0f,\n"
      "  \"rps\": %.4f,\n  \"latencyDistribution\": [%s],\n"
      "  \"statusCodeDistribution\": %s,\n  \"errorDistribution\": %s,\n"
      "  \"joule\": {\n    \"tokens\": %d,\n    \"tokensPerSecond\": %.4f,\n"
      "    \"timeToFirstToken\": %s,\n    \"interTokenLatency\": %s,\n"
      "    \"energy\": [%s],\n    \"instances\": %s\n  }\n}\n",
      JsonString(absl::FormatTime(absl::RFC3339_sec, absl::Now(),
                                  absl::UTCTimeZone())),
      options_json_.empty() ? "{}" : options_json_, records_.size(), wall * 1e9,
      t.mean * 1e9, t.min * 1e9, t.max * 1e9, records_.size() / wall,
      absl::StrJoin(dist, ", "), counts(codes_), counts(error_messages_),
      tokens_, tokens_ / wall, StatsJson(Summarize(ttft_)),
      StatsJson(Summarize(itl_)), absl::StrJoin(energy_items, ", "),
      counts(instances_));
}

}  // namespace joule::clients
