// The fast CPU engine against the reference engine (the oracle), and its
// kernels against the generic ones, on every ISA this CPU has.
#include "device/cpu/fast_engine.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "device/cpu/kernels.h"
#include "device/cpu/reference_engine.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/sampler.h"
#include "model/synthetic.h"
#include "model/tokenizer.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

std::vector<std::string> Isas() {
  std::vector<std::string> isas = {"generic"};
  if (cpu::Avx2Kernels()) isas.push_back("avx2");
  if (cpu::Avx512VnniKernels()) isas.push_back("avx512vnni");
  return isas;
}

TEST(KernelsTest, EveryIsaAgreesWithGeneric) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_real_distribution<float> f(-1, 1);
  for (auto [gs, cols] :
       {std::pair{32, 256}, {32, 288}, {64, 256}, {64, 768}, {4, 256}}) {
    const int rows = 37, batch = 11, groups = cols / gs;
    std::vector<int8_t> w(rows * cols), x(batch * cols);
    std::vector<float> ws(rows * groups), xs(batch * groups), wf(rows * cols),
        xf(batch * cols);
    for (auto& v : w) v = q(rng);
    for (auto& v : ws) v = f(rng) * 0.01f;
    for (auto& v : wf) v = f(rng);
    for (auto& v : xf) v = f(rng);
    std::vector<int32_t> sums(rows * groups);
    for (int g = 0; g < rows * groups; ++g) {
      for (int i = 0; i < gs; ++i) sums[g] += w[g * gs + i];
    }
    // Activations as floats; each ISA quantizes them its own way.
    std::vector<float> xa(batch * cols);
    for (auto& v : xa) v = f(rng);
    auto quantize = [&](const cpu::Kernels& k) {
      for (int b = 0; b < batch; ++b) {
        k.quantize(xa.data() + b * cols, cols, gs, x.data() + b * cols,
                   xs.data() + b * groups);
      }
    };
    std::vector<float> want(batch * rows), want_f(batch * rows);
    quantize(cpu::GenericKernels());
    cpu::GenericKernels().q8_gemm(w.data(), ws.data(), sums.data(), cols, gs,
                                  x.data(), xs.data(), batch, want.data(), rows,
                                  0, rows);
    cpu::GenericKernels().f32_gemm(wf.data(), cols, xf.data(), batch,
                                   want_f.data(), rows, 0, rows);
    for (const std::string& isa : Isas()) {
      const cpu::Kernels& k = cpu::SelectKernels(isa);
      ASSERT_EQ(k.isa, isa);
      std::vector<float> got(batch * rows, -1), got_f(batch * rows, -1);
      quantize(k);
      // Split the rows as the thread pool does.
      k.q8_gemm(w.data(), ws.data(), sums.data(), cols, gs, x.data(), xs.data(),
                batch, got.data(), rows, 0, 20);
      k.q8_gemm(w.data(), ws.data(), sums.data(), cols, gs, x.data(), xs.data(),
                batch, got.data(), rows, 20, rows);
      k.f32_gemm(wf.data(), cols, xf.data(), batch, got_f.data(), rows, 0,
                 rows);
      for (int i = 0; i < batch * rows; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i])))
            << isa << " gs " << gs << " cols " << cols << " " << i;
        ASSERT_NEAR(got_f[i], want_f[i], 1e-4) << isa << " " << i;
      }
      EXPECT_NEAR(k.dot(wf.data(), xf.data(), 77),
                  cpu::GenericKernels().dot(wf.data(), xf.data(), 77), 1e-4);
      std::vector<float> h(101), g(101), h_ref;
      for (int i = 0; i < 101; ++i) {
        h[i] = (i - 50) * 0.37f;
        g[i] = 1.0f + i * 0.01f;
      }
      h_ref = h;
      cpu::GenericKernels().swiglu(h_ref.data(), g.data(), 101);
      k.swiglu(h.data(), g.data(), 101);
      for (int i = 0; i < 101; ++i)
        ASSERT_NEAR(h[i], h_ref[i], 1e-5 * (1 + std::fabs(h_ref[i]))) << isa;
    }
  }
}

std::string Greedy(device::Device& dev, const model::Tokenizer& tok,
                   int steps) {
  device::StepOutput out;
  std::vector<int> t = {1};
  std::string text;
  int token = 1;
  for (int pos = 0; pos < steps; ++pos) {
    EXPECT_TRUE(dev.Decode({{9, pos, t}}, &out).ok());
    const int next = model::Argmax(out.row(0));
    if (next == 1) break;
    text += std::string(tok.Decode(token, next));
    token = t[0] = next;
  }
  return text;
}

TEST(FastEngineTest, GreedyStories260KMatchesLlama2cOnEveryIsa) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  auto tok = model::Tokenizer::Load(testing::SharedModel("tok512.bin"), 512);
  ASSERT_TRUE(tok.ok());
  for (const std::string& isa : Isas()) {
    device::FastEngine::Options o;
    o.isa = isa;
    device::FastEngine dev(o);
    ASSERT_TRUE(dev.LoadModel(**ckpt).ok());
    EXPECT_EQ(Greedy(dev, **tok, 256), testing::kStories260KGreedy) << isa;
  }
}

// Logits of the fast engine against the reference on a synthetic shape,
// decoding `steps` tokens alone and in a batch of 5 different sequences.
void CompareLogits(const std::string& shape, int version, double tolerance) {
  model::Config c = *model::ShapePreset(shape);
  c.seq_len = 64;
  const std::string path =
      testing::TempDir() + "/" + shape + std::to_string(version) + ".bin";
  ASSERT_TRUE(model::WriteCheckpoint(
                  path, c, version,
                  0 == version ? 0
                  : 64 > c.dim
                      ? 32
                      : (c.dim % 64 == 0 && c.hidden_dim % 64 == 0 ? 64 : 32),
                  model::SyntheticWeights(c, 11))
                  .ok());
  auto ckpt = model::Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  device::ReferenceEngine ref({});
  ASSERT_TRUE(ref.LoadModel(**ckpt).ok());
  device::FastEngine fast({});
  ASSERT_TRUE(fast.LoadModel(**ckpt).ok());
  device::StepOutput a, b;
  // A 6-token prompt as one prefill chunk, plus 4 other sequences decoding.
  std::vector<int> prompt = {1, 400, 401, 402, 403, 404};
  ASSERT_TRUE(ref.Prefill({{1, 0, prompt}}, &a).ok());
  ASSERT_TRUE(fast.Prefill({{1, 0, prompt}}, &b).ok());
  double worst = 0, scale = 0;
  for (int step = 0; step < 8; ++step) {
    for (int i = 0; i < c.vocab_size; ++i) {
      worst = std::max(worst, double(std::fabs(a.logits[i] - b.logits[i])));
      scale = std::max(scale, double(std::fabs(a.logits[i])));
    }
    std::vector<int> t = {model::Argmax(a.row(0))};
    ASSERT_TRUE(ref.Decode({{1, 6 + step, t}}, &a).ok());
    // The fast engine decodes it inside a batch with other sequences.
    std::vector<device::SequenceChunk> batch = {{1, 6 + step, t}};
    std::vector<std::vector<int>> others(4, std::vector<int>{7});
    for (int o = 0; o < 4; ++o)
      batch.push_back({uint64_t(100 + o), step, others[o]});
    ASSERT_TRUE(fast.Decode(batch, &b).ok());
  }
  EXPECT_LT(worst, tolerance * scale)
      << shape << " v" << version << ": max |diff| " << worst
      << " of max |logit| " << scale;
  std::printf("%s v%d: logits max |diff| %.2e of max |logit| %.2f (%s)\n",
              shape.c_str(), version, worst, scale, fast.isa().c_str());
}

TEST(FastEngineTest, SyntheticShapesWithinTolerance) {
  // fp32: summation order only. int8: activations are quantized too.
  CompareLogits("stories15M", 0, 1e-4);
  CompareLogits("stories15M", 2, 0.05);
}

}  // namespace
}  // namespace joule
