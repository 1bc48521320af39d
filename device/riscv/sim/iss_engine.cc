#include "device/riscv/sim/iss_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <map>
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
// What one launch may ask of the ISS, which simulates some 2e7 multiply-
// adds a host second: beyond these a launch would hold the machine for
// minutes. They are refused before any work, naming the limit.
constexpr uint64_t kMaxMacs = uint64_t{1} << 31;
constexpr uint64_t kMaxElements = uint64_t{1} << 26;
constexpr uint64_t kMaxCopyBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxCopies = uint64_t{1} << 16;

absl::Status TooMuch(const char* kernel, const char* what, double asked,
                     uint64_t limit) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s: %.0f %s exceed the ISS engine's %d per launch (it simulates each "
      "instruction; use the tile engine for larger work)",
      kernel, asked, what, limit));
}

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
  // The kernels are written for snitch_cluster's default cluster, and the
  // energy is calibrated at 1 GHz: a configuration that changes either
  // would be silently ignored, so it is refused.
  const iss::ClusterConfig cluster;
  if (config.cores_per_cluster != cluster.compute_cores ||
      config.tcdm_bytes != cluster.tcdm_bytes ||
      config.tcdm_banks != cluster.tcdm_banks || config.frequency_hz != 1e9) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the ISS engine simulates snitch_cluster's default cluster (%d "
        "compute cores, %d KiB of TCDM in %d banks) at 1 GHz; the "
        "configuration asks for %d cores, %d bytes, %d banks at %g Hz",
        cluster.compute_cores, cluster.tcdm_bytes >> 10, cluster.tcdm_banks,
        config.cores_per_cluster, config.tcdm_bytes, config.tcdm_banks,
        config.frequency_hz));
  }
  const double hbm_per_cluster =
      config.hbm_bytes_per_second / config.frequency_hz / config.clusters();
  if (hbm_per_cluster < 1 || config.dma_bytes_per_cycle < 1) {
    return absl::InvalidArgumentError(
        "the ISS engine needs at least 1 byte a cycle of HBM per cluster and "
        "of DMA");
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
  // Each cluster's DMA port, and its share of HBM (the default: 384 GB/s
  // over 24 clusters at 1 GHz is 16 B a cycle).
  cluster_config_.dma_bytes_per_cycle =
      static_cast<int>(std::min(config.dma_bytes_per_cycle, 1e6));
  cluster_config_.hbm_bytes_per_cycle = static_cast<int>(std::min(
      config.hbm_bytes_per_second / config.frequency_hz / config.clusters(),
      1e6));
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
  if (double(g.m) * K * g.n > kMaxMacs)
    return TooMuch("GEMM", "multiply-adds", double(g.m) * K * g.n, kMaxMacs);
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
  if (double(r.n) * D > kMaxElements)
    return TooMuch("RMSNORM", "elements", double(r.n) * D, kMaxElements);
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
  if (double(r.n) * width > kMaxElements)
    return TooMuch("ROPE", "elements", double(r.n) * width, kMaxElements);
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
  // Queries of one sequence at consecutive positions (a prompt's) share a
  // launch: query i of it sees keys 0..first + i. Every run is sized
  // before the first runs, so a launch the ISS cannot stage writes nothing.
  struct Run {
    uint64_t a, b, keys;
  };
  std::vector<Run> runs;
  double macs = 0;
  for (uint64_t a = 0; a < r.n;) {
    const AttentionQuery& qa = r.queries[a];
    uint64_t b = a + 1;
    while (b < r.n && b - a < per && r.queries[b].k == qa.k &&
           r.queries[b].v == qa.v && r.queries[b].keys == qa.keys + (b - a)) {
      ++b;
    }
    const uint64_t nq = b - a, keys = qa.keys + nq - 1;
    const double bytes = 4.0 * (2.0 * nq * dim + 2.0 * keys * kv_dim);
    if (bytes > kStageBytes) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "ATTENTION: a query's q, K, V and output (%.0f bytes) exceed the "
          "%d bytes the ISS engine stages per launch",
          bytes, kStageBytes));
    }
    macs += 2.0 * nq * keys * dim;
    runs.push_back({a, b, keys});
    a = b;
  }
  if (macs > kMaxMacs)
    return TooMuch("ATTENTION", "multiply-adds", macs, kMaxMacs);
  const float scale = 1.0f / sqrtf(static_cast<float>(r.head));
  for (const Run& run : runs) {
    const AttentionQuery& qa = r.queries[run.a];
    const uint64_t nq = run.b - run.a;
    std::vector<float> q(nq * dim);
    for (uint64_t i = 0; i < nq; ++i) {
      std::memcpy(&q[i * dim], mem.f32(r.q) + (run.a + i) * r.q_stride,
                  dim * 4);
    }
    Staging st = NewStaging();
    const uint32_t qs = st.In(q.data(), q.size() * 4);
    const uint32_t k = st.In(mem.f32(qa.k), run.keys * kv_dim * 4);
    const uint32_t v = st.In(mem.f32(qa.v), run.keys * kv_dim * 4);
    const uint32_t o = st.Out(nq * dim * 4);
    auto out = Exec(JOULE_ATTENTION,
                    {uint32_t(nq), uint32_t(r.heads), uint32_t(r.kv_heads),
                     uint32_t(r.head), qs, k, v, o, FloatBits(scale),
                     uint32_t(qa.keys - 1)},
                    st);
    if (!out.ok()) return out.status();
    std::memcpy(mem.f32(r.out) + run.a * dim, (*out)[0].data(), nq * dim * 4);
  }
  return absl::OkStatus();
}

absl::Status IssEngine::SwiGlu(const SwiGluArgs& r, Memory& mem) {
  const uint64_t H = r.hidden, total = r.n * H;
  if (double(r.n) * H > kMaxElements)
    return TooMuch("SWIGLU", "elements", double(r.n) * H, kMaxElements);
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
  // Every source of the wave is read before anything is written back, so a
  // transfer whose destination overlaps its own source (a memmove) reads
  // what it would have read in one piece.
  std::vector<std::vector<uint8_t>> sources;
  for (const CopyTransfer& t : wave)
    sources.emplace_back(mem.at(t.src), mem.at(t.src) + t.bytes);
  // Pieces of at most kCopyPiece bytes, in groups of about equal bytes, one
  // group per launch on the least busy cluster.
  struct Piece {
    const uint8_t* src;
    uint64_t dst, bytes;
  };
  std::vector<Piece> pieces;
  uint64_t bytes = 0;
  for (size_t i = 0; i < wave.size(); ++i) {
    for (uint64_t off = 0; off < wave[i].bytes; off += kCopyPiece) {
      pieces.push_back({sources[i].data() + off, wave[i].dst + off,
                        std::min(kCopyPiece, wave[i].bytes - off)});
      bytes += pieces.back().bytes;
    }
  }
  const uint64_t group_bytes =
      std::min(CeilDiv(bytes, busy_.size()), kStageBytes / 4);
  for (size_t a = 0; a < pieces.size();) {
    size_t b = a;
    uint64_t in_group = 0;
    while (b < pieces.size() &&
           (b == a || in_group + pieces[b].bytes <= group_bytes)) {
      in_group += RoundUp(pieces[b++].bytes, 64);
    }
    Staging st = NewStaging();
    std::vector<uint32_t> list;
    for (size_t i = a; i < b; ++i) {
      list.push_back(st.In(pieces[i].src, pieces[i].bytes));
      list.push_back(st.Out(pieces[i].bytes));
      list.push_back(static_cast<uint32_t>(pieces[i].bytes));
    }
    const uint32_t l = st.In(list.data(), list.size() * 4);
    auto out = Exec(JOULE_DMA_COPY, {uint32_t(b - a), l}, st);
    if (!out.ok()) return out.status();
    for (size_t i = a; i < b; ++i) {
      std::memcpy(mem.at(pieces[i].dst), (*out)[i - a].data(), pieces[i].bytes);
    }
    a = b;
  }
  return absl::OkStatus();
}

absl::Status IssEngine::Copy(const CopyArgs& r, Memory& mem) {
  double total = 0;
  for (const CopyTransfer& t : r.transfers) total += t.bytes;
  if (r.transfers.size() > kMaxCopies) {
    return TooMuch("COPY", "transfers", double(r.transfers.size()), kMaxCopies);
  }
  if (total > kMaxCopyBytes)
    return TooMuch("COPY", "bytes", total, kMaxCopyBytes);
  // The protocol copies in order. A wave's sources are all read before any
  // of it is written, so a transfer that reads what an earlier one writes
  // starts the next wave. The wave's destinations are kept as disjoint
  // intervals (start -> end) to find such a transfer in O(log n).
  std::vector<CopyTransfer> wave;
  std::map<uint64_t, uint64_t> written;
  auto reads_written = [&](const CopyTransfer& t) {
    auto it = written.lower_bound(t.src + t.bytes);
    return it != written.begin() && std::prev(it)->second > t.src;
  };
  auto add_written = [&](uint64_t lo, uint64_t hi) {
    auto it = written.upper_bound(lo);
    if (it != written.begin() && std::prev(it)->second >= lo) --it;
    while (it != written.end() && it->first <= hi) {
      lo = std::min(lo, it->first);
      hi = std::max(hi, it->second);
      it = written.erase(it);
    }
    written.emplace(lo, hi);
  };
  for (const CopyTransfer& t : r.transfers) {
    if (t.bytes == 0) continue;
    if (reads_written(t)) {
      if (absl::Status s = CopyWave(wave, mem); !s.ok()) return s;
      wave.clear();
      written.clear();
    }
    wave.push_back(t);
    add_written(t.dst, t.dst + t.bytes);
  }
  return CopyWave(wave, mem);
}

IssEngine::Staging IssEngine::NewStaging() const {
  return Staging(image_.heap_base(), cluster_config_.dram_base +
                                         uint64_t{cluster_config_.dram_bytes});
}

}  // namespace joule::riscv
