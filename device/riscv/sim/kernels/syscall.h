/* The Linux system calls a freestanding RISC-V program makes (write 64,
 * exit 93), which the ISS's environments and qemu-riscv32 both serve. */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_SYSCALL_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_SYSCALL_H_

static inline long joule_syscall(long n, long a, long b, long c) {
  register long a0 asm("a0") = a;
  register long a1 asm("a1") = b;
  register long a2 asm("a2") = c;
  register long a7 asm("a7") = n;
  asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
  return a0;
}

/* Writes `bytes` from p to standard output. */
static inline void joule_write(const void* p, unsigned bytes) {
  joule_syscall(64, 1, (long)p, bytes);
}

#endif /* JOULE_DEVICE_RISCV_SIM_KERNELS_SYSCALL_H_ */
