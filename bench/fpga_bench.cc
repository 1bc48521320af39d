// The FPGA design's MODELED speed and energy on a stories110M-shaped int8
// model, beside HLSTransform's reported ratios, with this machine's CPU
// engine measured in the same run for the same ratios.
//   bazel run -c opt //bench:fpga_bench
#include <cstdio>

#include "absl/time/clock.h"
#include "bench/bench_models.h"
#include "device/cpu/reference_engine.h"
#include "device/fpga/vu9p_model.h"
#include "model/sampler.h"

int main() {
  auto ckpt = joule::bench::Synthetic("stories110M", 2);
  const joule::model::Config& c = ckpt->config();
  joule::fpga::Vu9pModel fpga;
  // Mean over a 256-token generation.
  double fpga_s = 0;
  for (int pos = 0; pos < 256; ++pos) fpga_s += fpga.SecondsPerToken(c, pos);
  fpga_s /= 256;
  const double fpga_j = fpga.board_watts * fpga_s;

  // The CPU engine here, measured: the same 110M shape, 16 tokens.
  joule::device::ReferenceEngine cpu({});
  if (!cpu.LoadModel(*ckpt).ok()) return 1;
  joule::device::StepOutput out;
  std::vector<int> tok = {1};
  const int kTokens = 16;
  const absl::Time start = absl::Now();
  for (int pos = 0; pos < kTokens; ++pos) {
    if (!cpu.Step({{1, pos, tok}}, &out).ok()) return 1;
    tok[0] = joule::model::Argmax(out.row(0));
  }
  const double cpu_s = absl::ToDoubleSeconds(absl::Now() - start) / kTokens;
  const double cpu_watts = 15.0;  // The CPU power model's default (modeled).
  const double cpu_j = cpu_watts * cpu_s;

  std::printf("fpga_bench: stories110M shape, int8 Q8_0 (group size %d)\n",
              ckpt->group_size());
  std::printf("  FPGA (MODELED: %s)\n", fpga.Describe().c_str());
  std::printf("    %.1f tok/s, %.4f J/token, %.0f cycles/token at position 0\n",
              1.0 / fpga_s, fpga_j, double(fpga.CyclesPerToken(c, 0)));
  std::printf(
      "  CPU here (reference engine, measured time, modeled %.0f W): %.1f "
      "tok/s, %.4f J/token\n",
      cpu_watts, 1.0 / cpu_s, cpu_j);
  std::printf(
      "  FPGA vs this CPU: %.2fx the speed, %.2fx less energy per token\n",
      cpu_s / fpga_s, cpu_j / fpga_j);
  std::printf(
      "  HLSTransform reports: 2.46x the speed of a Xeon E5-2686 v4 with "
      "12.75x less\n"
      "  energy per token; 0.53x the speed of an RTX 3090 with 8.25x less "
      "energy.\n");
  return 0;
}
