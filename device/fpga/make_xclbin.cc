// Packages the FPGA kernel's metadata as an xclbin for one built shape.
//   bazel run //device/fpga:make_xclbin -- --shape=stories110M
//   --output=/tmp/forward.xclbin
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "device/fpga/kernel/built_shapes.h"
#include "device/fpga/xclbin_file.h"

ABSL_FLAG(std::string, shape, "stories110M",
          "Built shape: stories260K, stories15M, stories110M.");
ABSL_FLAG(std::string, output, "", "xclbin file to write.");
ABSL_FLAG(std::string, platform, "xilinx_aws-vu9p-f1_shell-v04261818_201920_2",
          "Platform VBNV recorded in the header.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  for (const auto& s : joule::fpga::BuiltShapes()) {
    if (s.name.rfind(absl::GetFlag(FLAGS_shape) + ",", 0) != 0) continue;
    const std::string bytes = joule::fpga::BuildXclbin(
        "forward", joule::fpga::ForwardKernelArgs(), {s.config, s.group_size},
        absl::GetFlag(FLAGS_platform));
    std::ofstream(absl::GetFlag(FLAGS_output), std::ios::binary) << bytes;
    std::fprintf(stderr, "wrote %s (%zu bytes) for %s\n",
                 absl::GetFlag(FLAGS_output).c_str(), bytes.size(),
                 s.name.c_str());
    return 0;
  }
  std::fprintf(stderr, "error: no built shape '%s'\n",
               absl::GetFlag(FLAGS_shape).c_str());
  return 1;
}
