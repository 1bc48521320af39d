/* The scenarios of refusals.c, shared with //tests:iss_cluster_test, which
 * writes one into the program's `scenario` word (and its operand into
 * `arg`) between loading and running the cluster: one ELF, many runs,
 * since each refusal ends the run it happens in. */
#ifndef JOULE_TESTS_RISCV_CLUSTER_REFUSALS_H_
#define JOULE_TESTS_RISCV_CLUSTER_REFUSALS_H_

enum RefusalScenario {
  /* Core 0: frep.o with `arg` in rs1 over one fadd.d of 1.0; emits the sum
   * (how many times the body ran). */
  kFrepCount = 1,
  kFrepInner,         /* Core 0: frep.i. */
  kFrepNested,        /* Core 0: frep.o inside a frep.o body. */
  kFrepStreamControl, /* Core 0: frep.o with the stream-control bit. */
  kFrepBodyTooLong,   /* Core 0: a 33-instruction body. */
  /* Core 0: a 4-element SSR read stream read `arg` + 1 times by FREP;
   * emits the sum of what it read. */
  kSsrPastTheEnd,
  kSsrReadOfWriteStream, /* Core 0: ft2 read while it streams writes. */
  kDmaOnComputeCore,     /* Core 3: dmsrc. */
  kSsrConfigOnDataMover, /* Core 8: scfgwi. */
  kSsrEnableOnDataMover, /* Core 8: csrsi 0x7C0. */
  kFrepOnDataMover,      /* Core 8: frep.o. */
  kDmaBytes,             /* Core 8: a 1-D copy of `arg` bytes. */
  kDmaRows,              /* Core 8: a 2-D copy of `arg` rows of 1 MiB. */
  kDmaSourceHigh,        /* Core 8: dmsrc with `arg` as the high word. */
  kDmaDestinationHigh,   /* Core 8: dmdst with `arg` as the high word. */
  /* Core 0: a 4-element SSR write stream on ft2 written `arg` + 1 times
   * by FREP; emits the sum of what it wrote. */
  kSsrWritePastTheEnd,
  kSsrWriteOfReadStream, /* Core 0: ft0 written while it streams reads. */
  kSsrWriteWithoutJob,   /* Core 0: ft1 written, SSRs on, no job ever. */
  /* The cycles from a load of an operand from DRAM to just after the
   * instruction that reads it (refusals.c, LOAD_USE); emits two words per
   * instruction: with it right after the load, and with one independent
   * instruction between. */
  kLoadUseXfrepXssr, /* Core 0: frep.o (a 1-instruction body), scfgwi. */
  kLoadUseXdma,      /* Core 8: dmsrc, dmcpyi. */
};

#endif /* JOULE_TESTS_RISCV_CLUSTER_REFUSALS_H_ */
