// Every core does a different amount of work, then meets the others at
// the hardware barrier; core 0 reports each core's cycle before and after
// it, and a sum the others wrote before a second barrier.
#include "snitch.h"

static volatile u32 before[9], after[9], square[9];

int main(u32 id) {
  volatile u32 x = 0;
  for (u32 i = 0; i < 40 * id; ++i) x += i;
  before[id] = cycle();
  barrier();
  after[id] = cycle();
  square[id] = id * id;
  barrier();
  if (id == 0) {
    u32 sum = 0;
    for (int i = 0; i < 9; ++i) sum += square[i];
    emit((const void*)before, sizeof(before));
    emit((const void*)after, sizeof(after));
    emit(&sum, 4);
  }
  return 0;
}
