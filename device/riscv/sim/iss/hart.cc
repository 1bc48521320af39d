// Built with -frounding-math (BUILD): guest FP operations run on the host
// FPU under the guest's rounding mode, so the compiler must not fold or
// move them across fesetround.
#include "device/riscv/sim/iss/hart.h"

#include <emmintrin.h>

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"

namespace joule::iss {
namespace {

constexpr uint64_t kBox = 0xffffffff00000000ull;
constexpr uint32_t kCanonS = 0x7fc00000u;
constexpr uint64_t kCanonD = 0x7ff8000000000000ull;
// fflags bits.
constexpr uint32_t kNX = 1, kUF = 2, kOF = 4, kDZ = 8, kNV = 16;

template <typename To, typename From>
To Bits(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &v, sizeof(t));
  return t;
}

// A single's bits from a register: NaN-boxed, or the canonical NaN.
uint32_t SBits(uint64_t r) {
  return (r >> 32) == 0xffffffffu ? static_cast<uint32_t>(r) : kCanonS;
}
float S(uint64_t r) { return Bits<float>(SBits(r)); }
double D(uint64_t r) { return Bits<double>(r); }
uint64_t BoxBits(uint32_t b) { return kBox | b; }
uint64_t Box(float v) {
  return BoxBits(std::isnan(v) ? kCanonS : Bits<uint32_t>(v));
}
uint64_t Pack(double v) { return std::isnan(v) ? kCanonD : Bits<uint64_t>(v); }

// Per-format bit facts, for sign injection, min/max and classification.
template <typename U>
struct Fmt;
template <>
struct Fmt<uint32_t> {
  static constexpr uint32_t kSign = 0x80000000u, kExp = 0x7f800000u,
                            kQuiet = 0x00400000u, kFrac = 0x007fffffu;
  static constexpr uint32_t kCanon = kCanonS;
};
template <>
struct Fmt<uint64_t> {
  static constexpr uint64_t kSign = 0x8000000000000000ull,
                            kExp = 0x7ff0000000000000ull,
                            kQuiet = 0x0008000000000000ull,
                            kFrac = 0x000fffffffffffffull;
  static constexpr uint64_t kCanon = kCanonD;
};

template <typename U>
bool IsNan(U b) {
  return (b & Fmt<U>::kExp) == Fmt<U>::kExp && (b & Fmt<U>::kFrac) != 0;
}
template <typename U>
bool IsSnan(U b) {
  return IsNan(b) && (b & Fmt<U>::kQuiet) == 0;
}

template <typename U>
uint32_t Classify(U b) {
  const bool neg = (b & Fmt<U>::kSign) != 0;
  const U exp = b & Fmt<U>::kExp, frac = b & Fmt<U>::kFrac;
  if (exp == Fmt<U>::kExp) {
    if (frac == 0) return neg ? 1u << 0 : 1u << 7;
    return (b & Fmt<U>::kQuiet) ? 1u << 9 : 1u << 8;
  }
  if (exp == 0) {
    if (frac == 0) return neg ? 1u << 3 : 1u << 4;
    return neg ? 1u << 2 : 1u << 5;
  }
  return neg ? 1u << 1 : 1u << 6;
}

// fsgnj/fsgnjn/fsgnjx: kind 0, 1, 2.
template <typename U>
U SignInject(U a, U b, int kind) {
  const U s = Fmt<U>::kSign;
  const U sign = kind == 0 ? (b & s) : kind == 1 ? (~b & s) : ((a ^ b) & s);
  return (a & ~s) | sign;
}

// fmin/fmax (IEEE 754-2019 minimumNumber/maximumNumber, as the F
// extension 2.2 defines them): a NaN operand yields the other; -0 < +0.
template <typename U, typename F>
U MinMax(U a, U b, bool max, uint32_t* flags) {
  if (IsSnan(a) || IsSnan(b)) *flags |= kNV;
  const bool an = IsNan(a), bn = IsNan(b);
  if (an && bn) return Fmt<U>::kCanon;
  if (an) return b;
  if (bn) return a;
  const F fa = Bits<F>(a), fb = Bits<F>(b);
  if (fa == fb) return max ? (a & b) : (a | b);  // Only ±0 differ in bits.
  return (fa < fb) != max ? a : b;
}

// feq (quiet: only signaling NaNs raise NV), flt and fle (signaling).
template <typename U, typename F>
uint32_t Compare(U a, U b, int kind, uint32_t* flags) {
  if (IsNan(a) || IsNan(b)) {
    if (kind != 0 || IsSnan(a) || IsSnan(b)) *flags |= kNV;
    return 0;
  }
  const F fa = Bits<F>(a), fb = Bits<F>(b);
  return kind == 0 ? fa == fb : kind == 1 ? fa < fb : fa <= fb;
}

// v rounded to an integer by rm (0 RNE, 1 RTZ, 2 RDN, 3 RUP, 4 RMM), in
// double (exact for every single and for every double below 2^52; larger
// ones are integers already).
double RoundToInteger(double v, uint32_t rm) {
  if (!(std::fabs(v) < 4503599627370496.0)) return v;
  switch (rm) {
    case 1:
      return std::trunc(v);
    case 2:
      return std::floor(v);
    case 3:
      return std::ceil(v);
    case 4:
      return std::round(v);
    default:
      return v - std::remainder(v, 1.0);
  }
}

// fcvt.w[u].{s,d}: RISC-V saturates out-of-range values and NaN (to the
// largest value for NaN) and raises NV; otherwise NX if inexact. The
// rounding helpers' own effect on the host flags is undone.
uint32_t ToInt(double v, uint32_t rm, bool is_unsigned, uint32_t* flags) {
  const uint32_t saved = _mm_getcsr();  // Only MXCSR holds guest flags.
  uint32_t result;
  if (std::isnan(v)) {
    *flags |= kNV;
    result = is_unsigned ? 0xffffffffu : 0x7fffffffu;
  } else {
    const double r = RoundToInteger(v, rm);
    const double lo = is_unsigned ? 0.0 : -2147483648.0;
    const double hi = is_unsigned ? 4294967295.0 : 2147483647.0;
    if (r < lo || r > hi) {
      *flags |= kNV;
      result = v < 0 ? (is_unsigned ? 0u : 0x80000000u)
                     : (is_unsigned ? 0xffffffffu : 0x7fffffffu);
    } else {
      if (r != v) *flags |= kNX;
      result = is_unsigned ? static_cast<uint32_t>(r)
                           : static_cast<uint32_t>(static_cast<int32_t>(r));
    }
  }
  _mm_setcsr(saved);
  return result;
}

// a x b + c, rounded once. RISC-V raises NV for infinity x zero even when
// c is a quiet NaN; x86's FMA does not.
template <typename F>
F Fma(F a, F b, F c, uint32_t* flags) {
  if (std::isnan(c) && ((std::isinf(a) && b == 0) || (a == 0 && std::isinf(b))))
    *flags |= kNV;
  return std::fma(a, b, c);
}

// The rounding mode last set on this thread's FPU (as rm; -1: unknown):
// shared by every hart the thread runs, so switching harts costs nothing
// unless their modes differ.
thread_local int host_round = -1;

// Guest FP runs in SSE registers (and glibc's fma on FMA3), so its flags
// are MXCSR's sticky bits, read and cleared directly: feclearexcept also
// rewrites the x87 environment, ten times the cost, once per quantum.
constexpr uint32_t kMxcsrFlags = 0x3f;

uint32_t HostFlags() {
  const uint32_t e = _mm_getcsr();
  return ((e & 0x20) ? kNX : 0) | ((e & 0x10) ? kUF : 0) |
         ((e & 0x08) ? kOF : 0) | ((e & 0x04) ? kDZ : 0) |
         ((e & 0x01) ? kNV : 0);
}

void ClearHostFlags() { _mm_setcsr(_mm_getcsr() & ~kMxcsrFlags); }

// double to float as cvtsd2ss does it (rounded by MXCSR, overflowing to
// infinity with OF): a C++ cast of an out-of-range double is undefined.
float Narrow(double d) {
  return _mm_cvtss_f32(_mm_cvtsd_ss(_mm_setzero_ps(), _mm_set_sd(d)));
}

int32_t Signed(uint32_t v) { return static_cast<int32_t>(v); }

}  // namespace

Hart::Hart(Memory* m, Environment* env, uint32_t id)
    : hartid(id), mem(m), env_(env) {}

void Hart::SetCode(uint32_t base, const std::vector<uint32_t>& words) {
  auto code = std::make_shared<std::vector<Insn>>(words.size());
  for (size_t i = 0; i < words.size(); ++i) (*code)[i] = Decode(words[i]);
  SetCode(base, std::move(code));
}

void Hart::SetCode(uint32_t base,
                   std::shared_ptr<const std::vector<Insn>> code) {
  code_base_ = base;
  code_ = std::move(code);
  code_data_ = code_->data();
  code_size_ = code_->size();
}

void Hart::HarvestFlags() {
  fflags |= HostFlags();
  ClearHostFlags();
}

bool Hart::SetRounding(uint32_t rm) {
  if (rm == 7) rm = frm;
  if (rm > 3) return false;  // Reserved, or RMM (no host mode for it).
  if (static_cast<int>(rm) != host_round) {
    constexpr int kModes[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD,
                               FE_UPWARD};
    fesetround(kModes[rm]);
    host_round = static_cast<int>(rm);
  }
  return true;
}

bool Hart::ReadCsr(uint32_t csr, uint32_t* v) {
  switch (csr) {
    case 0x001:
      HarvestFlags();
      *v = fflags;
      return true;
    case 0x002:
      *v = frm;
      return true;
    case 0x003:
      HarvestFlags();
      *v = frm << 5 | fflags;
      return true;
    case 0xC00:
    case 0xB00:
      *v = static_cast<uint32_t>(cycles);
      return true;
    case 0xC80:
    case 0xB80:
      *v = static_cast<uint32_t>(cycles >> 32);
      return true;
    case 0xC01:
      *v = static_cast<uint32_t>(cycles);
      return true;
    case 0xC81:
      *v = static_cast<uint32_t>(cycles >> 32);
      return true;
    case 0xC02:
    case 0xB02:
      *v = static_cast<uint32_t>(instret);
      return true;
    case 0xC82:
    case 0xB82:
      *v = static_cast<uint32_t>(instret >> 32);
      return true;
    case 0xF14:
      *v = hartid;
      return true;
    default:
      return false;
  }
}

bool Hart::WriteCsr(uint32_t csr, uint32_t v) {
  switch (csr) {
    case 0x001:
      ClearHostFlags();
      fflags = v & 0x1f;
      return true;
    case 0x002:
      frm = v & 7;
      return true;
    case 0x003:
      ClearHostFlags();
      fflags = v & 0x1f;
      frm = (v >> 5) & 7;
      return true;
    default:
      return false;  // Counters and mhartid are read-only here.
  }
}

bool Hart::Amo(const Insn& in, Stop* stop) {
  const uint32_t addr = x[in.rs1];
  uint32_t old = 0;
  if (in.op == Op::kScW) {
    const bool ok = reserved_ && reservation_ == addr;
    reserved_ = false;
    if (ok && !mem->Store<uint32_t>(addr, x[in.rs2])) goto fault;
    x[in.rd] = ok ? 0 : 1;
    return true;
  }
  if (!mem->Load<uint32_t>(addr, &old)) goto fault;
  if (in.op == Op::kLrW) {
    reserved_ = true;
    reservation_ = addr;
    x[in.rd] = old;
    return true;
  }
  {
    const uint32_t b = x[in.rs2];
    uint32_t v;
    switch (in.op) {
      case Op::kAmoswapW:
        v = b;
        break;
      case Op::kAmoaddW:
        v = old + b;
        break;
      case Op::kAmoxorW:
        v = old ^ b;
        break;
      case Op::kAmoandW:
        v = old & b;
        break;
      case Op::kAmoorW:
        v = old | b;
        break;
      case Op::kAmominW:
        v = Signed(old) < Signed(b) ? old : b;
        break;
      case Op::kAmomaxW:
        v = Signed(old) > Signed(b) ? old : b;
        break;
      case Op::kAmominuW:
        v = old < b ? old : b;
        break;
      default:
        v = old > b ? old : b;
        break;  // amomaxu
    }
    if (!mem->Store<uint32_t>(addr, v)) goto fault;
    x[in.rd] = old;
    return true;
  }
fault:
  stop->reason = Stop::kFault;
  stop->message =
      absl::StrFormat("%s: access fault at 0x%08x", OpName(in.op), addr);
  return false;
}

// Two fp32 lanes in a 64-bit register: lane 0 bits 31:0, lane 1 bits
// 63:32 (snitch_fp_ss.sv; docs/riscv_iss_sources.md section 4). Results
// are rounded by frm; a NaN lane becomes the canonical NaN.
bool Hart::ExecVector(const Insn& in, Stop* stop) {
  fp_used_ = true;
  if (!xfvec || !SetRounding(7)) {
    stop->reason = Stop::kFault;
    stop->message = absl::StrFormat(
        "%s: %s (raw 0x%08x)", OpName(in.op),
        xfvec ? "illegal rounding mode in frm" : "not available on this hart",
        in.raw);
    return false;
  }
  auto lane = [](uint64_t r, int i) {
    return Bits<float>(static_cast<uint32_t>(r >> (32 * i)));
  };
  auto bits = [](float v) -> uint64_t {
    return std::isnan(v) ? kCanonS : Bits<uint32_t>(v);
  };
  const uint64_t a = f[in.rs1], d = f[in.rd];
  // The .R forms (funct3 4) replicate rs2's lane 0.
  const uint64_t b =
      in.rm == 4 ? (f[in.rs2] & 0xffffffffu) * 0x100000001ull : f[in.rs2];
  uint64_t out[2] = {};
  switch (in.op) {
    case Op::kVfaddS:
    case Op::kVfmulS:
    case Op::kVfmacS:
      for (int i = 0; i < 2; ++i) {
        const float x = lane(a, i), y = lane(b, i);
        out[i] = bits(in.op == Op::kVfaddS   ? x + y
                      : in.op == Op::kVfmulS ? x * y
                                             : std::fma(x, y, lane(d, i)));
      }
      f[in.rd] = out[1] << 32 | out[0];
      return true;
    case Op::kVfsumS: {
      // rd[31:0] = rs1[0] + rs1[1] + rd[31:0], rounded once (the sum of
      // three singles in double, then to single), NaN-boxed.
      const double sum =
          double{lane(a, 0)} + double{lane(a, 1)} + double{lane(d, 0)};
      f[in.rd] = kBox | bits(Narrow(sum));
      return true;
    }
    default:  // vfcpka.s.s: rs1's and rs2's singles packed into lanes 0, 1.
      f[in.rd] = (f[in.rs2] & 0xffffffffu) << 32 | (a & 0xffffffffu);
      return true;
  }
}

bool Hart::ExecFp(const Insn& in, Stop* stop) {
  fp_used_ = true;
  const uint64_t a = f[in.rs1], b = f[in.rs2], c = f[in.rs3];
  uint32_t soft = 0;  // Flags the host FPU does not raise for us.
  switch (in.op) {
    // Sign injection, min/max, compare, classify, moves: no rounding.
    case Op::kFsgnjS:
    case Op::kFsgnjnS:
    case Op::kFsgnjxS:
      f[in.rd] = BoxBits(
          SignInject(SBits(a), SBits(b),
                     static_cast<int>(in.op) - static_cast<int>(Op::kFsgnjS)));
      return true;
    case Op::kFsgnjD:
    case Op::kFsgnjnD:
    case Op::kFsgnjxD:
      f[in.rd] = SignInject(
          a, b, static_cast<int>(in.op) - static_cast<int>(Op::kFsgnjD));
      return true;
    case Op::kFminS:
    case Op::kFmaxS:
      f[in.rd] = BoxBits(MinMax<uint32_t, float>(SBits(a), SBits(b),
                                                 in.op == Op::kFmaxS, &soft));
      break;
    case Op::kFminD:
    case Op::kFmaxD:
      f[in.rd] = MinMax<uint64_t, double>(a, b, in.op == Op::kFmaxD, &soft);
      break;
    case Op::kFeqS:
    case Op::kFltS:
    case Op::kFleS:
      x[in.rd] = Compare<uint32_t, float>(SBits(a), SBits(b),
                                          in.op == Op::kFeqS   ? 0
                                          : in.op == Op::kFltS ? 1
                                                               : 2,
                                          &soft);
      break;
    case Op::kFeqD:
    case Op::kFltD:
    case Op::kFleD:
      x[in.rd] = Compare<uint64_t, double>(a, b,
                                           in.op == Op::kFeqD   ? 0
                                           : in.op == Op::kFltD ? 1
                                                                : 2,
                                           &soft);
      break;
    case Op::kFclassS:
      x[in.rd] = Classify(SBits(a));
      return true;
    case Op::kFclassD:
      x[in.rd] = Classify(a);
      return true;
    case Op::kFmvXW:
      x[in.rd] = static_cast<uint32_t>(a);
      return true;
    case Op::kFmvWX:
      f[in.rd] = BoxBits(x[in.rs1]);
      return true;
    // Conversions to integers round by hand (RMM included).
    case Op::kFcvtWS:
    case Op::kFcvtWuS:
    case Op::kFcvtWD:
    case Op::kFcvtWuD: {
      const uint32_t rm = in.rm == 7 ? frm : in.rm;
      if (rm > 4) goto illegal_rm;
      const bool single = in.op == Op::kFcvtWS || in.op == Op::kFcvtWuS;
      x[in.rd] = ToInt(single ? S(a) : D(a), rm,
                       in.op == Op::kFcvtWuS || in.op == Op::kFcvtWuD, &soft);
      break;
    }
    // Exact conversions: any valid rounding mode, none applied.
    case Op::kFcvtDS:
    case Op::kFcvtDW:
    case Op::kFcvtDWu: {
      if ((in.rm == 7 ? frm : in.rm) > 4) goto illegal_rm;
      const uint32_t i1 = x[in.rs1];
      f[in.rd] = in.op == Op::kFcvtDS   ? Pack(static_cast<double>(S(a)))
                 : in.op == Op::kFcvtDW ? Pack(static_cast<double>(Signed(i1)))
                                        : Pack(static_cast<double>(i1));
      return true;
    }
    default: {
      // Everything else rounds on the host FPU.
      if (!SetRounding(in.rm)) goto illegal_rm;
      const uint32_t i1 = x[in.rs1];
      switch (in.op) {
        case Op::kFaddS:
          f[in.rd] = Box(S(a) + S(b));
          break;
        case Op::kFsubS:
          f[in.rd] = Box(S(a) - S(b));
          break;
        case Op::kFmulS:
          f[in.rd] = Box(S(a) * S(b));
          break;
        case Op::kFdivS:
          f[in.rd] = Box(S(a) / S(b));
          break;
        case Op::kFsqrtS:
          f[in.rd] = Box(std::sqrt(S(a)));
          break;
        case Op::kFmaddS:
          f[in.rd] = Box(Fma(S(a), S(b), S(c), &soft));
          break;
        case Op::kFmsubS:
          f[in.rd] = Box(Fma(S(a), S(b), -S(c), &soft));
          break;
        case Op::kFnmsubS:
          f[in.rd] = Box(Fma(-S(a), S(b), S(c), &soft));
          break;
        case Op::kFnmaddS:
          f[in.rd] = Box(Fma(-S(a), S(b), -S(c), &soft));
          break;
        case Op::kFaddD:
          f[in.rd] = Pack(D(a) + D(b));
          break;
        case Op::kFsubD:
          f[in.rd] = Pack(D(a) - D(b));
          break;
        case Op::kFmulD:
          f[in.rd] = Pack(D(a) * D(b));
          break;
        case Op::kFdivD:
          f[in.rd] = Pack(D(a) / D(b));
          break;
        case Op::kFsqrtD:
          f[in.rd] = Pack(std::sqrt(D(a)));
          break;
        case Op::kFmaddD:
          f[in.rd] = Pack(Fma(D(a), D(b), D(c), &soft));
          break;
        case Op::kFmsubD:
          f[in.rd] = Pack(Fma(D(a), D(b), -D(c), &soft));
          break;
        case Op::kFnmsubD:
          f[in.rd] = Pack(Fma(-D(a), D(b), D(c), &soft));
          break;
        case Op::kFnmaddD:
          f[in.rd] = Pack(Fma(-D(a), D(b), -D(c), &soft));
          break;
        case Op::kFcvtSD:
          f[in.rd] = Box(Narrow(D(a)));
          break;
        case Op::kFcvtSW:
          f[in.rd] = Box(static_cast<float>(Signed(i1)));
          break;
        case Op::kFcvtSWu:
          f[in.rd] = Box(static_cast<float>(i1));
          break;
        default:
          stop->reason = Stop::kFault;
          stop->message =
              absl::StrFormat("%s is not available on this hart (raw 0x%08x)",
                              OpName(in.op), in.raw);
          return false;
      }
      break;
    }
  }
  fflags |= soft;
  return true;
illegal_rm:
  stop->reason = Stop::kFault;
  stop->message = absl::StrFormat("%s: illegal rounding mode %d%s (raw 0x%08x)",
                                  OpName(in.op), in.rm == 7 ? frm : in.rm,
                                  (in.rm == 7 ? frm : in.rm) == 4
                                      ? " (RMM is modeled only for "
                                        "conversions to integers)"
                                      : "",
                                  in.raw);
  return false;
}

bool Hart::Step(const Insn& in, Stop* stop) {
  const uint32_t a = x[in.rs1], b = x[in.rs2];
  const uint32_t imm = static_cast<uint32_t>(in.imm);
  uint32_t next = pc + 4;
  switch (in.op) {
    case Op::kLui:
      x[in.rd] = imm;
      break;
    case Op::kAuipc:
      x[in.rd] = pc + imm;
      break;
    case Op::kJal:
      x[in.rd] = next;
      next = pc + imm;
      break;
    case Op::kJalr:
      x[in.rd] = next;
      next = (a + imm) & ~1u;
      break;
    case Op::kBeq:
      if (a == b) next = pc + imm;
      break;
    case Op::kBne:
      if (a != b) next = pc + imm;
      break;
    case Op::kBlt:
      if (Signed(a) < Signed(b)) next = pc + imm;
      break;
    case Op::kBge:
      if (Signed(a) >= Signed(b)) next = pc + imm;
      break;
    case Op::kBltu:
      if (a < b) next = pc + imm;
      break;
    case Op::kBgeu:
      if (a >= b) next = pc + imm;
      break;
    case Op::kLb:
    case Op::kLh:
    case Op::kLw:
    case Op::kLbu:
    case Op::kLhu:
    case Op::kFlw:
    case Op::kFld: {
      const uint32_t addr = a + imm;
      bool ok;
      switch (in.op) {
        case Op::kLb: {
          int8_t v = 0;
          ok = mem->Load(addr, &v);
          x[in.rd] = v;
          break;
        }
        case Op::kLh: {
          int16_t v = 0;
          ok = mem->Load(addr, &v);
          x[in.rd] = v;
          break;
        }
        case Op::kLw: {
          uint32_t v = 0;
          ok = mem->Load(addr, &v);
          x[in.rd] = v;
          break;
        }
        case Op::kLbu: {
          uint8_t v = 0;
          ok = mem->Load(addr, &v);
          x[in.rd] = v;
          break;
        }
        case Op::kLhu: {
          uint16_t v = 0;
          ok = mem->Load(addr, &v);
          x[in.rd] = v;
          break;
        }
        case Op::kFlw: {
          uint32_t v = 0;
          ok = mem->Load(addr, &v);
          f[in.rd] = BoxBits(v);
          break;
        }
        default: {
          uint64_t v = 0;
          ok = mem->Load(addr, &v);
          f[in.rd] = v;
          break;
        }
      }
      if (!ok) {
        stop->reason = Stop::kFault;
        stop->message = absl::StrFormat("%s: load access fault at 0x%08x",
                                        OpName(in.op), addr);
        return false;
      }
      break;
    }
    case Op::kSb:
    case Op::kSh:
    case Op::kSw:
    case Op::kFsw:
    case Op::kFsd: {
      const uint32_t addr = a + imm;
      bool ok;
      switch (in.op) {
        case Op::kSb:
          ok = mem->Store<uint8_t>(addr, b);
          break;
        case Op::kSh:
          ok = mem->Store<uint16_t>(addr, b);
          break;
        case Op::kSw:
          ok = mem->Store<uint32_t>(addr, b);
          break;
        case Op::kFsw:
          ok = mem->Store<uint32_t>(addr, f[in.rs2]);
          break;
        default:
          ok = mem->Store<uint64_t>(addr, f[in.rs2]);
          break;
      }
      if (!ok) {
        stop->reason = Stop::kFault;
        stop->message = absl::StrFormat("%s: store access fault at 0x%08x",
                                        OpName(in.op), addr);
        return false;
      }
      if (reserved_ && addr - reservation_ < 4) reserved_ = false;
      break;
    }
    case Op::kAddi:
      x[in.rd] = a + imm;
      break;
    case Op::kSlti:
      x[in.rd] = Signed(a) < in.imm;
      break;
    case Op::kSltiu:
      x[in.rd] = a < imm;
      break;
    case Op::kXori:
      x[in.rd] = a ^ imm;
      break;
    case Op::kOri:
      x[in.rd] = a | imm;
      break;
    case Op::kAndi:
      x[in.rd] = a & imm;
      break;
    case Op::kSlli:
      x[in.rd] = a << imm;
      break;
    case Op::kSrli:
      x[in.rd] = a >> imm;
      break;
    case Op::kSrai:
      x[in.rd] = static_cast<uint32_t>(Signed(a) >> imm);
      break;
    case Op::kAdd:
      x[in.rd] = a + b;
      break;
    case Op::kSub:
      x[in.rd] = a - b;
      break;
    case Op::kSll:
      x[in.rd] = a << (b & 31);
      break;
    case Op::kSlt:
      x[in.rd] = Signed(a) < Signed(b);
      break;
    case Op::kSltu:
      x[in.rd] = a < b;
      break;
    case Op::kXor:
      x[in.rd] = a ^ b;
      break;
    case Op::kSrl:
      x[in.rd] = a >> (b & 31);
      break;
    case Op::kSra:
      x[in.rd] = static_cast<uint32_t>(Signed(a) >> (b & 31));
      break;
    case Op::kOr:
      x[in.rd] = a | b;
      break;
    case Op::kAnd:
      x[in.rd] = a & b;
      break;
    case Op::kMul:
      x[in.rd] = a * b;
      break;
    case Op::kMulh:
      x[in.rd] = static_cast<uint32_t>(
          (int64_t{Signed(a)} * int64_t{Signed(b)}) >> 32);
      break;
    case Op::kMulhsu:
      x[in.rd] = static_cast<uint32_t>(
          (int64_t{Signed(a)} * static_cast<int64_t>(b)) >> 32);
      break;
    case Op::kMulhu:
      x[in.rd] = static_cast<uint32_t>((uint64_t{a} * b) >> 32);
      break;
    case Op::kDiv:
      x[in.rd] = b == 0 ? 0xffffffffu
                 : (a == 0x80000000u && b == 0xffffffffu)
                     ? a
                     : static_cast<uint32_t>(Signed(a) / Signed(b));
      break;
    case Op::kDivu:
      x[in.rd] = b == 0 ? 0xffffffffu : a / b;
      break;
    case Op::kRem:
      x[in.rd] = b == 0 ? a
                 : (a == 0x80000000u && b == 0xffffffffu)
                     ? 0
                     : static_cast<uint32_t>(Signed(a) % Signed(b));
      break;
    case Op::kRemu:
      x[in.rd] = b == 0 ? a : a % b;
      break;
    case Op::kFence:
      break;
    case Op::kEcall:
      if (!env_->Ecall(*this, stop)) return false;
      break;
    case Op::kEbreak:
      stop->reason = Stop::kBreak;
      return false;
    case Op::kCsrrw:
    case Op::kCsrrs:
    case Op::kCsrrc:
    case Op::kCsrrwi:
    case Op::kCsrrsi:
    case Op::kCsrrci: {
      const uint32_t csr = imm;
      // csrrw with rd = x0 only writes: it must not read (a read can have
      // effects, as fflags' harvest does).
      const bool pure_write =
          (in.op == Op::kCsrrw || in.op == Op::kCsrrwi) && in.rd == 0;
      uint32_t old = 0;
      bool ok = pure_write || ReadCsr(csr, &old);
      if (ok) {
        const CsrUpdate update = CsrEffect(in, old, a);
        ok = !update.writes || WriteCsr(csr, update.value);
      }
      if (!ok) {
        stop->reason = Stop::kFault;
        stop->message = absl::StrFormat("%s: CSR 0x%03x is not available",
                                        OpName(in.op), csr);
        return false;
      }
      x[in.rd] = old;
      break;
    }
    case Op::kLrW:
    case Op::kScW:
    case Op::kAmoswapW:
    case Op::kAmoaddW:
    case Op::kAmoxorW:
    case Op::kAmoandW:
    case Op::kAmoorW:
    case Op::kAmominW:
    case Op::kAmomaxW:
    case Op::kAmominuW:
    case Op::kAmomaxuW:
      if (!Amo(in, stop)) return false;
      break;
    case Op::kIllegal:
      stop->reason = Stop::kFault;
      stop->message = absl::StrFormat("illegal instruction 0x%08x", in.raw);
      return false;
    case Op::kVfaddS:
    case Op::kVfmulS:
    case Op::kVfmacS:
    case Op::kVfsumS:
    case Op::kVfcpkaSS:
      if (!ExecVector(in, stop)) return false;
      break;
    default:
      if (!ExecFp(in, stop)) return false;
      break;
  }
  pc = next;
  return true;
}

Stop Hart::Run(uint64_t budget) {
  // The guest's FP state lives in the host's MXCSR while it runs; the
  // host's own is put back after.
  fenv_t host;
  fegetenv(&host);
  feclearexcept(FE_ALL_EXCEPT);
  host_round = -1;
  Stop stop;
  uint64_t n = 0;
  for (; n < budget; ++n) {
    const Insn* in = Fetch();
    if (in == nullptr) {
      stop.reason = Stop::kFault;
      stop.message = absl::StrFormat(
          "instruction fetch outside the code at "
          "0x%08x",
          pc);
      break;
    }
    if (!Step(*in, &stop)) break;
    x[0] = 0;
    ++instret;
    ++cycles;
  }
  x[0] = 0;
  stop.pc = pc;
  HarvestFlags();
  fesetenv(&host);
  return stop;
}

}  // namespace joule::iss
