#include "device/riscv/sim/tile_model_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "device/riscv/sim/gemm_f32.h"

namespace joule::riscv {
namespace {

// IEEE binary16, round to nearest even, through its bit pattern.
float RoundFp16(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  const uint32_t sign = b & 0x80000000u;
  const int exp = static_cast<int>((b >> 23) & 0xFF) - 127;
  if (exp > 15) return std::copysign(65504.0f, x);  // Saturate.
  if (exp < -25) return std::copysign(0.0f, x);
  // Keep 10 mantissa bits (fewer for subnormals).
  const int drop = exp < -14 ? 13 + (-14 - exp) : 13;
  const uint32_t mask = (1u << drop) - 1;
  uint32_t m = b & 0x7FFFFFFFu;
  const uint32_t half = 1u << (drop - 1);
  const uint32_t rest = m & mask;
  m &= ~mask;
  if (rest > half || (rest == half && (m & (mask + 1)))) m += mask + 1;
  m |= sign;
  float out;
  std::memcpy(&out, &m, 4);
  return out;
}

// FP8 E4M3 (3 mantissa bits, max 448), round to nearest even.
float RoundFp8(float x) {
  const float a = std::fabs(x);
  if (a >= 448.0f) return std::copysign(448.0f, x);
  if (a < std::ldexp(1.0f, -10)) return std::copysign(0.0f, x);
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1).
  const int exp = std::max(e - 1, -6);
  const float step = std::ldexp(1.0f, exp - 3);
  return std::copysign(std::nearbyint(a / step) * step, x);
}

float Round(Precision p, float x) {
  switch (p) {
    case Precision::kFp16:
      return RoundFp16(x);
    case Precision::kFp8:
      return RoundFp8(x);
    default:
      return x;
  }
}

absl::Status Args(const std::vector<uint64_t>& a, size_t n,
                  const char* kernel) {
  if (a.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s takes %d arguments, got %d", kernel, n, a.size()));
  }
  return absl::OkStatus();
}

constexpr uint64_t kMaxDim = 1 << 20;

// Validates one launch's arguments before the kernel touches memory. Every
// argument comes from the client, so each check is overflow-safe, and the
// first failure names the kernel and the argument; later checks are skipped
// (they may depend on values the failed one was meant to bound).
class ArgCheck {
 public:
  ArgCheck(const char* kernel, const Memory& mem)
      : kernel_(kernel), mem_(mem) {}

  // A dimension in 1..max.
  ArgCheck& Dim(const char* name, uint64_t v, uint64_t max = kMaxDim) {
    return Require(v >= 1 && v <= max, "%s = %d must be in 1..%d", name, v,
                   max);
  }
  ArgCheck& Even(const char* name, uint64_t v) {
    return Require(v % 2 == 0, "%s = %d must be even", name, v);
  }
  // `offset` + `extent` <= `limit`, where the sum must not wrap.
  ArgCheck& Fits(const char* offset_name, uint64_t offset,
                 const char* extent_name, uint64_t extent,
                 const char* limit_name, uint64_t limit) {
    return Require(offset <= limit && extent <= limit - offset,
                   "%s (%d) + %s (%d) exceeds %s (%d)", offset_name, offset,
                   extent_name, extent, limit_name, limit);
  }
  // `rows` x `cols` fp32 values at `addr`, 4-byte aligned (kernels access
  // them as floats).
  ArgCheck& F32(const char* name, uint64_t addr, uint64_t rows, uint64_t cols) {
    uint64_t count = 0;
    if (!Require(!__builtin_mul_overflow(rows, cols, &count),
                 "tensor %s of %d x %d floats overflows 64 bits", name, rows,
                 cols)
             .ok()) {
      return *this;
    }
    return Array(name, addr, count, 4, 4);
  }
  // `count` records of `elem_size` bytes at `addr` (read with memcpy, so
  // any alignment).
  ArgCheck& Array(const char* name, uint64_t addr, uint64_t count,
                  uint64_t elem_size, uint64_t align = 1) {
    if (status_.ok()) {
      absl::Status s = mem_.CheckArray(name, addr, count, elem_size, align);
      if (!s.ok()) {
        status_ =
            absl::Status(s.code(), absl::StrCat(kernel_, ": ", s.message()));
      }
    }
    return *this;
  }
  // The completion flag: 0 (none) or a u32 inside HBM.
  ArgCheck& Flag(uint64_t addr) {
    return addr == 0 ? *this : Array("done flag", addr, 1, 4);
  }
  template <typename... A>
  ArgCheck& Require(bool ok, const absl::FormatSpec<A...>& why,
                    const A&... args) {
    if (status_.ok() && !ok) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat(kernel_, ": ", absl::StrFormat(why, args...)));
    }
    return *this;
  }
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

 private:
  const char* kernel_;
  const Memory& mem_;
  absl::Status status_;
};

void Done(Memory& m, uint64_t flag) {
  if (flag != 0) {
    const uint32_t one = 1;
    m.Write(flag, &one, 4).IgnoreError();  // Checked with the arguments.
  }
}

}  // namespace

int TileModelEngine::element_bytes() const {
  switch (config_.precision) {
    case Precision::kFp64:
      return 8;
    case Precision::kFp32:
      return 4;
    case Precision::kFp16:
      return 2;
    case Precision::kFp8:
      return 1;
  }
  return 4;
}

void TileModelEngine::Charge(const Work& w, Counters* c) const {
  const SimConfig& k = config_;
  const int p = static_cast<int>(k.precision);
  const double clusters = w.clusters_used > 0
                              ? std::min(w.clusters_used, k.clusters())
                              : k.clusters();
  const double per_cluster_flops = k.cores_per_cluster *
                                   k.peak_flops_per_cycle[p] *
                                   std::max(0.01, w.utilization);
  const double compute = w.flops / (clusters * per_cluster_flops);
  // Each cluster's DMA moves its share, limited by its port and by its share
  // of HBM bandwidth; every descriptor costs setup cycles.
  const double hbm_per_cycle = k.hbm_bytes_per_second / k.frequency_hz;
  const double bw = std::min(k.dma_bytes_per_cycle, hbm_per_cycle / clusters);
  const double dma =
      w.hbm_bytes / clusters / bw + w.transfers / clusters * k.dma_setup_cycles;
  // With several tiles, double buffering overlaps loads and compute except
  // for the first tile's load; a single tile is loaded, then computed.
  const double body =
      w.tiles > 1 ? std::max(compute, dma) + dma / w.tiles : compute + dma;
  const double barriers =
      w.barriers * k.barrier_cycles * (clusters > 1 ? 5.0 : 1.0);
  const double cycles = body + barriers + k.launch_overhead_cycles;
  const uint64_t whole = static_cast<uint64_t>(std::ceil(cycles));
  c->cycles += whole;
  c->flops[p] += static_cast<uint64_t>(w.flops);
  c->dma_bytes += static_cast<uint64_t>(w.hbm_bytes);
  c->tcdm_accesses += static_cast<uint64_t>(w.tcdm_accesses);
  c->launches += 1;
  c->energy_joules += w.flops * k.joules_per_flop[p] +
                      w.hbm_bytes * k.joules_per_hbm_byte +
                      w.tcdm_accesses * k.joules_per_tcdm_access +
                      k.static_watts * whole / k.frequency_hz;
}

absl::Status TileModelEngine::Run(uint32_t kernel,
                                  const std::vector<uint64_t>& args,
                                  Memory& memory, Counters* counters) {
  switch (kernel) {
    case kGemm:
      return Gemm(args, memory, counters);
    case kRmsNorm:
      return RmsNorm(args, memory, counters);
    case kRope:
      return Rope(args, memory, counters);
    case kAttention:
      return Attention(args, memory, counters);
    case kSwiGlu:
      return SwiGlu(args, memory, counters);
    case kCopy:
      return Copy(args, memory, counters);
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown kernel %d", kernel));
}

absl::Status TileModelEngine::Gemm(const std::vector<uint64_t>& a, Memory& mem,
                                   Counters* c) {
  if (absl::Status s = Args(a, 8, "GEMM"); !s.ok()) return s;
  const uint64_t w = a[0], x = a[1], y = a[2], M = a[3], K = a[4], N = a[5];
  const bool accumulate = a[6] != 0;
  ArgCheck check("GEMM", mem);
  check.Dim("M", M).Dim("K", K).Dim("N", N);
  check.F32("W", w, M, K).F32("X", x, N, K).F32("Y", y, N, M).Flag(a[7]);
  if (!check.ok()) return check.status();
  const Precision p = config_.precision;
  const float* W = mem.f32(w);
  const float* X = mem.f32(x);
  float* Y = mem.f32(y);
  if (p == Precision::kFp32) {
    GemmF32Exact(W, X, Y, M, K, N, accumulate);
  } else {
    for (uint64_t n = 0; n < N; ++n) {
      const float* xr = X + n * K;
      for (uint64_t m = 0; m < M; ++m) {
        const float* wr = W + m * K;
        double acc = 0.0;
        for (uint64_t k = 0; k < K; ++k)
          acc += double{Round(p, wr[k])} * Round(p, xr[k]);
        const float r = static_cast<float>(acc);
        Y[n * M + m] = accumulate ? Y[n * M + m] + r : r;
      }
    }
  }
  Charge(GemmWork(M, K, N, accumulate), c);
  Done(mem, a[7]);
  return absl::OkStatus();
}

TileModelEngine::Work TileModelEngine::GemmWork(double M, double K, double N,
                                                bool accumulate) const {
  // Rows of W are split over clusters. Each cluster computes tm x tn output
  // tiles over K in steps of tk, holding a W tile, an X tile and the
  // accumulators in half the TCDM (the other half is the next tiles' double
  // buffer). W is read once per column block of tn tokens, X once per row
  // block of tm outputs.
  const double e = element_bytes();
  const double clusters = std::min<double>(config_.clusters(), M);
  const double rows = std::ceil(M / clusters);
  const double tm = std::min(rows, 64.0);
  const double tn = std::min(N, 64.0);
  double tk = 256;
  while (tk > 8 && (tm + tn) * tk * e + tm * tn * 4 > config_.tcdm_bytes / 2.0)
    tk /= 2;
  tk = std::min(tk, K);
  const double m_blocks = std::ceil(rows / tm);
  const double n_blocks = std::ceil(N / tn);
  const double k_blocks = std::ceil(K / tk);
  Work work;
  work.flops = 2.0 * M * K * N;
  work.utilization =
      config_.gemm_utilization[static_cast<int>(config_.precision)];
  work.hbm_bytes = M * K * e * n_blocks + N * K * e * m_blocks * clusters +
                   N * M * e * (accumulate ? 2 : 1);
  const double tiles = m_blocks * n_blocks * k_blocks;
  work.tiles = config_.double_buffering ? tiles : 1;
  work.transfers = 2 * tiles * clusters + m_blocks * n_blocks * clusters;
  work.tcdm_accesses = 2.0 * M * K * N * e / 8.0 + work.hbm_bytes / 8.0;
  work.clusters_used = static_cast<int>(clusters);
  return work;
}

absl::Status TileModelEngine::RmsNorm(const std::vector<uint64_t>& a,
                                      Memory& mem, Counters* c) {
  if (absl::Status s = Args(a, 6, "RMSNORM"); !s.ok()) return s;
  const uint64_t x = a[0], w = a[1], out = a[2], N = a[3], D = a[4];
  ArgCheck check("RMSNORM", mem);
  check.Dim("N", N).Dim("D", D);
  check.F32("x", x, N, D).F32("w", w, 1, D).F32("out", out, N, D).Flag(a[5]);
  if (!check.ok()) return check.status();
  const float* W = mem.f32(w);
  for (uint64_t n = 0; n < N; ++n) {
    const float* xr = mem.f32(x) + n * D;
    float* o = mem.f32(out) + n * D;
    float ss = 0.0f;
    for (uint64_t j = 0; j < D; ++j) ss += xr[j] * xr[j];
    ss /= D;
    ss += 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (uint64_t j = 0; j < D; ++j) o[j] = W[j] * (ss * xr[j]);
  }
  const double e = element_bytes();
  Work work;
  work.flops = 4.0 * N * D;
  work.utilization = config_.elementwise_utilization;
  work.hbm_bytes = (2.0 * N * D + D) * e;
  work.transfers = 3.0 * std::min<double>(N, config_.clusters());
  work.tcdm_accesses = 3.0 * N * D * e / 8.0;
  work.clusters_used =
      static_cast<int>(std::min<uint64_t>(N, config_.clusters()));
  Charge(work, c);
  Done(mem, a[5]);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Rope(const std::vector<uint64_t>& a, Memory& mem,
                                   Counters* c) {
  if (absl::Status s = Args(a, 10, "ROPE"); !s.ok()) return s;
  const uint64_t base = a[0], positions = a[1], N = a[2], stride = a[3],
                 q_off = a[4], k_off = a[5], dim = a[6], kv_dim = a[7],
                 head = a[8];
  // Rotations take pairs: odd sizes would touch one float past the row.
  ArgCheck check("ROPE", mem);
  check.Dim("N", N).Dim("stride", stride).Dim("dim", dim).Even("dim", dim);
  check.Dim("head", head).Even("head", head).Even("kv_dim", kv_dim);
  check.Require(kv_dim <= dim, "kv_dim (%d) exceeds dim (%d)", kv_dim, dim);
  check.Fits("q_off", q_off, "dim", dim, "stride", stride);
  check.Fits("k_off", k_off, "kv_dim", kv_dim, "stride", stride);
  check.F32("base", base, N, stride).Array("positions", positions, N, 4);
  check.Flag(a[9]);
  if (!check.ok()) return check.status();
  for (uint64_t n = 0; n < N; ++n) {
    int32_t pos;
    std::memcpy(&pos, mem.at(positions + 4 * n), 4);
    float* q = mem.f32(base) + n * stride + q_off;
    float* k = mem.f32(base) + n * stride + k_off;
    for (uint64_t i = 0; i < dim; i += 2) {
      const int head_dim = static_cast<int>(i % head);
      const float freq = 1.0f / powf(10000.0f, head_dim / (float)head);
      const float val = pos * freq;
      const float fcr = cosf(val), fci = sinf(val);
      const int rotn = i < kv_dim ? 2 : 1;
      for (int r = 0; r < rotn; ++r) {
        float* vec = r == 0 ? q : k;
        const float v0 = vec[i], v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
      }
    }
  }
  const double e = element_bytes();
  Work work;
  work.flops = 6.0 * N * (dim + kv_dim);
  work.utilization = config_.elementwise_utilization;
  work.hbm_bytes = 2.0 * N * (dim + kv_dim) * e;
  work.transfers = 2.0 * std::min<double>(N, config_.clusters());
  work.tcdm_accesses = 4.0 * N * (dim + kv_dim) * e / 8.0;
  work.clusters_used =
      static_cast<int>(std::min<uint64_t>(N, config_.clusters()));
  Charge(work, c);
  Done(mem, a[9]);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Attention(const std::vector<uint64_t>& a,
                                        Memory& mem, Counters* c) {
  if (absl::Status s = Args(a, 9, "ATTENTION"); !s.ok()) return s;
  const uint64_t q = a[0], q_stride = a[1], out = a[2], desc = a[3], N = a[4],
                 heads = a[5], kv_heads = a[6], head = a[7];
  // Each factor is bounded first, so heads * head (at most 2^40) cannot
  // wrap to a small value that passes the stride check.
  ArgCheck check("ATTENTION", mem);
  check.Dim("N", N).Dim("q_stride", q_stride).Dim("heads", heads);
  check.Dim("kv_heads", kv_heads, heads).Dim("head", head);
  // The range checks must pass first: kv_heads may be 0.
  if (!check.ok()) return check.status();
  check.Require(heads % kv_heads == 0,
                "heads (%d) must be a multiple of kv_heads (%d)", heads,
                kv_heads);
  if (!check.ok()) return check.status();
  const uint64_t dim = heads * head, kv_dim = kv_heads * head,
                 kv_mul = heads / kv_heads;
  check.Require(dim <= q_stride, "heads x head (%d) exceeds q_stride (%d)", dim,
                q_stride);
  check.F32("q", q, N, q_stride).F32("out", out, N, dim);
  check.Array("descriptors", desc, N, 24).Flag(a[8]);
  if (!check.ok()) return check.status();
  struct Query {
    uint64_t k, v, keys;
  };
  // A snapshot: the checks below hold for what the kernel then uses.
  std::vector<Query> qs(N);
  for (uint64_t n = 0; n < N; ++n) {
    std::memcpy(&qs[n], mem.at(desc + 24 * n), 24);
    check.Dim("descriptor keys", qs[n].keys);
    check.F32("descriptor K", qs[n].k, qs[n].keys, kv_dim);
    check.F32("descriptor V", qs[n].v, qs[n].keys, kv_dim);
    if (!check.ok()) return check.status();
  }
  // FlashAttention-2: keys in tiles of Bc, a running max and sum per head
  // (online softmax), the output rescaled as the max grows.
  constexpr uint64_t kBc = 32;
  std::vector<float> acc(head), scores(kBc);
  const float scale = 1.0f / sqrtf(static_cast<float>(head));
  for (uint64_t n = 0; n < N; ++n) {
    for (uint64_t h = 0; h < heads; ++h) {
      const float* qh = mem.f32(q) + n * q_stride + h * head;
      const uint64_t off = (h / kv_mul) * head;
      float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (uint64_t t0 = 0; t0 < qs[n].keys; t0 += kBc) {
        const uint64_t t1 = std::min(qs[n].keys, t0 + kBc);
        float tile_max = m;
        for (uint64_t t = t0; t < t1; ++t) {
          const float* kt = mem.f32(qs[n].k) + t * kv_dim + off;
          float s = 0.0f;
          for (uint64_t i = 0; i < head; ++i) s += qh[i] * kt[i];
          scores[t - t0] = s * scale;
          tile_max = std::max(tile_max, scores[t - t0]);
        }
        const float correction = expf(m - tile_max);
        l *= correction;
        for (float& v : acc) v *= correction;
        for (uint64_t t = t0; t < t1; ++t) {
          const float p = expf(scores[t - t0] - tile_max);
          l += p;
          const float* vt = mem.f32(qs[n].v) + t * kv_dim + off;
          for (uint64_t i = 0; i < head; ++i) acc[i] += p * vt[i];
        }
        m = tile_max;
      }
      float* o = mem.f32(out) + n * dim + h * head;
      for (uint64_t i = 0; i < head; ++i) o[i] = acc[i] / l;
    }
  }
  // Queries of one sequence share its K/V tiles: each tile is loaded once
  // per block of up to 16 queries (the Q block that fits beside it).
  const double e = element_bytes();
  std::map<uint64_t, std::pair<uint64_t, uint64_t>>
      groups;  // K base -> (queries, keys)
  double flops = 0;
  for (const Query& qq : qs) {
    auto& g = groups[qq.k];
    g.first++;
    g.second = std::max(g.second, qq.keys);
    flops += (4.0 * head + 5.0) * heads * qq.keys;
  }
  double kv_bytes = 0, tiles = 0;
  for (const auto& [base, g] : groups) {
    const double blocks = std::ceil(g.first / 16.0);
    kv_bytes += blocks * 2.0 * g.second * kv_dim * e;
    tiles += blocks * std::ceil(g.second / double{kBc});
  }
  Work work;
  work.flops = flops;
  work.utilization =
      config_.attention_utilization[static_cast<int>(config_.precision)];
  work.hbm_bytes = kv_bytes + 2.0 * N * dim * e;
  work.tiles =
      config_.double_buffering ? std::max(1.0, tiles / config_.clusters()) : 1;
  work.transfers = tiles * 2 + N;
  work.tcdm_accesses = flops * e / 8.0 + work.hbm_bytes / 8.0;
  work.barriers = 2;  // Distributed softmax: max and sum exchanges.
  Charge(work, c);
  Done(mem, a[8]);
  return absl::OkStatus();
}

absl::Status TileModelEngine::SwiGlu(const std::vector<uint64_t>& a,
                                     Memory& mem, Counters* c) {
  if (absl::Status s = Args(a, 5, "SWIGLU"); !s.ok()) return s;
  const uint64_t h = a[0], out = a[1], N = a[2], H = a[3];
  ArgCheck check("SWIGLU", mem);
  check.Dim("N", N).Dim("H", H);
  check.F32("h", h, N, 2 * H).F32("out", out, N, H).Flag(a[4]);
  if (!check.ok()) return check.status();
  for (uint64_t n = 0; n < N; ++n) {
    const float* h1 = mem.f32(h) + n * 2 * H;
    const float* h3 = h1 + H;
    float* o = mem.f32(out) + n * H;
    for (uint64_t j = 0; j < H; ++j) {
      float val = h1[j];
      val *= (1.0f / (1.0f + expf(-val)));
      o[j] = val * h3[j];
    }
  }
  const double e = element_bytes();
  Work work;
  work.flops = 6.0 * N * H;
  work.utilization = config_.elementwise_utilization;
  work.hbm_bytes = 3.0 * N * H * e;
  work.transfers = 3.0 * config_.clusters();
  work.tcdm_accesses = 3.0 * N * H * e / 8.0;
  Charge(work, c);
  Done(mem, a[4]);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Copy(const std::vector<uint64_t>& a, Memory& mem,
                                   Counters* c) {
  if (absl::Status s = Args(a, 3, "COPY"); !s.ok()) return s;
  const uint64_t desc = a[0], count = a[1];
  ArgCheck check("COPY", mem);
  check.Require(count <= kMaxDim, "count = %d exceeds %d", count, kMaxDim);
  check.Array("descriptors", desc, count, 24).Flag(a[2]);
  if (!check.ok()) return check.status();
  // All descriptors are read and checked before the first copy: a copy may
  // overwrite the descriptor list, and a bad descriptor copies nothing.
  struct Transfer {
    uint64_t src, dst, bytes;
  };
  std::vector<Transfer> transfers(count);
  for (uint64_t i = 0; i < count; ++i) {
    Transfer& t = transfers[i];
    std::memcpy(&t, mem.at(desc + 24 * i), 24);
    check.Array("descriptor src", t.src, t.bytes, 1);
    check.Array("descriptor dst", t.dst, t.bytes, 1);
    if (!check.ok()) return check.status();
  }
  double bytes = 0;
  for (const Transfer& t : transfers) {
    std::memmove(mem.at(t.dst), mem.at(t.src), t.bytes);
    bytes += t.bytes;
  }
  // Through the DMA: read from HBM, written back to HBM.
  const double scale = element_bytes() / 4.0;
  Work work;
  work.hbm_bytes = 2.0 * bytes * scale;
  work.transfers = 2.0 * count;
  work.tcdm_accesses = 2.0 * bytes * scale / 8.0;
  work.flops = 0;
  Charge(work, c);
  Done(mem, a[2]);
  return absl::OkStatus();
}

}  // namespace joule::riscv
