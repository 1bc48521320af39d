// The tile model's cost table parser (a file the daemon reads) on any bytes:
// it must refuse or accept without crashing, and an accepted table must
// answer lookups anywhere with a utilization in (0, 1].
#include <cstdint>
#include <string>

#include "device/riscv/sim/cost_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = joule::riscv::CostTable::Parse(
      std::string(reinterpret_cast<const char*>(data), size));
  if (!t.ok()) return 0;
  for (double x : {0.5, 1.0, 7.0, 100.0, 1e12}) {
    const double g = t->Gemm(x, x * 3, x / 2);
    const double a = t->Attention(x, x * 5);
    if (!(g > 0 && g <= 1 + 1e-12) || !(a > 0 && a <= 1 + 1e-12))
      __builtin_trap();
  }
  return 0;
}
