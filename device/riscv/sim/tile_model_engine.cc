#include "device/riscv/sim/tile_model_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "device/riscv/sim/gemm_f32.h"
#include "device/riscv/sim/kernel_args.h"

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

}  // namespace

bool TileModelEngine::Measured() const {
  return table_.has_value() && config_.precision == Precision::kFp32;
}

void TileModelEngine::Elementwise(const char* kernel, Work* work) const {
  work->utilization = config_.elementwise_utilization;
  if (!Measured()) return;
  if (std::optional<double> u = table_->Elementwise(kernel)) {
    work->utilization = *u;
    work->memory_in_utilization = true;
  }
}

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
  // A utilization the ISS measured (CostTable) already includes the DMA's
  // time; the DMA's bytes still cost energy below.
  const double body = w.memory_in_utilization ? compute
                      : w.tiles > 1 ? std::max(compute, dma) + dma / w.tiles
                                    : compute + dma;
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
  absl::StatusOr<GemmArgs> g = ParseGemm(a, mem);
  if (!g.ok()) return g.status();
  const uint64_t w = g->w, x = g->x, y = g->y, M = g->m, K = g->k, N = g->n;
  const bool accumulate = g->accumulate;
  const Precision p = config_.precision;
  const float* W = mem.f32(w);
  const float* X = mem.f32(x);
  float* Y = mem.f32(y);
  if (p == Precision::kFp32) {
    GemmF32Exact(W, X, Y, M, K, N, accumulate, pool_.get());
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
  SignalDone(mem, g->flag);
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
  if (Measured()) {
    // As the ISS engine splits it: rows in multiples of the 8 cores, so
    // small matrices use fewer clusters.
    const double share = std::ceil(std::ceil(M / config_.clusters()) / 8) * 8;
    work.utilization = table_->Gemm(share, K, N);
    work.memory_in_utilization = true;
    work.clusters_used = static_cast<int>(std::ceil(M / share));
  }
  return work;
}

absl::Status TileModelEngine::RmsNorm(const std::vector<uint64_t>& a,
                                      Memory& mem, Counters* c) {
  absl::StatusOr<RmsNormArgs> r = ParseRmsNorm(a, mem);
  if (!r.ok()) return r.status();
  const uint64_t x = r->x, w = r->w, out = r->out, N = r->n, D = r->d;
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
  Elementwise("rmsnorm", &work);
  if (work.memory_in_utilization) {
    // The table's figure is for 8 rows a cluster, one per core; the ISS
    // engine gives each cluster ceil(N / clusters) rows.
    const double rows = std::ceil(double(N) / config_.clusters());
    work.utilization *= std::min(rows, 8.0) / 8.0;
  }
  work.hbm_bytes = (2.0 * N * D + D) * e;
  work.transfers = 3.0 * std::min<double>(N, config_.clusters());
  work.tcdm_accesses = 3.0 * N * D * e / 8.0;
  work.clusters_used =
      static_cast<int>(std::min<uint64_t>(N, config_.clusters()));
  Charge(work, c);
  SignalDone(mem, r->flag);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Rope(const std::vector<uint64_t>& a, Memory& mem,
                                   Counters* c) {
  absl::StatusOr<RopeArgs> r = ParseRope(a, mem);
  if (!r.ok()) return r.status();
  const uint64_t base = r->base, positions = r->positions, N = r->n,
                 stride = r->stride, q_off = r->q_off, k_off = r->k_off,
                 dim = r->dim, kv_dim = r->kv_dim, head = r->head;
  for (uint64_t n = 0; n < N; ++n) {
    int32_t pos;
    std::memcpy(&pos, mem.at(positions + 4 * n), 4);
    float* q = mem.f32(base) + n * stride + q_off;
    float* k = mem.f32(base) + n * stride + k_off;
    for (uint64_t i = 0; i < dim; i += 2) {
      float fcr, fci;
      RopeRotation(pos, i, head, &fcr, &fci);
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
  Elementwise("rope", &work);
  work.hbm_bytes = 2.0 * N * (dim + kv_dim) * e;
  work.transfers = 2.0 * std::min<double>(N, config_.clusters());
  work.tcdm_accesses = 4.0 * N * (dim + kv_dim) * e / 8.0;
  work.clusters_used =
      static_cast<int>(std::min<uint64_t>(N, config_.clusters()));
  Charge(work, c);
  SignalDone(mem, r->flag);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Attention(const std::vector<uint64_t>& a,
                                        Memory& mem, Counters* c) {
  absl::StatusOr<AttentionArgs> r = ParseAttention(a, mem);
  if (!r.ok()) return r.status();
  const uint64_t q = r->q, q_stride = r->q_stride, out = r->out, N = r->n,
                 heads = r->heads, head = r->head;
  const uint64_t dim = heads * head, kv_dim = r->kv_heads * head,
                 kv_mul = heads / r->kv_heads;
  const std::vector<AttentionQuery>& qs = r->queries;
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
  for (const AttentionQuery& qq : qs) {
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
  if (Measured()) {
    work.utilization =
        table_->Attention(head, flops / ((4.0 * head + 5.0) * heads * N));
    work.memory_in_utilization = true;
  }
  work.hbm_bytes = kv_bytes + 2.0 * N * dim * e;
  work.tiles =
      config_.double_buffering ? std::max(1.0, tiles / config_.clusters()) : 1;
  work.transfers = tiles * 2 + N;
  work.tcdm_accesses = flops * e / 8.0 + work.hbm_bytes / 8.0;
  work.barriers = 2;  // Distributed softmax: max and sum exchanges.
  Charge(work, c);
  SignalDone(mem, r->flag);
  return absl::OkStatus();
}

absl::Status TileModelEngine::SwiGlu(const std::vector<uint64_t>& a,
                                     Memory& mem, Counters* c) {
  absl::StatusOr<SwiGluArgs> r = ParseSwiGlu(a, mem);
  if (!r.ok()) return r.status();
  const uint64_t h = r->h, out = r->out, N = r->n, H = r->hidden;
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
  Elementwise("swiglu", &work);
  work.hbm_bytes = 3.0 * N * H * e;
  work.transfers = 3.0 * config_.clusters();
  work.tcdm_accesses = 3.0 * N * H * e / 8.0;
  Charge(work, c);
  SignalDone(mem, r->flag);
  return absl::OkStatus();
}

absl::Status TileModelEngine::Copy(const std::vector<uint64_t>& a, Memory& mem,
                                   Counters* c) {
  absl::StatusOr<CopyArgs> r = ParseCopy(a, mem);
  if (!r.ok()) return r.status();
  const uint64_t count = r->transfers.size();
  double bytes = 0;
  for (const CopyTransfer& t : r->transfers) {
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
  SignalDone(mem, r->flag);
  return absl::OkStatus();
}

}  // namespace joule::riscv
