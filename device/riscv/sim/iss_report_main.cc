// iss_report: the instruction-level simulator's headline figures as one
// JSON line (SIMULATED: see device/riscv/sim/iss_report.h), or with
// --calibrate the energy model's fitted constant.
//   bazel run -c opt //device/riscv/sim:iss_report -- --json
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "device/riscv/sim/iss_report.h"
#include "device/runfiles.h"

ABSL_FLAG(bool, json, true, "Print the report as one JSON line.");
ABSL_FLAG(bool, calibrate, false,
          "Instead: fit the energy model to Occamy's 10 W (iss/energy.h) and "
          "print the constant to commit in iss/energy.cc.");
ABSL_FLAG(std::string, kernel_image, "",
          "The kernel image (default: the kernels.elf built with this).");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string image = absl::GetFlag(FLAGS_kernel_image);
  if (image.empty()) {
    image = joule::device::FindRunfile("device/riscv/sim/kernels/kernels.elf",
                                       argv[0]);
  }
  if (absl::GetFlag(FLAGS_calibrate)) {
    auto m = joule::riscv::CalibrateEnergy(image);
    if (!m.ok()) {
      std::fprintf(stderr, "iss_report: %s\n", m.status().ToString().c_str());
      return 1;
    }
    std::printf("kCalibratedJoulesPerPj = %.6e\ncluster_cycle_joules = %.6e\n",
                m->joules_per_pj, m->cluster_cycle_joules);
    return 0;
  }
  auto r = joule::riscv::RunIssReport(image);
  if (!r.ok()) {
    std::fprintf(stderr, "iss_report: %s\n", r.status().ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", joule::riscv::IssReportJson(*r).c_str());
  } else {
    for (const auto& g : r->gemm) {
      std::printf("GEMM %s %d^3: %llu cycles, FPU %.1f%%, %.2f GFLOP/s\n",
                  g.precision.c_str(), g.m, (unsigned long long)g.cycles,
                  100 * g.fpu_utilization, g.gflops);
    }
    std::printf(
        "speedup NAR %.2fx AR %.2fx; %.1f GFLOPS/W fp32, %.1f fp64; "
        "%.1f MIPS\n",
        r->speedup_nar, r->speedup_ar, r->gflops_per_watt,
        r->gflops_per_watt_fp64, r->mips);
  }
  return 0;
}
