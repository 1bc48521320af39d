// Loads of every width, signed and unsigned, at every aligned offset and
// with negative offsets; stores of every width; the memory dumped after.
#include "sig.h"

static unsigned char buf[64] __attribute__((aligned(8)));

int main(void) {
  for (u32 i = 0; i < 64; ++i) buf[i] = (unsigned char)(i * 37 + 0x81);
  for (u32 o = 0; o < 32; ++o) {
    u32 r;
    const unsigned char* p = buf + 16 + o;
    asm volatile("lb %0, 0(%1)" : "=r"(r) : "r"(p));
    put(r);
    asm volatile("lbu %0, 0(%1)" : "=r"(r) : "r"(p));
    put(r);
    asm volatile("lb %0, -16(%1)" : "=r"(r) : "r"(p));
    put(r);
    if (o % 2 == 0) {
      asm volatile("lh %0, 0(%1)" : "=r"(r) : "r"(p));
      put(r);
      asm volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(p));
      put(r);
      asm volatile("lh %0, -2(%1)" : "=r"(r) : "r"(p));
      put(r);
    }
    if (o % 4 == 0) {
      asm volatile("lw %0, 0(%1)" : "=r"(r) : "r"(p));
      put(r);
      asm volatile("lw %0, 12(%1)" : "=r"(r) : "r"(p));
      put(r);
    }
  }
  unsigned char* q = buf + 32;
  asm volatile("sb %1, 0(%0)\n sb %1, -1(%0)" : : "r"(q), "r"(0xabcdef12u) : "memory");
  asm volatile("sh %1, 2(%0)\n sh %1, -4(%0)" : : "r"(q), "r"(0x87654321u) : "memory");
  asm volatile("sw %1, 4(%0)\n sw %1, -8(%0)" : : "r"(q), "r"(0xcafef00du) : "memory");
  for (u32 i = 0; i < 64; i += 4) put(*(volatile u32*)(buf + i));
  return flush();
}
