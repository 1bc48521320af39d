// Every core spins forever, for //tests:iss_tools_test: what rv_cluster's
// --max_cycles and rv_run's --max_instructions must stop. rv_run runs it
// too (a user program may be linked anywhere its segments fit).
#include "snitch.h"

int main(u32 id) {
  (void)id;
  for (;;) asm volatile("");
}
