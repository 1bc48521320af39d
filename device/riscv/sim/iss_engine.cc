#include "device/riscv/sim/iss_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "device/riscv/sim/kernels/launch.h"

namespace joule::riscv {
namespace {

// What one item may place in the cluster's 64 MiB of DRAM beside the image.
constexpr uint64_t kStageBytes = 48u << 20;
// The GEMV kernel's TCDM room for every token's x and y (gemv.c XY_BYTES).
constexpr uint64_t kXyFloats = 32 * 1024 / 4;
constexpr uint64_t kMaxGemvTokens = 64;
// W tiles of 8 rows in gemv.c's 32 KiB buffers.
constexpr uint64_t kMaxGemvK = 32 * 1024 / 4 / 8;
constexpr uint64_t kMaxHead = 256;  // vector_ops.c MAX_HEAD.
constexpr uint64_t kCopyPiece = 1u << 20;

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
uint64_t RoundUp(uint64_t a, uint64_t b) { return CeilDiv(a, b) * b; }

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

}  // namespace

class IssEngine::Staging {
 public:
  Staging(uint32_t base, uint64_t end) : next_(base), end_(end) {}

  uint32_t In(const void* p, uint64_t bytes) {
    const uint32_t a = Alloc(bytes);
    const auto* b = static_cast<const uint8_t*>(p);
    if (status_.ok())
      inputs_.push_back({a, std::vector<uint8_t>(b, b + bytes)});
    return a;
  }
  uint32_t Out(uint64_t bytes) {
    const uint32_t a = Alloc(bytes);
    if (status_.ok()) outputs_.emplace_back(a, static_cast<uint32_t>(bytes));
    return a;
  }
  uint32_t InOut(const void* p, uint64_t bytes) {
    const uint32_t a = In(p, bytes);
    if (status_.ok()) outputs_.emplace_back(a, static_cast<uint32_t>(bytes));
    return a;
  }
  const std::vector<iss::KernelImage::Buffer>& inputs() const {
    return inputs_;
  }
  const std::vector<std::pair<uint32_t, uint32_t>>& outputs() const {
    return outputs_;
  }
  const absl::Status& status() const { return status_; }

 private:
  uint32_t Alloc(uint64_t bytes) {
    const uint64_t at = RoundUp(next_, 64);
    if (bytes > kStageBytes || at + bytes > end_) {
      if (status_.ok()) {
        status_ = absl::ResourceExhaustedError(absl::StrFormat(
            "a kernel's operands (over %d bytes) exceed the cluster DRAM "
            "the ISS engine stages them in",
            bytes));
      }
      return 0;
    }
    next_ = at + bytes;
    return static_cast<uint32_t>(at);
  }

  uint64_t next_, end_;
  std::vector<iss::KernelImage::Buffer> inputs_;
  std::vector<std::pair<uint32_t, uint32_t>> outputs_;
  absl::Status status_;
};

absl::StatusOr<std::unique_ptr<IssEngine>> IssEngine::Create(
    const SimConfig& config, const std::string& kernel_image) {
  if (config.precision != Precision::kFp32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ISS engine's kernels compute in fp32; the configuration asks "
        "for ",
        PrecisionName(config.precision)));
  }
  absl::StatusOr<iss::KernelImage> image =
      iss::KernelImage::FromFile(kernel_image);
  if (!image.ok()) return image.status();
  return std::unique_ptr<IssEngine>(new IssEngine(config, *std::move(image)));
}

IssEngine::IssEngine(const SimConfig& config, iss::KernelImage image)
    : config_(config),
      image_(std::move(image)),
      energy_(iss::CalibratedEnergyModel()),
      busy_(config.clusters(), 0) {
  energy_.hbm_byte_joules = config.joules_per_hbm_byte;
}

absl::Status IssEngine::Run(uint32_t kernel, const std::vector<uint64_t>& args,
                            Memory& mem, Counters* counters) {
  std::fill(busy_.begin(), busy_.end(), 0);
  events_ = {};
  absl::Status s;
  uint64_t flag = 0;
  auto run = [&](auto parsed, auto method) {
    if (!parsed.ok()) return parsed.status();
    flag = parsed->flag;
    return (this->*method)(*parsed, mem);
  };
  switch (kernel) {
    case kGemm:
      s = run(ParseGemm(args, mem), &IssEngine::Gemm);
      break;
    case kRmsNorm:
      s = run(ParseRmsNorm(args, mem), &IssEngine::RmsNorm);
      break;
    case kRope:
      s = run(ParseRope(args, mem), &IssEngine::Rope);
      break;
    case kAttention:
      s = run(ParseAttention(args, mem), &IssEngine::Attention);
      break;
    case kSwiGlu:
      s = run(ParseSwiGlu(args, mem), &IssEngine::SwiGlu);
      break;
    case kCopy:
      s = run(ParseCopy(args, mem), &IssEngine::Copy);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown kernel %d", kernel));
  }
  if (!s.ok()) return s;
  Charge(counters);
  SignalDone(mem, flag);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> IssEngine::Exec(
    uint32_t kernel, const std::vector<uint32_t>& args, const Staging& st,
    int* cluster) {
  if (!st.status().ok()) return st.status();
  absl::StatusOr<iss::KernelImage::Result> r =
      image_.Launch(kernel, args, st.inputs(), st.outputs(), cluster_config_);
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("ISS: ", r.status().message()));
  }
  int c = cluster != nullptr ? *cluster : -1;
  if (c < 0) c = std::min_element(busy_.begin(), busy_.end()) - busy_.begin();
  if (cluster != nullptr) *cluster = c;
  busy_[c] += r->run.cycles;
  const iss::EnergyEvents e = iss::CountEvents(r->run);
  events_ += e;
  instructions_ += static_cast<uint64_t>(e.instructions);
  return std::move(r->outputs);
}

void IssEngine::Charge(Counters* c) {
  const uint64_t cycles = *std::max_element(busy_.begin(), busy_.end());
  c->cycles += cycles;
  c->flops[0] += static_cast<uint64_t>(events_.flops_fp64);
  c->flops[1] += static_cast<uint64_t>(events_.flops_fp32);
  c->dma_bytes += static_cast<uint64_t>(events_.hbm_bytes);
  c->tcdm_accesses += static_cast<uint64_t>(events_.tcdm_accesses);
  c->launches += 1;
  c->energy_joules += energy_.Joules(events_, cycles, config_.clusters());
}

absl::Status IssEngine::Gemm(const GemmArgs& g, Memory& mem) {
  const uint64_t K = g.k;
  if (K % 2 != 0) {
    return absl::UnimplementedError(absl::StrFormat(
        "GEMM: the ISS engine's GEMV kernel takes an even K, got %d", K));
  }
  // K in slices the kernel's W tiles hold (8 rows of at most kMaxGemvK),
  // each slice after the first accumulating into y on the same cluster. As
  // many tokens per launch as fit beside at least 8 rows of y (each W tile
  // is then streamed once for all of them), and rows split over the
  // clusters in multiples of the 8 cores.
  const uint64_t kc_max = std::min(K, kMaxGemvK);
  const uint64_t tokens =
      std::min({g.n, kMaxGemvTokens, kXyFloats / (kc_max + 8)});
  const uint64_t row_cap = (kXyFloats / tokens - kc_max) / 8 * 8;
  const uint64_t rows_per =
      std::min(row_cap, RoundUp(CeilDiv(g.m, busy_.size()), 8));
  float* Y = mem.f32(g.y);
  for (uint64_t t0 = 0; t0 < g.n; t0 += tokens) {
    const uint64_t tt = std::min(tokens, g.n - t0);
    for (uint64_t r0 = 0; r0 < g.m; r0 += rows_per) {
      const uint64_t rr = std::min(rows_per, g.m - r0);
      std::vector<float> y(tt * rr, 0.0f);
      if (g.accumulate) {
        for (uint64_t t = 0; t < tt; ++t)
          std::memcpy(&y[t * rr], Y + (t0 + t) * g.m + r0, rr * 4);
      }
      int cluster = -1;
      for (uint64_t k0 = 0; k0 < K; k0 += kc_max) {
        const uint64_t kc = std::min(kc_max, K - k0);
        std::vector<float> w(rr * kc), x(tt * kc);
        for (uint64_t r = 0; r < rr; ++r)
          std::memcpy(&w[r * kc], mem.f32(g.w) + (r0 + r) * K + k0, kc * 4);
        for (uint64_t t = 0; t < tt; ++t)
          std::memcpy(&x[t * kc], mem.f32(g.x) + (t0 + t) * K + k0, kc * 4);
        Staging st = NewStaging();
        const uint32_t ws = st.In(w.data(), w.size() * 4);
        const uint32_t xs = st.In(x.data(), x.size() * 4);
        const uint32_t ya = st.InOut(y.data(), y.size() * 4);
        const bool acc = g.accumulate || k0 > 0;
        auto out = Exec(config_.double_buffering ? JOULE_GEMV_FP32_OPT
                                                 : JOULE_GEMV_FP32_BASE,
                        {uint32_t(rr), uint32_t(kc), ws, xs, ya, uint32_t(tt),
                         uint32_t(acc)},
                        st, &cluster);
        if (!out.ok()) return out.status();
        std::memcpy(y.data(), (*out)[0].data(), y.size() * 4);
      }
      for (uint64_t t = 0; t < tt; ++t)
        std::memcpy(Y + (t0 + t) * g.m + r0, &y[t * rr], rr * 4);
    }
  }
  return absl::OkStatus();
}

absl::Status IssEngine::RmsNorm(const RmsNormArgs& r, Memory& mem) {
  const uint64_t D = r.d;
  const uint64_t rows_per =
      std::min(CeilDiv(r.n, busy_.size()),
               std::max<uint64_t>(1, kStageBytes / 3 / (D * 4)));
  for (uint64_t n0 = 0; n0 < r.n; n0 += rows_per) {
    const uint64_t nn = std::min(rows_per, r.n - n0);
    Staging st = NewStaging();
    const uint32_t x = st.In(mem.f32(r.x) + n0 * D, nn * D * 4);
    const uint32_t w = st.In(mem.f32(r.w), D * 4);
    const uint32_t o = st.Out(nn * D * 4);
    auto out = Exec(JOULE_RMSNORM,
                    {uint32_t(nn), uint32_t(D), x, w, o, FloatBits(1e-5f)}, st);
    if (!out.ok()) return out.status();
    std::memcpy(mem.f32(r.out) + n0 * D, (*out)[0].data(), nn * D * 4);
  }
  return absl::OkStatus();
}

absl::Status IssEngine::Rope(const RopeArgs& r, Memory& mem) {
  const uint64_t hs = r.head;
  if (r.dim % hs != 0 || r.kv_dim % hs != 0) {
    return absl::UnimplementedError(absl::StrFormat(
        "ROPE: the ISS engine rotates whole head vectors; dim (%d) and "
        "kv_dim (%d) must be multiples of head (%d)",
        r.dim, r.kv_dim, hs));
  }
  if (r.kv_dim > 0 && r.q_off < r.k_off + r.kv_dim &&
      r.k_off < r.q_off + r.dim) {
    return absl::InvalidArgumentError(
        "ROPE: the q and k ranges of a row overlap; the ISS engine rotates "
        "them as separate vectors");
  }
  const uint64_t width = r.dim + r.kv_dim;  // Floats rotated per row.
  const uint64_t rows_per =
      std::min(CeilDiv(r.n, busy_.size()),
               std::max<uint64_t>(1, kStageBytes / 2 / (width * 4)));
  for (uint64_t n0 = 0; n0 < r.n; n0 += rows_per) {
    const uint64_t nn = std::min(rows_per, r.n - n0);
    std::vector<float> data(nn * width), cosv(nn * width / 2),
        sinv(nn * width / 2);
    for (uint64_t n = 0; n < nn; ++n) {
      const float* row = mem.f32(r.base) + (n0 + n) * r.stride;
      std::memcpy(&data[n * width], row + r.q_off, r.dim * 4);
      std::memcpy(&data[n * width + r.dim], row + r.k_off, r.kv_dim * 4);
      int32_t pos;
      std::memcpy(&pos, mem.at(r.positions + 4 * (n0 + n)), 4);
      for (uint64_t i = 0; i < width; i += 2) {
        RopeRotation(pos, i % hs, hs, &cosv[(n * width + i) / 2],
                     &sinv[(n * width + i) / 2]);
      }
    }
    Staging st = NewStaging();
    const uint32_t d = st.InOut(data.data(), data.size() * 4);
    const uint32_t c = st.In(cosv.data(), cosv.size() * 4);
    const uint32_t sn = st.In(sinv.data(), sinv.size() * 4);
    auto out = Exec(JOULE_ROPE,
                    {uint32_t(nn * width / hs), uint32_t(hs), d, c, sn}, st);
    if (!out.ok()) return out.status();
    const float* o = reinterpret_cast<const float*>((*out)[0].data());
    for (uint64_t n = 0; n < nn; ++n) {
      float* row = mem.f32(r.base) + (n0 + n) * r.stride;
      std::memcpy(row + r.q_off, o + n * width, r.dim * 4);
      std::memcpy(row + r.k_off, o + n * width + r.dim, r.kv_dim * 4);
    }
  }
  return absl::OkStatus();
}

absl::Status IssEngine::Attention(const AttentionArgs& r, Memory& mem) {
  if (r.head > kMaxHead) {
    return absl::UnimplementedError(absl::StrFormat(
        "ATTENTION: the ISS engine's kernel takes heads of at most %d floats, "
        "got %d",
        kMaxHead, r.head));
  }
  const uint64_t dim = r.heads * r.head, kv_dim = r.kv_heads * r.head;
  const uint64_t per = CeilDiv(r.n, busy_.size());
  const float scale = 1.0f / sqrtf(static_cast<float>(r.head));
  // Queries of one sequence at consecutive positions (a prompt's) share a
  // launch: query i of it sees keys 0..first + i.
  for (uint64_t a = 0; a < r.n;) {
    const AttentionQuery& qa = r.queries[a];
    uint64_t b = a + 1;
    while (b < r.n && b - a < per && r.queries[b].k == qa.k &&
           r.queries[b].v == qa.v && r.queries[b].keys == qa.keys + (b - a)) {
      ++b;
    }
    const uint64_t nq = b - a, keys = qa.keys + nq - 1;
    std::vector<float> q(nq * dim);
    for (uint64_t i = 0; i < nq; ++i)
      std::memcpy(&q[i * dim], mem.f32(r.q) + (a + i) * r.q_stride, dim * 4);
    Staging st = NewStaging();
    const uint32_t qs = st.In(q.data(), q.size() * 4);
    const uint32_t k = st.In(mem.f32(qa.k), keys * kv_dim * 4);
    const uint32_t v = st.In(mem.f32(qa.v), keys * kv_dim * 4);
    const uint32_t o = st.Out(nq * dim * 4);
    auto out = Exec(JOULE_ATTENTION,
                    {uint32_t(nq), uint32_t(r.heads), uint32_t(r.kv_heads),
                     uint32_t(r.head), qs, k, v, o, FloatBits(scale),
                     uint32_t(qa.keys - 1)},
                    st);
    if (!out.ok()) return out.status();
    std::memcpy(mem.f32(r.out) + a * dim, (*out)[0].data(), nq * dim * 4);
    a = b;
  }
  return absl::OkStatus();
}

absl::Status IssEngine::SwiGlu(const SwiGluArgs& r, Memory& mem) {
  const uint64_t H = r.hidden, total = r.n * H;
  const uint64_t per =
      std::min(RoundUp(CeilDiv(total, busy_.size()), 8), kStageBytes / 3 / 4);
  for (uint64_t e0 = 0; e0 < total; e0 += per) {
    const uint64_t ne = std::min(per, total - e0);
    std::vector<float> h1(ne), h3(ne);
    for (uint64_t e = 0; e < ne; ++e) {
      const uint64_t n = (e0 + e) / H, j = (e0 + e) % H;
      h1[e] = mem.f32(r.h)[n * 2 * H + j];
      h3[e] = mem.f32(r.h)[n * 2 * H + H + j];
    }
    Staging st = NewStaging();
    const uint32_t h = st.InOut(h1.data(), ne * 4);
    const uint32_t g = st.In(h3.data(), ne * 4);
    auto out = Exec(JOULE_SWIGLU, {uint32_t(ne), h, g}, st);
    if (!out.ok()) return out.status();
    std::memcpy(mem.f32(r.out) + e0, (*out)[0].data(), ne * 4);
  }
  return absl::OkStatus();
}

absl::Status IssEngine::CopyWave(const std::vector<CopyTransfer>& wave,
                                 Memory& mem) {
  // Pieces of at most kCopyPiece bytes, in groups of about equal bytes, one
  // group per cluster.
  std::vector<CopyTransfer> pieces;
  uint64_t bytes = 0;
  for (const CopyTransfer& t : wave) {
    for (uint64_t off = 0; off < t.bytes; off += kCopyPiece) {
      pieces.push_back(
          {t.src + off, t.dst + off, std::min(kCopyPiece, t.bytes - off)});
      bytes += pieces.back().bytes;
    }
  }
  const uint64_t group_bytes =
      std::min(CeilDiv(bytes, busy_.size()), kStageBytes / 2);
  for (size_t a = 0; a < pieces.size();) {
    size_t b = a;
    uint64_t in_group = 0;
    while (b < pieces.size() &&
           (b == a || in_group + pieces[b].bytes <= group_bytes)) {
      in_group += pieces[b++].bytes;
    }
    Staging st = NewStaging();
    std::vector<uint32_t> list;
    for (size_t i = a; i < b; ++i) {
      list.push_back(st.In(mem.at(pieces[i].src), pieces[i].bytes));
      list.push_back(st.Out(pieces[i].bytes));
      list.push_back(static_cast<uint32_t>(pieces[i].bytes));
    }
    const uint32_t l = st.In(list.data(), list.size() * 4);
    auto out = Exec(JOULE_DMA_COPY, {uint32_t(b - a), l}, st);
    if (!out.ok()) return out.status();
    for (size_t i = a; i < b; ++i)
      std::memcpy(mem.at(pieces[i].dst), (*out)[i - a].data(), pieces[i].bytes);
    a = b;
  }
  return absl::OkStatus();
}

absl::Status IssEngine::Copy(const CopyArgs& r, Memory& mem) {
  // The protocol copies in order. Transfers are staged (their sources read)
  // before any is written back, so one that reads what an earlier one
  // writes waits for the next wave.
  std::vector<CopyTransfer> wave;
  auto overlaps = [](uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
    return a < b + bn && b < a + an;
  };
  for (const CopyTransfer& t : r.transfers) {
    if (t.bytes == 0) continue;
    for (const CopyTransfer& w : wave) {
      if (overlaps(t.src, t.bytes, w.dst, w.bytes)) {
        if (absl::Status s = CopyWave(wave, mem); !s.ok()) return s;
        wave.clear();
        break;
      }
    }
    wave.push_back(t);
  }
  return CopyWave(wave, mem);
}

IssEngine::Staging IssEngine::NewStaging() const {
  return Staging(image_.heap_base(), cluster_config_.dram_base +
                                         uint64_t{cluster_config_.dram_bytes});
}

}  // namespace joule::riscv
