// The reference engine's decode and prefill speed (it is the oracle, not the
// fast path; the fast CPU engine gets its own benchmark).
//   bazel run -c opt //bench:reference_engine_bench
#include <memory>
#include <vector>

#include "bench/bench_models.h"
#include "benchmark/benchmark.h"
#include "device/cpu/reference_engine.h"

namespace joule::bench {
namespace {

std::unique_ptr<model::Checkpoint> Load(int which) {
  switch (which) {
    case 0:
      return *model::Checkpoint::Open(SharedModel("stories260K.bin"));
    case 1:
      return Synthetic("stories15M", 0);
    default:
      return Synthetic("stories15M", 2);
  }
}

const char* Name(int which) {
  return which == 0   ? "stories260K v0"
         : which == 1 ? "stories15M-shape v0"
                      : "stories15M-shape v2";
}

// One token per iteration at growing positions, as in generation.
void BM_Decode(benchmark::State& state) {
  auto ckpt = Load(state.range(0));
  device::ReferenceEngine dev({});
  if (!dev.LoadModel(*ckpt).ok()) std::abort();
  device::StepOutput out;
  const int max_pos = std::min(256, ckpt->config().seq_len);
  int pos = 0;
  device::SequenceId seq = 1;
  std::vector<int> tok = {1};
  for (auto _ : state) {
    if (pos == max_pos) {
      state.PauseTiming();
      dev.Release(seq++);
      pos = 0;
      state.ResumeTiming();
    }
    if (!dev.Step({{seq, pos, tok}}, &out).ok()) std::abort();
    tok[0] = 100 + pos % 200;
    ++pos;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(Name(state.range(0))) +
                 ", tokens/s, positions 0-255");
}
BENCHMARK(BM_Decode)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

void BM_Prefill(benchmark::State& state) {
  auto ckpt = Load(state.range(0));
  device::ReferenceEngine dev({});
  if (!dev.LoadModel(*ckpt).ok()) std::abort();
  device::StepOutput out;
  std::vector<int> prompt(128);
  for (int i = 0; i < 128; ++i) prompt[i] = 1 + (i * 37) % 500;
  device::SequenceId seq = 1;
  for (auto _ : state) {
    if (!dev.Step({{seq, 0, prompt}}, &out).ok()) std::abort();
    state.PauseTiming();
    dev.Release(seq++);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * prompt.size());
  state.SetLabel(std::string(Name(state.range(0))) +
                 ", 128-token prompt, tokens/s");
}
BENCHMARK(BM_Prefill)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace joule::bench
