// Request-path costs outside the model: prompt encoding, sampling and
// logprobs.
//   bazel run -c opt //bench:tokenizer_sampler_bench
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_models.h"
#include "benchmark/benchmark.h"
#include "model/logprobs.h"
#include "model/sampler.h"
#include "model/tokenizer.h"

namespace joule::bench {
namespace {

std::string Prose(size_t bytes) {
  const std::string base =
      "Once upon a time, there was a little girl named Lily. She loved to "
      "play outside in the park with her friends and her dog Max. ";
  std::string out;
  while (out.size() < bytes) out += base;
  out.resize(bytes);
  return out;
}

void BM_Encode(benchmark::State& state) {
  const bool big = state.range(0) == 1;
  auto tok = *model::Tokenizer::Load(
      SharedModel(big ? "tokenizer.bin" : "tok512.bin"), big ? 32000 : 512);
  const std::string text = Prose(state.range(1));
  size_t tokens = 0;
  for (auto _ : state) {
    auto t = tok->Encode(text, true);
    tokens = t.size();
    benchmark::DoNotOptimize(t);
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.SetLabel(std::string(big ? "32000-token vocab" : "512-token vocab") +
                 ", " + std::to_string(tokens) + " tokens");
}
BENCHMARK(BM_Encode)->Args({0, 1000})->Args({1, 1000})->Args({1, 8000})->Unit(
    benchmark::kMicrosecond);

void BM_Sample(benchmark::State& state) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 3);
  std::vector<float> logits(32000);
  for (float& l : logits) l = dist(rng);
  model::SamplingParams p;
  p.temperature = state.range(0) == 0 ? 0.0f : 0.8f;
  p.top_p = state.range(0) == 2 ? 0.9f : 1.0f;
  p.top_k = state.range(0) == 3 ? 40 : 0;
  model::Sampler sampler(p);
  std::vector<float> work(logits.size());
  for (auto _ : state) {
    work = logits;
    benchmark::DoNotOptimize(sampler.Sample(absl::MakeSpan(work)));
  }
  const char* names[] = {"greedy", "temperature", "top-p 0.9", "top-k 40"};
  state.SetLabel(std::string(names[state.range(0)]) + ", 32000 logits");
}
BENCHMARK(BM_Sample)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

// The extra work per token of a request that asks for logprobs: the
// log-softmax of the chosen token and the `range(0)` most likely.
void BM_TopLogprobs(benchmark::State& state) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 3);
  std::vector<float> logits(32000);
  for (float& l : logits) l = dist(rng);
  const int top_n = state.range(0);
  std::vector<std::pair<int, float>> top;
  float chosen = 0;
  for (auto _ : state) {
    model::TopLogprobs(logits, 123, top_n, &chosen, &top);
    benchmark::DoNotOptimize(chosen);
    benchmark::DoNotOptimize(top.data());
  }
  state.SetLabel("top " + std::to_string(top_n) + ", 32000 logits");
}
BENCHMARK(BM_TopLogprobs)->Arg(0)->Arg(5)->Arg(20)->Unit(
    benchmark::kMicrosecond);

}  // namespace
}  // namespace joule::bench
