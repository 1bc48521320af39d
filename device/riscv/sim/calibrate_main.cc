// calibrate_tile_model: measures on the instruction-level simulator the
// utilizations TileModelEngine charges for fp32 kernels, and writes the
// cost table (cost_table.h) to commit.
//   bazel run -c opt //device/riscv/sim:calibrate_tile_model -- \
//       --out=$PWD/device/riscv/sim/cost_table.txt
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/calibration.h"
#include "device/runfiles.h"

ABSL_FLAG(std::string, out, "", "Where to write the table (default: stdout).");
ABSL_FLAG(std::string, kernel_image, "",
          "The kernel image (default: the kernels.elf built with this).");

namespace {

// The commit of the workspace `bazel run` started in, so the table says
// which ISS measured it.
std::string WorkspaceCommit() {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (ws == nullptr) return "unknown";
  const std::string cmd =
      absl::StrCat("git -C '", ws, "' rev-parse --short HEAD 2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  char buf[64] = {};
  if (!p || std::fgets(buf, sizeof(buf), p.get()) == nullptr) return "unknown";
  return std::string(absl::StripAsciiWhitespace(buf));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string image = absl::GetFlag(FLAGS_kernel_image);
  if (image.empty()) {
    image = joule::device::FindRunfile("device/riscv/sim/kernels/kernels.elf",
                                       argv[0]);
  }
  const std::string header = absl::StrCat(
      "# FPU utilizations of fp32 kernels measured on the instruction-level\n"
      "# simulator (one cluster, operands in HBM), for TileModelEngine; see\n"
      "# device/riscv/sim/cost_table.h. Written by\n"
      "#   bazel run -c opt //device/riscv/sim:calibrate_tile_model -- "
      "--out=$PWD/device/riscv/sim/cost_table.txt\n"
      "# at ISS commit ",
      WorkspaceCommit(), " on ",
      absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone()), ".\n");
  auto table = joule::riscv::CalibrateCostTable(image, header);
  if (!table.ok()) {
    std::fprintf(stderr, "calibrate_tile_model: %s\n",
                 table.status().ToString().c_str());
    return 1;
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fputs(table->c_str(), stdout);
    return 0;
  }
  std::ofstream f(out);
  f << *table;
  if (!f) {
    std::fprintf(stderr, "calibrate_tile_model: cannot write %s\n",
                 out.c_str());
    return 1;
  }
  return 0;
}
