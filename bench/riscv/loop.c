// A long mixed integer and double-precision loop for the ISS's speed on
// one hart (bench:iss_bench): hashing, a recurrence and branches, ~40 M
// instructions.
#include "syscall.h"

typedef unsigned int u32;

static u32 table[256];

int main(void) {
  u32 h = 2166136261u;
  double x = 0.5, acc = 0;
  for (int i = 0; i < 256; ++i) table[i] = i * 2654435761u;
  for (u32 i = 0; i < 2000000; ++i) {
    h = (h ^ table[i & 255]) * 16777619u;
    if (h & 1) x = x * 0.999 + 0.001; else x = x * 1.0001;
    acc += x;
  }
  u32 out[3] = {h, (u32)acc, (u32)(x * 1e6)};
  joule_write(out, sizeof(out));
  return 0;
}
