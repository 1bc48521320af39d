// Core 1 puts 1.5 KiB on a 1 KiB stack: its writes reach core 2's.
#include "snitch.h"

int main(u32 id) {
  if (id == 1) {
    volatile char big[1536];
    for (int i = 0; i < 1536; i += 64) big[i] = (char)i;
    return big[0];
  }
  return 0;
}
