# Entry of the kernel image and the cluster test programs: every core
# starts here with sp at the top of its own TCDM stack (set by the ISS's
# loader, as snitch_cluster's crt0 does), sets gp, calls main(core index)
# and exits with its result (ecall exit, 93).
.section .text.start
.global _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  csrr a0, mhartid
  call main
  li a7, 93
  ecall
