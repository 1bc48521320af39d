#include "device/riscv/sim/kernel_args.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace joule::riscv {
namespace {

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

}  // namespace

absl::StatusOr<GemmArgs> ParseGemm(const std::vector<uint64_t>& a,
                                   const Memory& mem) {
  if (absl::Status s = Args(a, 8, "GEMM"); !s.ok()) return s;
  GemmArgs g{a[0], a[1], a[2], a[3], a[4], a[5], a[6] != 0, a[7]};
  ArgCheck check("GEMM", mem);
  check.Dim("M", g.m).Dim("K", g.k).Dim("N", g.n);
  check.F32("W", g.w, g.m, g.k).F32("X", g.x, g.n, g.k);
  check.F32("Y", g.y, g.n, g.m).Flag(g.flag);
  if (!check.ok()) return check.status();
  return g;
}

absl::StatusOr<RmsNormArgs> ParseRmsNorm(const std::vector<uint64_t>& a,
                                         const Memory& mem) {
  if (absl::Status s = Args(a, 6, "RMSNORM"); !s.ok()) return s;
  RmsNormArgs r{a[0], a[1], a[2], a[3], a[4], a[5]};
  ArgCheck check("RMSNORM", mem);
  check.Dim("N", r.n).Dim("D", r.d);
  check.F32("x", r.x, r.n, r.d).F32("w", r.w, 1, r.d);
  check.F32("out", r.out, r.n, r.d).Flag(r.flag);
  if (!check.ok()) return check.status();
  return r;
}

absl::StatusOr<RopeArgs> ParseRope(const std::vector<uint64_t>& a,
                                   const Memory& mem) {
  if (absl::Status s = Args(a, 10, "ROPE"); !s.ok()) return s;
  RopeArgs r{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]};
  // Rotations take pairs: odd sizes would touch one float past the row.
  ArgCheck check("ROPE", mem);
  check.Dim("N", r.n).Dim("stride", r.stride).Dim("dim", r.dim);
  check.Even("dim", r.dim).Dim("head", r.head).Even("head", r.head);
  check.Even("kv_dim", r.kv_dim);
  check.Require(r.kv_dim <= r.dim, "kv_dim (%d) exceeds dim (%d)", r.kv_dim,
                r.dim);
  check.Fits("q_off", r.q_off, "dim", r.dim, "stride", r.stride);
  check.Fits("k_off", r.k_off, "kv_dim", r.kv_dim, "stride", r.stride);
  check.F32("base", r.base, r.n, r.stride)
      .Array("positions", r.positions, r.n, 4);
  check.Flag(r.flag);
  if (!check.ok()) return check.status();
  return r;
}

absl::StatusOr<AttentionArgs> ParseAttention(const std::vector<uint64_t>& a,
                                             const Memory& mem) {
  if (absl::Status s = Args(a, 9, "ATTENTION"); !s.ok()) return s;
  AttentionArgs r{a[0], a[1], a[2], a[4], a[5], a[6], a[7], a[8], {}};
  const uint64_t desc = a[3];
  // Each factor is bounded first, so heads * head (at most 2^40) cannot
  // wrap to a small value that passes the stride check.
  ArgCheck check("ATTENTION", mem);
  check.Dim("N", r.n).Dim("q_stride", r.q_stride).Dim("heads", r.heads);
  check.Dim("kv_heads", r.kv_heads, r.heads).Dim("head", r.head);
  // The range checks must pass first: kv_heads may be 0.
  if (!check.ok()) return check.status();
  check.Require(r.heads % r.kv_heads == 0,
                "heads (%d) must be a multiple of kv_heads (%d)", r.heads,
                r.kv_heads);
  if (!check.ok()) return check.status();
  const uint64_t dim = r.heads * r.head, kv_dim = r.kv_heads * r.head;
  check.Require(dim <= r.q_stride, "heads x head (%d) exceeds q_stride (%d)",
                dim, r.q_stride);
  check.F32("q", r.q, r.n, r.q_stride).F32("out", r.out, r.n, dim);
  check.Array("descriptors", desc, r.n, 24).Flag(r.flag);
  if (!check.ok()) return check.status();
  r.queries.resize(r.n);
  for (uint64_t n = 0; n < r.n; ++n) {
    AttentionQuery& q = r.queries[n];
    mem.Read(desc + 24 * n, &q, 24).IgnoreError();  // Checked above.
    check.Dim("descriptor keys", q.keys);
    check.F32("descriptor K", q.k, q.keys, kv_dim);
    check.F32("descriptor V", q.v, q.keys, kv_dim);
    if (!check.ok()) return check.status();
  }
  return r;
}

absl::StatusOr<SwiGluArgs> ParseSwiGlu(const std::vector<uint64_t>& a,
                                       const Memory& mem) {
  if (absl::Status s = Args(a, 5, "SWIGLU"); !s.ok()) return s;
  SwiGluArgs r{a[0], a[1], a[2], a[3], a[4]};
  ArgCheck check("SWIGLU", mem);
  check.Dim("N", r.n).Dim("H", r.hidden);
  check.F32("h", r.h, r.n, 2 * r.hidden).F32("out", r.out, r.n, r.hidden);
  check.Flag(r.flag);
  if (!check.ok()) return check.status();
  return r;
}

absl::StatusOr<CopyArgs> ParseCopy(const std::vector<uint64_t>& a,
                                   const Memory& mem) {
  if (absl::Status s = Args(a, 3, "COPY"); !s.ok()) return s;
  const uint64_t desc = a[0], count = a[1];
  CopyArgs r{{}, a[2]};
  ArgCheck check("COPY", mem);
  check.Require(count <= kMaxDim, "count = %d exceeds %d", count, kMaxDim);
  check.Array("descriptors", desc, count, 24).Flag(r.flag);
  if (!check.ok()) return check.status();
  // All descriptors are read and checked before the first copy: a copy may
  // overwrite the descriptor list, and a bad descriptor copies nothing.
  r.transfers.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    CopyTransfer& t = r.transfers[i];
    mem.Read(desc + 24 * i, &t, 24).IgnoreError();  // Checked above.
    check.Array("descriptor src", t.src, t.bytes, 1);
    check.Array("descriptor dst", t.dst, t.bytes, 1);
    if (!check.ok()) return check.status();
  }
  return r;
}

void SignalDone(Memory& m, uint64_t flag) {
  if (flag != 0) {
    const uint32_t one = 1;
    m.Write(flag, &one, 4).IgnoreError();  // Checked with the arguments.
  }
}

void RopeRotation(int32_t pos, uint64_t i, uint64_t head, float* cos_out,
                  float* sin_out) {
  const int head_dim = static_cast<int>(i % head);
  const float freq = 1.0f / powf(10000.0f, head_dim / (float)head);
  const float val = pos * freq;
  *cos_out = cosf(val);
  *sin_out = sinf(val);
}

}  // namespace joule::riscv
