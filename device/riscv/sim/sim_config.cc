#include "device/riscv/sim/sim_config.h"

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

// Sources of the defaults. Topology from the Occamy reference manual and
// configuration (pulp-platform/occamy docs/rm and target/sim/cfg/full.hjson):
// 6 groups x 4 clusters, each 8 compute + 1 DMA Snitch cores (216 per
// chiplet), 1 GHz, 128 KiB TCDM in 32 64-bit banks per cluster, a 512-bit
// (64 B/cycle) cluster DMA, 8 GB of HBM2E per chiplet; each FPU does one
// FP64, two FP32, four FP16 or eight FP8 FMAs per cycle (2/4/8/16 FLOP).
// Power: 10 W at 1 GHz (ETH chip archive entry for Occamy).
// Model assumptions, not published figures: HBM bandwidth 384 GB/s; FPU
// utilization per kernel and precision (Potocnik et al., arXiv 2405.19284,
// report over 79% on optimized layers); per-FLOP energies halving with
// precision (FP8 set so a large FP8 GEMM lands near the paper's 294
// GFLOPS/W), 30 pJ per HBM byte and 2.5 W static, which together give
// about 10 W for a large FP64 GEMM at 1 GHz and about 290 GFLOPS/W for FP8,
// next to the paper's 294 GFLOPS/W.
namespace joule::riscv {

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp64:
      return "fp64";
    case Precision::kFp32:
      return "fp32";
    case Precision::kFp16:
      return "fp16";
    case Precision::kFp8:
      return "fp8";
  }
  return "?";
}

absl::StatusOr<Precision> ParsePrecision(const std::string& name) {
  for (Precision p : {Precision::kFp64, Precision::kFp32, Precision::kFp16,
                      Precision::kFp8}) {
    if (name == PrecisionName(p)) return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown precision '", name, "'; use fp64, fp32, fp16 or fp8"));
}

std::string SimConfig::Describe() const {
  return absl::StrFormat(
      "simulated Occamy-like system: %d clusters x %d cores at %.2f GHz, "
      "%d KiB TCDM/cluster, HBM %.0f GB/s, %s",
      clusters(), cores_per_cluster, frequency_hz / 1e9, tcdm_bytes / 1024,
      hbm_bytes_per_second / 1e9, PrecisionName(precision));
}

absl::StatusOr<SimConfig> ParseSimConfig(const std::string& text) {
  SimConfig c;
  std::map<std::string, std::function<bool(const std::string&)>> setters;
  auto num = [&](const std::string& key, auto* field) {
    setters[key] = [field](const std::string& v) {
      using T = std::remove_pointer_t<decltype(field)>;
      double d;
      if (!absl::SimpleAtod(v, &d) || !(d >= 0)) return false;
      // Converting a double beyond the field's range is undefined.
      if (d > static_cast<double>(std::numeric_limits<T>::max())) return false;
      *field = static_cast<T>(d);
      return true;
    };
  };
  num("groups", &c.groups);
  num("clusters_per_group", &c.clusters_per_group);
  num("cores_per_cluster", &c.cores_per_cluster);
  num("frequency_hz", &c.frequency_hz);
  num("tcdm_bytes", &c.tcdm_bytes);
  num("tcdm_banks", &c.tcdm_banks);
  num("dma_bytes_per_cycle", &c.dma_bytes_per_cycle);
  num("dma_setup_cycles", &c.dma_setup_cycles);
  num("hbm_bytes_per_second", &c.hbm_bytes_per_second);
  num("hbm_bytes", &c.hbm_bytes);
  num("elementwise_utilization", &c.elementwise_utilization);
  num("barrier_cycles", &c.barrier_cycles);
  num("double_buffering", &c.double_buffering);
  num("launch_overhead_cycles", &c.launch_overhead_cycles);
  num("joules_per_hbm_byte", &c.joules_per_hbm_byte);
  num("joules_per_tcdm_access", &c.joules_per_tcdm_access);
  num("static_watts", &c.static_watts);
  num("host_threads", &c.host_threads);
  for (Precision p : {Precision::kFp64, Precision::kFp32, Precision::kFp16,
                      Precision::kFp8}) {
    const int i = static_cast<int>(p);
    const std::string n = PrecisionName(p);
    num("peak_flops_per_cycle_" + n, &c.peak_flops_per_cycle[i]);
    num("gemm_utilization_" + n, &c.gemm_utilization[i]);
    num("attention_utilization_" + n, &c.attention_utilization[i]);
    num("joules_per_flop_" + n, &c.joules_per_flop[i]);
  }
  setters["precision"] = [&c](const std::string& v) {
    auto p = ParsePrecision(v);
    if (!p.ok()) return false;
    c.precision = *p;
    return true;
  };
  std::istringstream in(text);
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (size_t hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty()) continue;
    size_t eq = l.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "line %d: expected key = value, got '%s'", lineno, l));
    }
    std::string key(absl::StripAsciiWhitespace(l.substr(0, eq)));
    std::string value(absl::StripAsciiWhitespace(l.substr(eq + 1)));
    auto it = setters.find(key);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line %d: unknown key '%s'", lineno, key));
    }
    if (!it->second(value)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "line %d: bad value '%s' for %s", lineno, value, key));
    }
  }
  if (c.clusters() < 1 || c.cores_per_cluster < 1 || c.frequency_hz <= 0 ||
      c.hbm_bytes_per_second <= 0 || c.dma_bytes_per_cycle <= 0 ||
      c.tcdm_bytes < 4096 || c.host_threads > 256) {
    return absl::InvalidArgumentError(
        "groups, clusters_per_group, cores_per_cluster, frequency_hz, "
        "hbm_bytes_per_second, dma_bytes_per_cycle must be positive, "
        "tcdm_bytes at least 4096 and host_threads at most 256");
  }
  return c;
}

absl::StatusOr<SimConfig> LoadSimConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = ParseSimConfig(ss.str());
  if (!c.ok())
    return absl::Status(c.status().code(),
                        absl::StrCat(path, ": ", c.status().message()));
  return c;
}

}  // namespace joule::riscv
