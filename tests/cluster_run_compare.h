// Everything a simulated cluster run reports, compared field by field: the
// reuse tests require a reset cluster to reproduce a fresh one exactly.
#ifndef JOULE_TESTS_CLUSTER_RUN_COMPARE_H_
#define JOULE_TESTS_CLUSTER_RUN_COMPARE_H_

#include <string>
#include <tuple>

#include "device/riscv/sim/iss/cluster.h"
#include "gtest/gtest.h"

namespace joule::testing {

static_assert(sizeof(iss::CoreCounters) == 10 * sizeof(uint64_t),
              "a counter was added: compare it below");
static_assert(sizeof(iss::DmaCounters) == 4 * sizeof(uint64_t),
              "a counter was added: compare it below");

inline auto Fields(const iss::CoreCounters& c) {
  return std::make_tuple(c.cycles, c.instructions, c.fpu_issues, c.fpu_busy,
                         c.flops_fp64, c.flops_fp32, c.tcdm_accesses,
                         c.tcdm_conflicts, c.dram_accesses, c.frep_repeats);
}

inline auto Fields(const iss::DmaCounters& d) {
  return std::make_tuple(d.transfers, d.bytes, d.dram_bytes, d.busy_cycles);
}

inline void ExpectSameRun(const iss::ClusterRun& got,
                          const iss::ClusterRun& want,
                          const std::string& what) {
  EXPECT_EQ(got.ok, want.ok) << what;
  EXPECT_EQ(got.error, want.error) << what;
  EXPECT_EQ(got.cycles, want.cycles) << what;
  ASSERT_EQ(got.cores.size(), want.cores.size()) << what;
  for (size_t i = 0; i < got.cores.size(); ++i) {
    EXPECT_EQ(Fields(got.cores[i]), Fields(want.cores[i]))
        << what << ", core " << i;
  }
  EXPECT_EQ(Fields(got.dma), Fields(want.dma)) << what;
  EXPECT_EQ(got.exit_codes, want.exit_codes) << what;
  EXPECT_EQ(got.out, want.out) << what;
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_CLUSTER_RUN_COMPARE_H_
