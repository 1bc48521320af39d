#include "telemetry/rapl_meter.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace joule::telemetry {
namespace {

bool ReadU64(const std::string& path, uint64_t* v) {
  std::ifstream in(path);
  return static_cast<bool>(in >> *v);
}

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RaplMeter>> RaplMeter::Open(
    const std::string& root) {
  DIR* dir = opendir(root.c_str());
  if (dir == nullptr) {
    return absl::NotFoundError(absl::StrCat("no powercap directory at ", root));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    const std::string n = e->d_name;
    // Packages are intel-rapl:N; intel-rapl:N:M are their sub-zones.
    if (n.rfind("intel-rapl:", 0) == 0 &&
        n.find(':', sizeof("intel-rapl:") - 1) == std::string::npos) {
      names.push_back(n);
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  std::vector<Zone> zones;
  for (const std::string& n : names) {
    Zone z;
    const std::string base = absl::StrCat(root, "/", n);
    z.path = base + "/energy_uj";
    z.name = ReadLine(base + "/name");
    uint64_t probe;
    if (!ReadU64(base + "/max_energy_range_uj", &z.max_range_uj) ||
        !ReadU64(z.path, &probe)) {
      continue;  // Often root-only: unreadable zones are skipped.
    }
    zones.push_back(std::move(z));
  }
  if (zones.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no readable RAPL package zone (intel-rapl:N/energy_uj) under ", root));
  }
  return std::unique_ptr<RaplMeter>(new RaplMeter(std::move(zones)));
}

RaplMeter::RaplMeter(std::vector<Zone> zones) : zones_(std::move(zones)) {
  absl::MutexLock lock(&mu_);
  Read(&last_);
  step_start_ = last_;
}

std::string RaplMeter::Describe() const {
  std::vector<std::string> names;
  for (const Zone& z : zones_)
    names.push_back(z.name.empty() ? z.path : z.name);
  return absl::StrCat("measured: Intel RAPL (", absl::StrJoin(names, ", "),
                      "), whole-package energy during each step");
}

bool RaplMeter::Read(std::vector<uint64_t>* values) const {
  values->resize(zones_.size());
  for (size_t i = 0; i < zones_.size(); ++i) {
    if (!ReadU64(zones_[i].path, &(*values)[i])) return false;
  }
  return true;
}

uint64_t RaplMeter::Delta(const std::vector<uint64_t>& before,
                          const std::vector<uint64_t>& after) const {
  uint64_t sum = 0;
  for (size_t i = 0; i < zones_.size(); ++i) {
    sum += after[i] >= before[i]
               ? after[i] - before[i]
               : zones_[i].max_range_uj - before[i] + after[i];
  }
  return sum;
}

void RaplMeter::BeginStep() { Read(&step_start_); }

absl::StatusOr<double> RaplMeter::EndStep(absl::Duration,
                                          std::optional<double>) {
  std::vector<uint64_t> now;
  if (!Read(&now)) {
    return absl::UnavailableError("RAPL counters became unreadable");
  }
  return Delta(step_start_, now) * 1e-6;
}

double RaplMeter::TotalJoules() {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> now;
  if (Read(&now)) {
    total_joules_ += Delta(last_, now) * 1e-6;
    last_ = std::move(now);
  }
  return total_joules_;
}

}  // namespace joule::telemetry
