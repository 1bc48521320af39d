// Runs a freestanding RV32IMAFD ELF on the ISS as qemu-riscv32 would: its
// writes to fd 1/2 go to stdout, its exit status is ours.
//   bazel run //device/riscv/sim/iss:rv_run -- program.elf [--stats]
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "device/riscv/sim/iss/user_env.h"

ABSL_FLAG(bool, stats, false,
          "Print instructions, seconds and simulated MIPS to stderr.");
ABSL_FLAG(uint64_t, max_instructions, uint64_t{1} << 36,
          "Stop the program after this many instructions.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("rv_run program.elf [--stats]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: rv_run program.elf [--stats]\n");
    return 2;
  }
  std::ifstream in(args[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "rv_run: cannot read %s\n", args[1]);
    return 2;
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  auto run =
      joule::iss::RunUserProgram(bytes, absl::GetFlag(FLAGS_max_instructions));
  if (!run.ok()) {
    std::fprintf(stderr, "rv_run: %s\n", run.status().ToString().c_str());
    return 2;
  }
  std::fwrite(run->out.data(), 1, run->out.size(), stdout);
  if (absl::GetFlag(FLAGS_stats)) {
    std::fprintf(stderr, "rv_run: %llu instructions in %.3f s: %.1f MIPS\n",
                 static_cast<unsigned long long>(run->instructions),
                 run->seconds, run->instructions / run->seconds / 1e6);
  }
  switch (run->stop.reason) {
    case joule::iss::Stop::kExit:
      return run->stop.exit_code;
    case joule::iss::Stop::kFault:
      std::fprintf(stderr, "rv_run: %s\n", run->stop.message.c_str());
      return 134;
    case joule::iss::Stop::kBreak:
      std::fprintf(stderr, "rv_run: ebreak at 0x%08x\n", run->stop.pc);
      return 133;
    default:
      std::fprintf(stderr, "rv_run: stopped after --max_instructions\n");
      return 124;
  }
}
