#ifndef JOULE_BENCH_BANDWIDTH_H_
#define JOULE_BENCH_BANDWIDTH_H_

#include <string>

#include "device/cpu/thread_pool.h"

namespace joule::bench {

// Memory read bandwidth, the roofline's numerator, measured two ways that
// must agree: each reads a 1 GiB buffer (far beyond the caches, on huge
// pages as the packed weights are) on every core, best of `reps`, in
// bytes per second.
struct Bandwidth {
  // The engine's thread pool, reading with the widest vector loads this
  // CPU has (AVX-512, else AVX2, chosen at run time) into independent
  // accumulators.
  double simd = 0;
  std::string simd_isa;
  // A STREAM-like sum: an OpenMP parallel reduction, compiled for AVX2.
  double openmp = 0;
  int openmp_threads = 0;

  // What "% of roofline" is set against: the higher of the two, so a
  // slow probe never flatters the engine.
  double best() const { return simd > openmp ? simd : openmp; }
};

// Both methods; `reps` each.
Bandwidth MeasureBandwidth(cpu::ThreadPool& pool, int reps);
// The SIMD method alone (cheap enough to run beside every timed run).
double MeasureSimdBandwidth(cpu::ThreadPool& pool, int reps);

}  // namespace joule::bench

#endif  // JOULE_BENCH_BANDWIDTH_H_
