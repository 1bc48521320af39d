// How fast the RISC-V ISS simulates, in simulated instructions per host
// second: one hart with no timing model (a long integer and FP loop, as
// rv_run runs it), and a whole cluster with its timing model (a baseline
// double-precision GEMM on 8 cores), best of --repeats each.
//   bazel run -c opt //bench:iss_bench
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/iss/cluster.h"
#include "device/riscv/sim/iss/user_env.h"

ABSL_FLAG(int, repeats, 3, "Runs of each; the best is reported.");

namespace {

std::vector<uint8_t> ReadElf(const std::string& name) {
  // bazel run starts in the binary's runfiles tree.
  std::ifstream in("bench/riscv/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const std::vector<uint8_t> loop = ReadElf("loop.elf");
  const std::vector<uint8_t> gemm = ReadElf("gemm_baseline.elf");
  if (loop.empty() || gemm.empty()) {
    std::fprintf(stderr, "iss_bench: run it with bazel run (ELFs missing)\n");
    return 1;
  }
  double best = 0;
  uint64_t insns = 0;
  for (int r = 0; r < repeats; ++r) {
    auto run = joule::iss::RunUserProgram(loop, uint64_t{1} << 34);
    if (!run.ok() || run->stop.reason != joule::iss::Stop::kExit) {
      std::fprintf(stderr, "iss_bench: loop.elf failed\n");
      return 1;
    }
    insns = run->instructions;
    best = std::max(best, insns / run->seconds / 1e6);
  }
  std::printf("one hart, functional (loop.elf): %llu instructions, %.1f MIPS\n",
              static_cast<unsigned long long>(insns), best);
  best = 0;
  joule::iss::ClusterRun last;
  for (int r = 0; r < repeats; ++r) {
    joule::iss::Cluster cluster;
    if (!cluster.Load(gemm).ok()) return 1;
    const absl::Time t0 = absl::Now();
    last = cluster.Run(uint64_t{1} << 34);
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    if (!last.ok) {
      std::fprintf(stderr, "iss_bench: %s\n", last.error.c_str());
      return 1;
    }
    insns = 0;
    for (const auto& c : last.cores) insns += c.instructions + c.frep_repeats;
    best = std::max(best, insns / secs / 1e6);
  }
  uint64_t busy = 0;
  for (int i = 0; i < 8; ++i) busy += last.cores[i].fpu_busy;
  std::printf(
      "cluster, timed (gemm_baseline.elf, 9 cores): %llu instructions, %.1f "
      "MIPS; %llu simulated cycles, FPU utilization %.1f%% (baseline code)\n",
      static_cast<unsigned long long>(insns), best,
      static_cast<unsigned long long>(last.cycles),
      100.0 * busy / (8.0 * last.cycles));
  return 0;
}
