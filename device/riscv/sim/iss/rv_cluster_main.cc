// Runs an ELF on one simulated Snitch cluster: what its cores write goes
// to stdout, and each core's counters to stderr.
//   bazel run //device/riscv/sim/iss:rv_cluster -- program.elf
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "device/riscv/sim/iss/cluster.h"

ABSL_FLAG(uint64_t, max_cycles, uint64_t{1} << 32,
          "Stop the cluster after this many cycles.");

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: rv_cluster program.elf\n");
    return 2;
  }
  std::ifstream in(args[1], std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  joule::iss::Cluster cluster;
  if (absl::Status s = cluster.Load(bytes); !s.ok()) {
    std::fprintf(stderr, "rv_cluster: %s\n", s.ToString().c_str());
    return 2;
  }
  const joule::iss::ClusterRun run =
      cluster.Run(absl::GetFlag(FLAGS_max_cycles));
  std::fwrite(run.out.data(), 1, run.out.size(), stdout);
  std::fprintf(stderr, "rv_cluster: %llu cycles%s%s\n",
               static_cast<unsigned long long>(run.cycles), run.ok ? "" : ": ",
               run.error.c_str());
  for (size_t i = 0; i < run.cores.size(); ++i) {
    const joule::iss::CoreCounters& n = run.cores[i];
    std::fprintf(
        stderr,
        "core %zu: cycles %llu instructions %llu fpu_issues %llu "
        "fpu_busy %llu flops fp64 %llu fp32 %llu tcdm %llu "
        "conflicts %llu dram %llu frep_repeats %llu exit %d\n",
        i, (unsigned long long)n.cycles, (unsigned long long)n.instructions,
        (unsigned long long)n.fpu_issues, (unsigned long long)n.fpu_busy,
        (unsigned long long)n.flops_fp64, (unsigned long long)n.flops_fp32,
        (unsigned long long)n.tcdm_accesses,
        (unsigned long long)n.tcdm_conflicts,
        (unsigned long long)n.dram_accesses, (unsigned long long)n.frep_repeats,
        run.exit_codes[i]);
  }
  return run.ok ? 0 : 1;
}
