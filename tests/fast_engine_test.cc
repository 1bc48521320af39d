// The fast CPU engine against the reference engine (the oracle), and its
// kernels against the generic ones, on every ISA this CPU has.
#include "device/cpu/fast_engine.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "device/cpu/cache_tiles.h"
#include "device/cpu/kernels.h"
#include "device/cpu/packed_weights.h"
#include "device/cpu/reference_engine.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/convert.h"
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
  for (auto [gs, cols] : {std::pair{32, 256},
                          {32, 288},
                          {64, 256},
                          {64, 768},
                          {4, 256},
                          {8, 64},
                          {16, 48},
                          {2, 64}}) {
    const int rows = 37, batch = 11, groups = cols / gs;
    std::vector<int8_t> w(rows * cols), x(batch * cols);
    std::vector<float> ws(rows * groups), xs(batch * groups), wf(rows * cols),
        xf(batch * cols);
    for (auto& v : w) v = q(rng);
    for (auto& v : ws) v = f(rng) * 0.01f;
    for (auto& v : wf) v = f(rng);
    for (auto& v : xf) v = f(rng);
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
    const cpu::PackedQ8 plain(w.data(), ws.data(), rows, cols, gs, 1, false);
    cpu::GenericKernels().q8_gemm(plain.weights(), x.data(), xs.data(), batch,
                                  want.data(), rows, 0, rows);
    const cpu::PackedF32 plain_f(wf.data(), rows, cols, 1);
    cpu::GenericKernels().f32_gemm(plain_f.weights(), xf.data(), batch,
                                   want_f.data(), rows, 0, rows);
    for (const std::string& isa : Isas()) {
      const cpu::Kernels& k = cpu::SelectKernels(isa);
      ASSERT_EQ(k.isa, isa);
      if (k.row_block > 1 && gs % 4 != 0) continue;  // The engine's rule.
      // Rows padded to whole blocks must never be stored: the canary -1
      // past `rows` in a wider output must survive.
      const int stride = rows + 5;
      std::vector<float> got(batch * stride, -1), got_f(batch * stride, -1);
      quantize(k);
      const cpu::PackedQ8 packed(w.data(), ws.data(), rows, cols, gs,
                                 k.row_block, k.unsigned_activations);
      const cpu::Q8Weights& pw = packed.weights();
      // Split the blocks as the thread pool does: any cut, odd counts.
      const int cut = pw.blocks() / 2 + (pw.blocks() > 2 ? 1 : 0);
      k.q8_gemm(pw, x.data(), xs.data(), batch, got.data(), stride, 0, cut);
      k.q8_gemm(pw, x.data(), xs.data(), batch, got.data(), stride, cut,
                pw.blocks());
      for (int b = 0; b < batch; ++b) {
        for (int r = 0; r < rows; ++r) {
          ASSERT_NEAR(got[b * stride + r], want[b * rows + r],
                      1e-5 * (1 + std::fabs(want[b * rows + r])))
              << isa << " gs " << gs << " cols " << cols << " b " << b << " r "
              << r;
        }
        for (int r = rows; r < stride; ++r)
          ASSERT_EQ(got[b * stride + r], -1) << isa << " wrote padding row";
      }
      // fp32 in the ISA's packed layout, split and canaried the same way.
      const cpu::PackedF32 packed_f(wf.data(), rows, cols, k.f32_row_block);
      const cpu::F32Weights& pf = packed_f.weights();
      const int cut_f = pf.blocks() / 2 + (pf.blocks() > 2 ? 1 : 0);
      k.f32_gemm(pf, xf.data(), batch, got_f.data(), stride, 0, cut_f);
      k.f32_gemm(pf, xf.data(), batch, got_f.data(), stride, cut_f,
                 pf.blocks());
      for (int b = 0; b < batch; ++b) {
        for (int r = 0; r < rows; ++r) {
          ASSERT_NEAR(got_f[b * stride + r], want_f[b * rows + r], 1e-4)
              << isa << " fp32 cols " << cols << " b " << b << " r " << r;
        }
        for (int r = rows; r < stride; ++r)
          ASSERT_EQ(got_f[b * stride + r], -1) << isa << " wrote padding row";
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

// Q4_0 nibbles in each ISA's tiles give the same dot products as the same
// weights widened to int8 (they are exact either way): the kernels unpack
// every nibble to its column and the -8 re-centring and bias agree.
TEST(KernelsTest, Q4NibblesEqualTheWidenedInt8OnEveryIsa) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> f(-1, 1);
  for (auto [rows, cols] : {std::pair{37, 256}, {16, 32}, {33, 96}}) {
    const int gs = 32, batch = 11, groups = cols / gs;
    std::vector<uint8_t> q4(rows * cols / 2);
    std::vector<int8_t> wide(rows * cols), x(batch * cols);
    std::vector<float> ws(rows * groups), xs(batch * groups), xa(batch * cols);
    for (auto& v : q4) v = static_cast<uint8_t>(byte(rng));
    for (auto& v : ws) v = f(rng) * 0.01f;
    for (auto& v : xa) v = f(rng);
    // ggml's Q4_0 order: byte j of a group holds values j and 16 + j.
    for (int e = 0; e < rows * cols; ++e) {
      const uint8_t b = q4[e / 32 * 16 + e % 16];
      wide[e] = static_cast<int8_t>((e % 32 < 16 ? b & 15 : b >> 4) - 8);
    }
    for (const std::string& isa : Isas()) {
      const cpu::Kernels& k = cpu::SelectKernels(isa);
      for (int b = 0; b < batch; ++b) {
        k.quantize(xa.data() + b * cols, cols, gs, x.data() + b * cols,
                   xs.data() + b * groups);
      }
      const cpu::PackedQ8 widened(wide.data(), ws.data(), rows, cols, gs,
                                  k.row_block, k.unsigned_activations);
      std::unique_ptr<cpu::PackedQ8> nibbles =
          cpu::PackedQ8::FromQ4_0(q4.data(), ws.data(), rows, cols, k.row_block,
                                  k.unsigned_activations);
      ASSERT_TRUE(nibbles->weights().nibbles);
      ASSERT_EQ(nibbles->weights().block_bytes() * 2,
                widened.weights().block_bytes());
      const int stride = rows + 5;
      std::vector<float> want(batch * stride, -1), got(batch * stride, -1);
      const cpu::Q8Weights& pw = nibbles->weights();
      k.q8_gemm(widened.weights(), x.data(), xs.data(), batch, want.data(),
                stride, 0, pw.blocks());
      const int cut = pw.blocks() / 2 + (pw.blocks() > 2 ? 1 : 0);
      k.q8_gemm(pw, x.data(), xs.data(), batch, got.data(), stride, 0, cut);
      k.q8_gemm(pw, x.data(), xs.data(), batch, got.data(), stride, cut,
                pw.blocks());
      for (int i = 0; i < batch * stride; ++i) {
        ASSERT_EQ(got[i], want[i])
            << isa << " rows " << rows << " cols " << cols << " at " << i;
      }
    }
  }
}

// Each ISA's attention over the tiled key cache against softmax(q.k) v
// computed plainly from row-major keys: head sizes with and without vector
// tails, lengths inside, at and across tile edges, and stale values past n
// that must not leak in.
TEST(KernelsTest, AttentionOverKeyTilesMatchesPlainSoftmax) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> f(-2, 2);
  for (int hs : {8, 10, 12, 48, 64, 72}) {
    const int cap = 48;
    std::vector<float> k(cap * hs), v(cap * hs + 1, 1e30f), q(hs);
    for (auto& x : k) x = f(rng);
    for (int i = 0; i < cap * hs; ++i) v[i] = f(rng);
    for (auto& x : q) x = f(rng);
    const float scale = 1.0f / std::sqrt(float(hs));
    for (int n : {1, 5, 15, 16, 17, 33, 40}) {
      // Keys in tiles; past n, stale entries so large they would dominate
      // the softmax if read.
      std::vector<float> tiles(cap * hs, 1e30f);
      for (int t = 0; t < n; ++t) {
        for (int d = 0; d < hs; ++d) {
          tiles[(t / cpu::kKeyTile) * hs * cpu::kKeyTile + d * cpu::kKeyTile +
                t % cpu::kKeyTile] = k[t * hs + d];
        }
      }
      std::vector<double> p(n), want(hs, 0.0);
      double max = -1e300, sum = 0;
      for (int t = 0; t < n; ++t) {
        double s = 0;
        for (int d = 0; d < hs; ++d) s += double(q[d]) * k[t * hs + d];
        p[t] = s * scale;
        max = std::max(max, p[t]);
      }
      for (int t = 0; t < n; ++t) sum += p[t] = std::exp(p[t] - max);
      for (int t = 0; t < n; ++t)
        for (int d = 0; d < hs; ++d) want[d] += p[t] / sum * v[t * hs + d];
      // The fp16 cache holds the same entries rounded to half precision
      // (stale ones become Inf: still never read).
      std::vector<uint16_t> tiles16(tiles.size()), v16(v.size());
      for (size_t i = 0; i < tiles.size(); ++i)
        tiles16[i] = cpu::FloatToHalf(tiles[i]);
      for (size_t i = 0; i < v.size(); ++i) v16[i] = cpu::FloatToHalf(v[i]);
      for (const std::string& isa : Isas()) {
        const cpu::Kernels& kern = cpu::SelectKernels(isa);
        std::vector<float> scores(cap), out(hs + 1, -7.0f),
            out16(hs + 1, -7.0f);
        // The "next head" to prefetch: this one (results must not change).
        kern.attend(q.data(), tiles.data(), v.data(), n, hs, scale,
                    scores.data(), out.data(), tiles.data(), v.data());
        kern.attend_f16(q.data(), tiles16.data(), v16.data(), n, hs, scale,
                        scores.data(), out16.data(), nullptr, nullptr);
        for (int d = 0; d < hs; ++d) {
          ASSERT_NEAR(out[d], want[d], 2e-5 * (1 + std::fabs(want[d])))
              << isa << " hs " << hs << " n " << n << " d " << d;
          // Half precision: 2^-11 relative per entry, through the softmax.
          ASSERT_NEAR(out16[d], want[d], 1e-2 * (1 + std::fabs(want[d])))
              << isa << " fp16 hs " << hs << " n " << n << " d " << d;
        }
        EXPECT_EQ(out[hs], -7.0f) << isa << " wrote past the head";
        EXPECT_EQ(out16[hs], -7.0f) << isa << " fp16 wrote past the head";
      }
      // The int8 cache, written position by position by each ISA's
      // store_i8 over stale tiles (huge scales, extreme entries) that must
      // not leak in either.
      using Tile = cpu::CacheTile<int8_t>;
      const size_t bytes = cap / cpu::kKeyTile * Tile::Bytes(hs);
      std::vector<int8_t> want_k, want_v;
      for (const std::string& isa : Isas()) {
        const cpu::Kernels& kern = cpu::SelectKernels(isa);
        std::vector<float> stale(bytes / 4, 1e30f);
        std::vector<int8_t> k8(bytes), v8(bytes);
        std::memcpy(k8.data(), stale.data(), bytes);
        std::memcpy(v8.data(), stale.data(), bytes);
        for (int t = 0; t < n; ++t) {
          kern.store_i8(k.data() + t * hs, v.data() + t * hs, hs, t, k8.data(),
                        v8.data());
        }
        if (want_k.empty()) {
          want_k = k8;
          want_v = v8;
        }
        // Every ISA rounds the same way: the same bytes as the first.
        ASSERT_EQ(k8, want_k) << isa << " hs " << hs << " n " << n;
        ASSERT_EQ(v8, want_v) << isa << " hs " << hs << " n " << n;
        std::vector<float> scores(cap), out8(hs + 1, -7.0f);
        kern.attend_i8(q.data(), k8.data(), v8.data(), n, hs, scale,
                       scores.data(), out8.data(), k8.data(), v8.data());
        for (int d = 0; d < hs; ++d) {
          // 1/254 of each position's largest entry, through the softmax.
          ASSERT_NEAR(out8[d], want[d], 3e-2 * (1 + std::fabs(want[d])))
              << isa << " int8 hs " << hs << " n " << n << " d " << d;
        }
        EXPECT_EQ(out8[hs], -7.0f) << isa << " int8 wrote past the head";
      }
    }
  }
}

// The portable half conversion is IEEE round-to-nearest-even, bit for bit
// what F16C produces (each ISA's to_f16), including ties, subnormals,
// overflow to Inf, and signed zeros.
TEST(KernelsTest, HalfConversionMatchesIeeeOnEveryIsa) {
  std::vector<float> xs = {
      0.0f,        -0.0f,         1.0f,     -1.0f,          65504.0f,
      65520.0f,    65519.99f,     1e9f,     -1e9f,          6.1035156e-5f,
      6.0e-8f,     2.9802322e-8f, 1.0e-10f, 1.00048828125f, 1.00146484375f,
      3.14159265f, INFINITY,      -INFINITY};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> e(-30, 17);
  for (int i = 0; i < 20000; ++i) {
    xs.push_back((i % 2 ? -1 : 1) * std::exp2(e(rng)));
  }
  for (const std::string& isa : Isas()) {
    const cpu::Kernels& k = cpu::SelectKernels(isa);
    std::vector<uint16_t> got(xs.size()), strided(xs.size() * 3);
    k.to_f16(xs.data(), xs.size(), got.data(), 1);
    k.to_f16(xs.data(), xs.size(), strided.data(), 3);
    for (size_t i = 0; i < xs.size(); ++i) {
      ASSERT_EQ(got[i], cpu::FloatToHalf(xs[i])) << isa << " x " << xs[i];
      ASSERT_EQ(strided[i * 3], got[i]) << isa;
    }
  }
  for (float x : xs) {
    const float back = cpu::HalfToFloat(cpu::FloatToHalf(x));
    if (std::fabs(x) <= 65504.0f && std::fabs(x) >= 6.1035156e-5f) {
      ASSERT_NEAR(back, x, std::fabs(x) * (1.0 / 2048)) << x;
    }
  }
  EXPECT_TRUE(std::isnan(cpu::HalfToFloat(cpu::FloatToHalf(NAN))));
  EXPECT_EQ(cpu::HalfToFloat(0x0001), std::exp2(-24.0f));
  EXPECT_EQ(cpu::HalfToFloat(0x7BFF), 65504.0f);
}

std::string Greedy(device::Device& dev, const model::Tokenizer& tok,
                   int steps) {
  device::StepOutput out;
  std::vector<int> t = {1};
  std::string text;
  int token = 1;
  for (int pos = 0; pos < steps; ++pos) {
    EXPECT_TRUE(dev.Step({{9, pos, t}}, &out).ok());
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

// Greedy tokens of `dev` from BOS, `steps` of them, as one growing context.
std::vector<int> GreedyTokens(device::Device& dev, int steps) {
  device::StepOutput out;
  std::vector<int> tokens = {1};
  for (int pos = 0; pos < steps; ++pos) {
    const std::vector<int> one = {tokens.back()};
    EXPECT_TRUE(dev.Step({{3, pos, one}}, &out).ok());
    tokens.push_back(model::Argmax(out.row(0)));
  }
  return tokens;
}

size_t SamePrefix(const std::vector<int>& a, const std::vector<int>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// The int8 KV cache against the fp16 one on a real trained model (stories260K
// converted to int8): greedy text from both follows the reference engine
// (fp32 cache) as far, and a broken cache (a wrong scale, a misplaced
// entry) loses it within a few tokens.
TEST(FastEngineTest, Int8CacheFollowsTheReferenceAsFarAsFp16OnStories260K) {
  auto fp32 = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(fp32.ok());
  const std::string path = testing::TempDir() + "/s260k_q8_cache.bin";
  ASSERT_TRUE(model::ConvertCheckpoint(**fp32, path, 2, 0).ok());
  auto q8 = model::Checkpoint::Open(path);
  ASSERT_TRUE(q8.ok()) << q8.status();
  const int kSteps = 255;
  device::ReferenceEngine ref({});
  ASSERT_TRUE(ref.LoadModel(**q8).ok());
  const std::vector<int> want = GreedyTokens(ref, kSteps);
  for (const std::string& isa : Isas()) {
    size_t same[2];
    for (int i = 0; i < 2; ++i) {
      device::FastEngine::Options o;
      o.isa = isa;
      o.kv_cache = i == 0 ? "fp16" : "int8";
      device::FastEngine dev(o);
      ASSERT_TRUE(dev.LoadModel(**q8).ok());
      EXPECT_NE(dev.capabilities().precision.find(o.kv_cache + " KV cache"),
                std::string::npos)
          << dev.capabilities().precision;
      same[i] = SamePrefix(GreedyTokens(dev, kSteps), want);
    }
    std::printf(
        "%s: greedy tokens as the reference: fp16 cache %zu, int8 %zu "
        "of %d\n",
        isa.c_str(), same[0], same[1], kSteps + 1);
    EXPECT_GE(same[1], std::min<size_t>(same[0], 64)) << isa;
  }
}

// Logits of the fast engine against the reference on a synthetic shape,
// decoding `steps` tokens alone and in a batch of 5 different sequences.
void CompareLogits(const std::string& shape, int version, double tolerance,
                   const std::string& kv_cache = "int8") {
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
  device::FastEngine::Options o;
  o.kv_cache = kv_cache;
  device::FastEngine fast(o);
  ASSERT_TRUE(fast.LoadModel(**ckpt).ok());
  device::StepOutput a, b;
  // A 6-token prompt as one prefill chunk, plus 4 other sequences decoding.
  std::vector<int> prompt = {1, 400, 401, 402, 403, 404};
  ASSERT_TRUE(ref.Step({{1, 0, prompt}}, &a).ok());
  ASSERT_TRUE(fast.Step({{1, 0, prompt}}, &b).ok());
  double worst = 0, scale = 0;
  for (int step = 0; step < 8; ++step) {
    for (int i = 0; i < c.vocab_size; ++i) {
      worst = std::max(worst, double(std::fabs(a.logits[i] - b.logits[i])));
      scale = std::max(scale, double(std::fabs(a.logits[i])));
    }
    std::vector<int> t = {model::Argmax(a.row(0))};
    ASSERT_TRUE(ref.Step({{1, 6 + step, t}}, &a).ok());
    // The fast engine decodes it inside a batch with other sequences.
    std::vector<device::SequenceChunk> batch = {{1, 6 + step, t}};
    std::vector<std::vector<int>> others(4, std::vector<int>{7});
    for (int o = 0; o < 4; ++o)
      batch.push_back({uint64_t(100 + o), step, others[o]});
    ASSERT_TRUE(fast.Step(batch, &b).ok());
  }
  EXPECT_LT(worst, tolerance * scale)
      << shape << " v" << version << " " << kv_cache << " cache: max |diff| "
      << worst << " of max |logit| " << scale;
  std::printf("%s v%d: logits max |diff| %.2e of max |logit| %.2f (%s, %s)\n",
              shape.c_str(), version, worst, scale, fast.isa().c_str(),
              fast.capabilities().precision.c_str());
}

TEST(FastEngineTest, SyntheticShapesWithinTolerance) {
  // fp32: summation order only. int8: activations are quantized too.
  CompareLogits("stories15M", 0, 1e-4);
  CompareLogits("stories15M", 2, 0.05, "fp16");
  CompareLogits("stories15M", 2, 0.05, "int8");
}

TEST(FastEngineTest, RejectsAnUnknownKvCacheFormat) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  device::FastEngine::Options o;
  o.kv_cache = "fp8";
  device::FastEngine dev(o);
  const absl::Status s = dev.LoadModel(**ckpt);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("int8 or fp16"), std::string::npos) << s;
}

// A step writes each sequence's cache from one job: the same sequence twice
// in a step is refused, and nothing of that step is kept.
TEST(FastEngineTest, RejectsASequenceTwiceInOneStep) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  device::FastEngine dev({});
  ASSERT_TRUE(dev.LoadModel(**ckpt).ok());
  device::StepOutput out;
  const std::vector<int> a = {1, 2}, b = {3};
  const absl::Status s = dev.Step({{7, 0, a}, {7, 2, b}}, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s;
  EXPECT_EQ(dev.kv_used_tokens(), 0);
  EXPECT_TRUE(dev.Step({{7, 0, a}}, &out).ok());
}

}  // namespace
}  // namespace joule
