# Entry of the ISA test programs: gp for the small-data accesses, then
# main, whose return value is the exit status (Linux exit, number 93).
# qemu-riscv32 and the ISS's user environment both set sp.
.section .text.start
.global _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  call main
  li a7, 93
  ecall
