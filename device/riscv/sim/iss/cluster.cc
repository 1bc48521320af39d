#include "device/riscv/sim/iss/cluster.h"

#include <algorithm>
#include <array>
#include <cfenv>
#include <cstring>

#include "absl/strings/str_format.h"
#include "device/riscv/sim/iss/elf.h"

namespace joule::iss {
namespace {

constexpr uint32_t kCsrSsr = 0x7C0;
constexpr uint32_t kCsrBarrier = 0x7C2;
constexpr uint32_t kStackBytes = 1024;

enum Unit : uint8_t {
  kAlu,
  kMul,
  kDiv,
  kBranch,
  kJump,
  kLoad,
  kStore,
  kAmo,
  kCsr,
  kSystem,
  kFp,
  kCustom
};
// Which FP latency applies (ClusterConfig).
enum FpKind : uint8_t {
  kNone,
  kFp64,
  kFp32,
  kNonComp,
  kConv,
  kSdotp,
  kDiv64,
  kDiv32,
  kFpLoad,
  kFpStore
};

// What the timing model needs of an operation.
struct OpClass {
  Unit unit = kAlu;
  bool rs1_x = false, rs2_x = false, rd_x = false;
  bool rs1_f = false, rs2_f = false, rs3_f = false, rd_f = false;
  bool rd_f_read = false;  // vfmac.s and vfsum.s accumulate into rd.
  FpKind fp = kNone;
  uint8_t flops = 0;
  bool fp64 = false;
  // Buffered by the FREP sequencer (snitch_sequencer.sv: everything
  // offloaded but moves and compares between the register files).
  bool freppable = false;
};

constexpr OpClass Fp(FpKind kind, bool r1, bool r2, bool r3, uint8_t flops,
                     bool fp64) {
  OpClass k;
  k.unit = kFp;
  k.fp = kind;
  k.rs1_f = r1;
  k.rs2_f = r2;
  k.rs3_f = r3;
  k.rd_f = true;
  k.flops = flops;
  k.fp64 = fp64;
  k.freppable = true;
  return k;
}

// FP result into an integer register, or integer into FP: not buffered.
constexpr OpClass Cross(FpKind kind, bool from_fp, bool two) {
  OpClass k;
  k.unit = kFp;
  k.fp = kind;
  k.rs1_f = from_fp;
  k.rs2_f = from_fp && two;
  k.rd_x = from_fp;
  k.rs1_x = !from_fp;
  k.rd_f = !from_fp;
  return k;
}

// Xfrep, Xssr and Xdma (Cluster::Custom), reading x[rs1] and/or x[rs2].
constexpr OpClass Extension(bool rs1, bool rs2) {
  OpClass k;
  k.unit = kCustom;
  k.rs1_x = rs1;
  k.rs2_x = rs2;
  return k;
}

constexpr OpClass ClassOf(Op op) {
  OpClass k;
  switch (op) {
    case Op::kLui:
    case Op::kAuipc:
      k.rd_x = true;
      return k;
    case Op::kJal:
      k.unit = kJump;
      k.rd_x = true;
      return k;
    case Op::kJalr:
      k.unit = kJump;
      k.rs1_x = k.rd_x = true;
      return k;
    case Op::kBeq:
    case Op::kBne:
    case Op::kBlt:
    case Op::kBge:
    case Op::kBltu:
    case Op::kBgeu:
      k.unit = kBranch;
      k.rs1_x = k.rs2_x = true;
      return k;
    case Op::kLb:
    case Op::kLh:
    case Op::kLw:
    case Op::kLbu:
    case Op::kLhu:
      k.unit = kLoad;
      k.rs1_x = k.rd_x = true;
      return k;
    case Op::kSb:
    case Op::kSh:
    case Op::kSw:
      k.unit = kStore;
      k.rs1_x = k.rs2_x = true;
      return k;
    case Op::kAddi:
    case Op::kSlti:
    case Op::kSltiu:
    case Op::kXori:
    case Op::kOri:
    case Op::kAndi:
    case Op::kSlli:
    case Op::kSrli:
    case Op::kSrai:
      k.rs1_x = k.rd_x = true;
      return k;
    case Op::kAdd:
    case Op::kSub:
    case Op::kSll:
    case Op::kSlt:
    case Op::kSltu:
    case Op::kXor:
    case Op::kSrl:
    case Op::kSra:
    case Op::kOr:
    case Op::kAnd:
      k.rs1_x = k.rs2_x = k.rd_x = true;
      return k;
    case Op::kMul:
    case Op::kMulh:
    case Op::kMulhsu:
    case Op::kMulhu:
      k.unit = kMul;
      k.rs1_x = k.rs2_x = k.rd_x = true;
      return k;
    case Op::kDiv:
    case Op::kDivu:
    case Op::kRem:
    case Op::kRemu:
      k.unit = kDiv;
      k.rs1_x = k.rs2_x = k.rd_x = true;
      return k;
    case Op::kFence:
    case Op::kEcall:
    case Op::kEbreak:
    case Op::kIllegal:
      k.unit = kSystem;
      return k;
    case Op::kCsrrw:
    case Op::kCsrrs:
    case Op::kCsrrc:
      k.unit = kCsr;
      k.rs1_x = k.rd_x = true;
      return k;
    case Op::kCsrrwi:
    case Op::kCsrrsi:
    case Op::kCsrrci:
      k.unit = kCsr;
      k.rd_x = true;
      return k;
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
      k.unit = kAmo;
      k.rs1_x = k.rs2_x = k.rd_x = true;
      return k;
    case Op::kFlw:
    case Op::kFld:
      k = Fp(kFpLoad, false, false, false, 0, false);
      k.rs1_x = true;
      return k;
    case Op::kFsw:
    case Op::kFsd:
      k = Fp(kFpStore, false, true, false, 0, false);
      k.rs1_x = true;
      k.rd_f = false;
      return k;
    case Op::kFmaddS:
    case Op::kFmsubS:
    case Op::kFnmsubS:
    case Op::kFnmaddS:
      return Fp(kFp32, true, true, true, 2, false);
    case Op::kFmaddD:
    case Op::kFmsubD:
    case Op::kFnmsubD:
    case Op::kFnmaddD:
      return Fp(kFp64, true, true, true, 2, true);
    case Op::kFaddS:
    case Op::kFsubS:
    case Op::kFmulS:
      return Fp(kFp32, true, true, false, 1, false);
    case Op::kFaddD:
    case Op::kFsubD:
    case Op::kFmulD:
      return Fp(kFp64, true, true, false, 1, true);
    case Op::kFdivS:
      return Fp(kDiv32, true, true, false, 1, false);
    case Op::kFdivD:
      return Fp(kDiv64, true, true, false, 1, true);
    case Op::kFsqrtS:
      return Fp(kDiv32, true, false, false, 1, false);
    case Op::kFsqrtD:
      return Fp(kDiv64, true, false, false, 1, true);
    case Op::kFsgnjS:
    case Op::kFsgnjnS:
    case Op::kFsgnjxS:
    case Op::kFminS:
    case Op::kFmaxS:
    case Op::kFsgnjD:
    case Op::kFsgnjnD:
    case Op::kFsgnjxD:
    case Op::kFminD:
    case Op::kFmaxD:
      return Fp(kNonComp, true, true, false, 0, false);
    case Op::kFcvtSD:
    case Op::kFcvtDS:
      return Fp(kConv, true, false, false, 0, false);
    case Op::kFcvtWS:
    case Op::kFcvtWuS:
    case Op::kFcvtWD:
    case Op::kFcvtWuD:
      return Cross(kConv, true, false);
    case Op::kFmvXW:
    case Op::kFclassS:
    case Op::kFclassD:
      return Cross(kNonComp, true, false);
    case Op::kFeqS:
    case Op::kFltS:
    case Op::kFleS:
    case Op::kFeqD:
    case Op::kFltD:
    case Op::kFleD:
      return Cross(kNonComp, true, true);
    case Op::kFcvtSW:
    case Op::kFcvtSWu:
    case Op::kFcvtDW:
    case Op::kFcvtDWu:
      return Cross(kConv, false, false);
    case Op::kFmvWX:
      return Cross(kNonComp, false, false);
    case Op::kVfaddS:
    case Op::kVfmulS:
      return Fp(kFp32, true, true, false, 2, false);
    case Op::kVfmacS:
      k = Fp(kFp32, true, true, false, 4, false);
      k.rd_f_read = true;
      return k;
    case Op::kVfsumS:
      k = Fp(kSdotp, true, false, false, 2, false);
      k.rd_f_read = true;
      return k;
    case Op::kVfcpkaSS:
      return Fp(kConv, true, true, false, 0, false);
    // Snitch's extensions read their integer operands in the integer core
    // as any instruction does, so they stall on the scoreboard too (an
    // frep.o right after the load of its count waits for the load). Only
    // the fields they read as registers count: the others are immediates
    // or fixed (scfgr's rs1 field is a constant 1, not x1).
    case Op::kFrepO:
    case Op::kFrepI:
    case Op::kScfgwi:
    case Op::kDmcpyi:
    case Op::kDmrep:
      return Extension(true, false);
    case Op::kScfgr:
    case Op::kDmstat:
      return Extension(false, true);
    case Op::kScfgw:
    case Op::kDmsrc:
    case Op::kDmdst:
    case Op::kDmcpy:
    case Op::kDmstr:
      return Extension(true, true);
    default:  // scfgri and dmstati: no register operand.
      return Extension(false, false);
  }
}

// A constant table: Step looks up every instruction's class, and the guard
// of a function-local static there cost about 2% of a run.
constexpr std::array<OpClass, static_cast<int>(Op::kCount)> MakeClasses() {
  std::array<OpClass, static_cast<int>(Op::kCount)> t{};
  for (int i = 0; i < static_cast<int>(Op::kCount); ++i)
    t[i] = ClassOf(static_cast<Op>(i));
  return t;
}
constexpr auto kClasses = MakeClasses();

}  // namespace

struct Cluster::Core {
  Core(Cluster* cl, uint32_t i) : hart(&cl->mem_, cl, i), index(i) {}
  Hart hart;
  const uint32_t index;
  bool compute = true;
  enum State { kRunning, kBarrier, kExited, kFaulted } state = kRunning;
  uint64_t cycle = 0;      // The integer pipeline's next issue slot.
  uint64_t fpu_cycle = 0;  // The FP pipeline's next issue slot.
  uint64_t arrival = 0;    // At the barrier.
  std::array<uint64_t, 32> x_ready{}, f_ready{};
  std::array<Ssr, 3> ssr;
  bool ssr_on = false;
  // FREP: the body being recorded (its first iteration runs as the core
  // issues it) and how to replay it.
  struct Recorded {
    Insn in;
    uint32_t x = 0;  // The integer operand it was issued with.
  };
  bool recording = false;
  int body = 0;
  uint32_t iterations = 0;
  int stagger_max = 0, stagger_mask = 0;
  std::vector<Recorded> frep;
  CoreCounters n;
  int exit_code = 0;

  uint64_t finish() const {
    uint64_t t = std::max(cycle, fpu_cycle);
    for (uint64_t r : f_ready) t = std::max(t, r);
    return t;
  }
};

Cluster::Cluster(ClusterConfig config) : config_(config) { ClearBanks(); }

Cluster::~Cluster() = default;

absl::Status Cluster::Load(absl::Span<const uint8_t> elf) {
  absl::StatusOr<ElfImage> image = ParseElf(elf);
  if (!image.ok()) return image.status();
  if (code_ != nullptr) return absl::FailedPreconditionError("already loaded");
  if (absl::Status s = mem_.Map(config_.tcdm_base, config_.tcdm_bytes, "TCDM");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = mem_.Map(config_.dram_base, config_.dram_bytes, "DRAM");
      !s.ok()) {
    return s;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const ElfImage::Segment& s : image->segments) {
    if (mem_.Read(s.vaddr, s.memsz) == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ELF segment at 0x%08x (+0x%x) is outside the cluster's TCDM and "
          "DRAM",
          s.vaddr, s.memsz));
    }
    if (s.executable) {
      lo = std::min<uint64_t>(lo, s.vaddr);
      hi = std::max<uint64_t>(hi, uint64_t{s.vaddr} + s.memsz);
    }
  }
  if (hi <= lo) return absl::InvalidArgumentError("ELF: no executable segment");
  segments_ = std::move(image->segments);
  WriteSegments();
  lo &= ~uint64_t{3};
  auto code = std::make_shared<std::vector<Insn>>((hi - lo + 3) / 4);
  for (size_t i = 0; i < code->size(); ++i) {
    uint32_t w = 0;
    mem_.Load<uint32_t>(static_cast<uint32_t>(lo + 4 * i), &w);
    (*code)[i] = Decode(w);
  }
  code_ = std::move(code);
  code_base_ = static_cast<uint32_t>(lo);
  entry_ = image->entry;
  symbols_ = std::move(image->symbols);
  MakeCores();
  return absl::OkStatus();
}

absl::Status Cluster::Reset() {
  if (code_ == nullptr) return absl::FailedPreconditionError("nothing loaded");
  mem_.ZeroWritten();
  WriteSegments();
  // The code was predecoded from these same bytes: it stands.
  cores_.clear();
  MakeCores();
  ClearBanks();
  dma_ = DmaEngine();
  out_.clear();
  error_.clear();
  return absl::OkStatus();
}

// Load checked that every segment lies in mapped memory. Their .bss is
// zero: freshly mapped at Load, zeroed as written at Reset.
void Cluster::WriteSegments() {
  for (const ElfImage::Segment& s : segments_) {
    uint8_t* p = mem_.At(s.vaddr, s.memsz);
    if (!s.bytes.empty()) std::memcpy(p, s.bytes.data(), s.bytes.size());
  }
}

void Cluster::MakeCores() {
  const int n = config_.compute_cores + config_.dm_cores;
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<Core>(this, static_cast<uint32_t>(i));
    c->compute = i < config_.compute_cores;
    c->hart.xfvec = c->compute;
    c->hart.SetCode(code_base_, code_);
    c->hart.pc = entry_;
    // 1 KiB each, and 8 bytes more per core so that the stacks do not all
    // start in the same bank (snitch_cluster's start.S does the same).
    c->hart.x[2] =
        config_.tcdm_base + config_.tcdm_bytes - i * (kStackBytes + 8);
    cores_.push_back(std::move(c));
  }
}

void Cluster::ClearBanks() {
  bank_busy_.resize(config_.tcdm_banks);
  for (auto& b : bank_busy_) b.fill(UINT64_MAX);
  bank_next_.assign(config_.tcdm_banks, 0);
}

// The cores' stacks sit at the top of the TCDM, one slice each. A store
// into another core's slice is almost always an overflowing stack (1 KiB
// is all the runtime gives a core), which silicon would not notice: the
// ISS stops there and says so.
bool Cluster::OwnStack(const Core& c, uint32_t addr) const {
  const uint32_t top = config_.tcdm_base + config_.tcdm_bytes;
  const uint32_t slice = kStackBytes + 8;
  const uint32_t stacks = slice * static_cast<uint32_t>(cores_.size());
  const uint32_t below = top - addr;  // Wraps (huge) when addr >= top.
  if (below == 0 || below > stacks) return true;
  return (below - 1) / slice == c.index;
}

std::string Cluster::StackMessage(const Core& c, uint32_t addr) const {
  const uint32_t top = config_.tcdm_base + config_.tcdm_bytes;
  return absl::StrFormat(
      "store at 0x%08x is in core %u's stack: core %u's stack (1 KiB) "
      "overflowed, or it wrote past a buffer",
      addr, (top - addr - 1) / (kStackBytes + 8), c.index);
}

uint64_t Cluster::Access(Core& c, uint32_t addr, uint64_t t) {
  const uint32_t off = addr - config_.tcdm_base;
  if (off >= config_.tcdm_bytes) {
    if (addr - config_.dram_base < config_.dram_bytes) ++c.n.dram_accesses;
    return t;
  }
  ++c.n.tcdm_accesses;
  const int bank = static_cast<int>((off >> 3) % config_.tcdm_banks);
  auto& busy = bank_busy_[bank];
  uint64_t at = t;
  while (std::find(busy.begin(), busy.end(), at) != busy.end()) ++at;
  busy[bank_next_[bank]] = at;
  bank_next_[bank] = static_cast<uint8_t>((bank_next_[bank] + 1) % busy.size());
  c.n.tcdm_conflicts += at - t;
  return at;
}

bool Cluster::Ecall(Hart& hart, Stop* stop) {
  uint32_t* a = hart.x + 10;
  if (a[7] == 93 || a[7] == 94) {
    stop->reason = Stop::kExit;
    stop->exit_code = static_cast<int>(a[0]);
    return false;
  }
  if (a[7] == 64) {
    const uint8_t* p = hart.mem->Read(a[1], a[2]);
    if (p != nullptr && out_.size() + a[2] <= (size_t{1} << 20)) {
      out_.append(reinterpret_cast<const char*>(p), a[2]);
    }
    return true;
  }
  a[0] = static_cast<uint32_t>(-38);  // ENOSYS
  return true;
}

namespace {

int FpLatency(const ClusterConfig& cfg, FpKind kind) {
  switch (kind) {
    case kFp64:
      return cfg.lat_fp64;
    case kFp32:
      return cfg.lat_fp32;
    case kNonComp:
      return cfg.lat_noncomp;
    case kConv:
      return cfg.lat_conv;
    case kSdotp:
      return cfg.lat_sdotp;
    case kDiv64:
      return cfg.lat_fdiv64;
    case kDiv32:
      return cfg.lat_fdiv32;
    default:
      return 1;
  }
}

}  // namespace

// Issues one instruction to the FP subsystem: no earlier than `t` (when
// the integer core hands it over) nor before its FP operands are ready;
// SSR operands are popped from their streams (a TCDM access each) and a
// write to a write stream is pushed. Executes it; false on a fault.
bool Cluster::IssueFp(Core& c, const Insn& in, uint64_t t, Stop* stop) {
  const OpClass& k = kClasses[static_cast<int>(in.op)];
  Hart& h = c.hart;
  uint64_t ft = std::max(c.fpu_cycle, t);
  auto streamed = [&](int r) { return c.ssr_on && r < 3 && c.ssr[r].active(); };
  const int srcs[4] = {k.rs1_f ? in.rs1 : -1, k.rs2_f ? in.rs2 : -1,
                       k.rs3_f ? in.rs3 : -1, k.rd_f_read ? in.rd : -1};
  bool popped[3] = {};
  for (int r : srcs) {
    if (r < 0) continue;
    if (!streamed(r)) {
      if (c.ssr_on && r < 3 && c.compute) {
        // The hardware would wait forever for an element.
        stop->reason = Stop::kFault;
        stop->message = absl::StrFormat(
            "ft%d is read with SSRs enabled but no stream job running", r);
        return false;
      }
      ft = std::max(ft, c.f_ready[r]);
      continue;
    }
    if (c.ssr[r].writes()) {
      stop->reason = Stop::kFault;
      stop->message =
          absl::StrFormat("ft%d is read while it streams writes", r);
      return false;
    }
    if (popped[r]) continue;  // One element per instruction, however used.
    popped[r] = true;
    const uint32_t addr = c.ssr[r].address();
    ft = std::max(ft, Access(c, addr, ft));
    if (!mem_.Load<uint64_t>(addr, &h.f[r])) {
      stop->reason = Stop::kFault;
      stop->message =
          absl::StrFormat("SSR %d read outside memory at 0x%08x", r, addr);
      return false;
    }
  }
  uint64_t done = ft + std::max(1, FpLatency(config_, k.fp));
  if (k.fp == kFpLoad || k.fp == kFpStore) {
    const uint32_t addr = h.x[in.rs1] + static_cast<uint32_t>(in.imm);
    if (k.fp == kFpStore && !OwnStack(c, addr)) {
      stop->reason = Stop::kFault;
      stop->message = StackMessage(c, addr);
      return false;
    }
    const uint64_t served = Access(c, addr, ft);
    const bool dram = addr - config_.tcdm_base >= config_.tcdm_bytes;
    done = served + 1 + (dram ? config_.dram_latency : config_.tcdm_latency);
    ft = std::max(ft, served);
  }
  const uint32_t pc = h.pc;
  if (!h.Execute(in, stop)) return false;
  h.pc = pc;  // The caller moves the pc (or, in a FREP replay, does not).
  h.x[0] = 0;
  for (int r = 0; r < 3; ++r)
    if (popped[r]) c.ssr[r].Advance();
  if (k.rd_f && c.ssr_on && in.rd < 3 && c.compute) {
    if (!streamed(in.rd) || !c.ssr[in.rd].writes()) {
      // With SSRs enabled the result goes to the data mover, not to the
      // register file; with no write job the hardware holds it for
      // whichever job comes next (and stalls the FPU once its FIFO is
      // full), so no later read sees it as the register's value.
      stop->reason = Stop::kFault;
      stop->message = absl::StrFormat(
          "ft%d is written with SSRs enabled but no write stream running",
          in.rd);
      return false;
    }
    const uint32_t addr = c.ssr[in.rd].address();
    Access(c, addr, done);
    if (!mem_.Store<uint64_t>(addr, h.f[in.rd])) {
      stop->reason = Stop::kFault;
      stop->message =
          absl::StrFormat("SSR %d write outside memory at 0x%08x", in.rd, addr);
      return false;
    }
    c.ssr[in.rd].Advance();
  }
  if (k.rd_f) c.f_ready[in.rd] = done;
  if (k.rd_x && in.rd != 0) c.x_ready[in.rd] = done;
  // Division and square root hold the FP pipeline (FPnew's DIVSQRT is
  // not pipelined); everything else issues every cycle.
  c.fpu_cycle = (k.fp == kDiv64 || k.fp == kDiv32) ? done : ft + 1;
  ++c.n.fpu_issues;
  if (k.flops > 0) {
    ++c.n.fpu_busy;
    (k.fp64 ? c.n.flops_fp64 : c.n.flops_fp32) += k.flops;
  }
  return true;
}

void Cluster::Fail(Core& c, const Stop& stop) {
  c.state = Core::kFaulted;
  if (error_.empty()) {
    error_ = absl::StrFormat("core %d: %s (pc 0x%08x)", c.index, stop.message,
                             c.hart.pc);
  }
}

void Cluster::Step(Core& c) {
  Hart& h = c.hart;
  Stop stop;
  const Insn* in = h.Fetch();
  if (in == nullptr) {
    stop.message = "instruction fetch outside the code";
    return Fail(c, stop);
  }
  const OpClass& k = kClasses[static_cast<int>(in->op)];
  uint64_t t = c.cycle;
  if (k.rs1_x) t = std::max(t, c.x_ready[in->rs1]);
  if (k.rs2_x) t = std::max(t, c.x_ready[in->rs2]);
  ++c.n.instructions;
  ++h.instret;
  if (k.unit == kCustom) return Custom(c, *in, t);
  if (k.unit == kCsr && (static_cast<uint32_t>(in->imm) == kCsrBarrier ||
                         static_cast<uint32_t>(in->imm) == kCsrSsr)) {
    return Csr(c, *in, t);
  }
  if (k.unit == kFp) {
    if (!IssueFp(c, *in, t, &stop)) return Fail(c, stop);
    h.pc += 4;
    c.cycle = t + 1;
    if (c.recording && k.freppable) {
      c.frep.push_back({*in, h.x[in->rs1]});
      if (static_cast<int>(c.frep.size()) == c.body) ReplayFrep(c);
    }
    return;
  }
  const uint32_t addr = h.x[in->rs1] + static_cast<uint32_t>(in->imm);
  if ((k.unit == kStore || k.unit == kAmo) && !OwnStack(c, addr)) {
    stop.message = StackMessage(c, addr);
    return Fail(c, stop);
  }
  const uint32_t pc = h.pc;
  h.cycles = t;
  const bool ok = h.Execute(*in, &stop);
  h.x[0] = 0;
  if (!ok) {
    if (stop.reason == Stop::kExit) {
      c.state = Core::kExited;
      c.exit_code = stop.exit_code;
      c.n.cycles = std::max(c.finish(), t + 1);
      return;
    }
    return Fail(c, stop);
  }
  uint64_t next = t + 1;
  switch (k.unit) {
    case kLoad:
    case kAmo: {
      const uint64_t served = Access(c, addr, t);
      const bool dram = addr - config_.tcdm_base >= config_.tcdm_bytes;
      if (in->rd != 0) {
        c.x_ready[in->rd] =
            served + 1 + (dram ? config_.dram_latency : config_.tcdm_latency);
      }
      next = served + 1;
      break;
    }
    case kStore:
      next = Access(c, addr, t) + 1;
      break;
    case kMul:
      c.x_ready[in->rd] = t + config_.lat_mul;
      break;
    case kDiv:
      c.x_ready[in->rd] = t + config_.lat_div;
      break;
    case kBranch:
    case kJump:
      if (h.pc != pc + 4) next += config_.branch_penalty;
      if (k.rd_x) c.x_ready[in->rd] = t + 1;
      break;
    default:
      if (k.rd_x) c.x_ready[in->rd] = t + 1;
      break;
  }
  c.x_ready[0] = 0;
  c.cycle = next;
}

// The cluster's CSRs: the hardware barrier (any access blocks until every
// core has made one) and the SSR enable (bit 0).
void Cluster::Csr(Core& c, const Insn& in, uint64_t t) {
  Hart& h = c.hart;
  if (static_cast<uint32_t>(in.imm) == kCsrBarrier) {
    if (in.rd != 0) h.x[in.rd] = 0;
    h.pc += 4;
    c.cycle = t + 1;
    c.state = Core::kBarrier;
    c.arrival = t;
    return TryReleaseBarrier();
  }
  if (!c.compute) {
    Stop stop;
    stop.message = "CSR 0x7C0 (ssr): this core has no SSRs";
    return Fail(c, stop);
  }
  const uint32_t old = c.ssr_on ? 1 : 0;
  const CsrUpdate update = CsrEffect(in, old, h.x[in.rs1]);
  if (update.writes) c.ssr_on = (update.value & 1) != 0;
  if (in.rd != 0) h.x[in.rd] = old;
  h.pc += 4;
  c.cycle = t + 1;
}

void Cluster::TryReleaseBarrier() {
  uint64_t last = 0;
  for (const auto& c : cores_) {
    if (c->state != Core::kBarrier) return;
    last = std::max(last, c->arrival);
  }
  for (auto& c : cores_) {
    c->state = Core::kRunning;
    c->cycle = last + config_.barrier_latency;
  }
  RetireDma(last + config_.barrier_latency);
}

// Xssr configuration, Xfrep and (for the data mover) Xdma.
void Cluster::Custom(Core& c, const Insn& in, uint64_t t) {
  Hart& h = c.hart;
  Stop stop;
  c.cycle = t + 1;
  switch (in.op) {
    case Op::kFrepO: {
      if (!c.compute || c.recording) {
        stop.message = c.compute ? "frep.o inside a FREP body (nesting is "
                                   "not modeled)"
                                 : "frep.o: this core has no sequencer";
        return Fail(c, stop);
      }
      const int body = (in.imm & 0x7ff) + 1;
      if ((in.imm & 0x800) != 0 || body > config_.frep_buffer) {
        stop.message = absl::StrFormat(
            "frep.o: a %d-instruction body%s (the sequencer holds %d)", body,
            (in.imm & 0x800) ? " with stream control" : "",
            config_.frep_buffer);
        return Fail(c, stop);
      }
      c.recording = true;
      c.body = body;
      // The sequencer's iteration counter has 16 bits (LoopIterBits in
      // snitch_sequencer.sv).
      c.iterations = (h.x[in.rs1] & 0xffffu) + 1;
      c.stagger_max = in.rm;
      c.stagger_mask = in.rd >> 1;
      c.frep.clear();
      h.pc += 4;
      return;
    }
    case Op::kScfgwi:
    case Op::kScfgw:
    case Op::kScfgri:
    case Op::kScfgr: {
      if (!c.compute) {
        stop.message = "SSR configuration: this core has no SSRs";
        return Fail(c, stop);
      }
      const bool imm_form = in.op == Op::kScfgwi || in.op == Op::kScfgri;
      const uint32_t a = imm_form ? static_cast<uint32_t>(in.imm) : h.x[in.rs2];
      const uint32_t dm = a & 31, word = (a >> 5) & 127;
      if (dm >= 3 && dm != 31) {
        stop.message = absl::StrFormat("SSR data mover %u does not exist", dm);
        return Fail(c, stop);
      }
      if (in.op == Op::kScfgwi || in.op == Op::kScfgw) {
        for (uint32_t i = 0; i < 3; ++i)
          if (dm == 31 || dm == i) c.ssr[i].WriteConfig(word, h.x[in.rs1]);
      } else if (in.rd != 0) {
        h.x[in.rd] = c.ssr[dm == 31 ? 0 : dm].ReadConfig(word);
        c.x_ready[in.rd] = t + 1;
      }
      h.pc += 4;
      return;
    }
    case Op::kFrepI:
      stop.message =
          "frep.i (removed from snitch_cluster in f1aecce7) is not modeled";
      return Fail(c, stop);
    default:
      return Dma(c, in, t);
  }
}

void Cluster::Dma(Core& c, const Insn& in, uint64_t t) {
  Hart& h = c.hart;
  Stop stop;
  if (c.compute) {
    stop.message = absl::StrFormat("%s: only the data mover core has the DMA",
                                   OpName(in.op));
    return Fail(c, stop);
  }
  const uint32_t a = h.x[in.rs1], b = h.x[in.rs2];
  switch (in.op) {
    case Op::kDmsrc:
    case Op::kDmdst:
      if (b != 0) {
        stop.message = absl::StrFormat(
            "%s: address 0x%08x%08x is beyond the cluster's 4 GiB",
            OpName(in.op), b, a);
        return Fail(c, stop);
      }
      (in.op == Op::kDmsrc ? dma_.src : dma_.dst) = a;
      break;
    case Op::kDmstr:
      dma_.src_stride = a;
      dma_.dst_stride = b;
      break;
    case Op::kDmrep:
      dma_.reps = a;
      break;
    case Op::kDmcpyi:
    case Op::kDmcpy: {
      const uint32_t config = in.op == Op::kDmcpyi ? in.rs2 : b;
      const uint32_t reps = (config & 2) ? dma_.reps : 1;
      const uint64_t total = uint64_t{a} * reps;
      if (total > (uint64_t{64} << 20)) {
        stop.message = absl::StrFormat(
            "%s: %llu bytes in one transfer (at most 64 MiB)", OpName(in.op),
            static_cast<unsigned long long>(total));
        return Fail(c, stop);
      }
      auto in_dram = [&](uint32_t addr) {
        return addr - config_.dram_base < config_.dram_bytes;
      };
      // A DRAM-to-DRAM copy crosses HBM twice: read, then written.
      const int dram_sides = in_dram(dma_.src) + in_dram(dma_.dst);
      const bool dram = dram_sides > 0;
      const uint64_t hbm_bytes = total * dram_sides;
      const uint64_t port = config_.dma_bytes_per_cycle,
                     hbm = config_.hbm_bytes_per_cycle;
      const uint64_t transfer_cycles =
          std::max((total + port - 1) / port, (hbm_bytes + hbm - 1) / hbm);
      const uint64_t start = std::max(t, dma_.free);
      const uint64_t done =
          total == 0
              ? start
              : start + (dram ? config_.hbm_latency : 0) + transfer_cycles;
      dma_.free = done;
      const uint32_t id = dma_.next_id++;
      dma_.queue.push_back({id, dma_.src, dma_.dst, a, dma_.src_stride,
                            dma_.dst_stride, reps, done});
      ++dma_.counters.transfers;
      dma_.counters.bytes += total;
      dma_.counters.dram_bytes += hbm_bytes;
      dma_.counters.busy_cycles += done - start;
      if (in.rd != 0) {
        h.x[in.rd] = id;
        c.x_ready[in.rd] = t + 1;
      }
      break;
    }
    default: {  // dmstat, dmstati
      const uint32_t status = in.op == Op::kDmstati ? in.rs2 : b;
      if (!RetireDma(t)) return;
      const uint32_t v = (status & 3) == 0   ? dma_.completed_id
                         : (status & 3) == 1 ? dma_.next_id
                         : (status & 3) == 2 ? (dma_.queue.empty() ? 0 : 1)
                                             : 0;
      if (in.rd != 0) {
        h.x[in.rd] = v;
        c.x_ready[in.rd] = t + 1;
      }
      break;
    }
  }
  h.pc += 4;
}

bool Cluster::RetireDma(uint64_t now) {
  while (!dma_.queue.empty() && dma_.queue.front().done <= now) {
    const Transfer& x = dma_.queue.front();
    for (uint32_t r = 0; x.size != 0 && r < x.reps; ++r) {
      const uint32_t src = x.src + r * x.src_stride;
      const uint32_t dst = x.dst + r * x.dst_stride;
      const uint8_t* from = mem_.Read(src, x.size);
      uint8_t* to = mem_.At(dst, x.size);
      if (from == nullptr || to == nullptr) {
        if (error_.empty()) {
          error_ = absl::StrFormat(
              "DMA transfer %u: row %u %s outside memory at 0x%08x", x.id, r,
              from == nullptr ? "reads" : "writes",
              from == nullptr ? src : dst);
        }
        return false;
      }
      std::memmove(to, from, x.size);
    }
    dma_.completed_id = x.id;
    dma_.queue.pop_front();
  }
  return true;
}

// The FREP body has run once (issued by the core); the sequencer now
// issues it `iterations - 1` more times on the FP pipeline alone, the
// stagger counter added to the chosen register fields, while the integer
// core goes on. Loads and stores reuse the integer operand they were
// first issued with, as the sequencer's buffer holds it.
void Cluster::ReplayFrep(Core& c) {
  c.recording = false;
  Hart& h = c.hart;
  Stop stop;
  for (uint32_t it = 1; it < c.iterations; ++it) {
    const uint8_t s = static_cast<uint8_t>(it % (c.stagger_max + 1));
    for (const Core::Recorded& r : c.frep) {
      Insn in = r.in;
      if (c.stagger_mask & 1) in.rd = (in.rd + s) & 31;
      if (c.stagger_mask & 2) in.rs1 = (in.rs1 + s) & 31;
      if (c.stagger_mask & 4) in.rs2 = (in.rs2 + s) & 31;
      if (c.stagger_mask & 8) in.rs3 = (in.rs3 + s) & 31;
      const uint32_t saved = h.x[r.in.rs1];
      h.x[r.in.rs1] = r.x;
      const bool ok = IssueFp(c, in, 0, &stop);
      h.x[r.in.rs1] = saved;
      h.x[0] = 0;
      if (!ok) return Fail(c, stop);
      ++c.n.frep_repeats;
    }
  }
}

ClusterRun Cluster::Run(uint64_t max_cycles) {
  fenv_t host;
  fegetenv(&host);
  feclearexcept(FE_ALL_EXCEPT);  // Clear between quanta (Hart::EndQuantum).
  while (error_.empty()) {
    Core* pick = nullptr;
    uint64_t second = UINT64_MAX;
    for (auto& c : cores_) {
      if (c->state != Core::kRunning) continue;
      if (pick == nullptr || c->cycle < pick->cycle) {
        if (pick != nullptr) second = std::min(second, pick->cycle);
        pick = c.get();
      } else {
        second = std::min(second, c->cycle);
      }
    }
    if (pick == nullptr) break;
    if (pick->cycle > max_cycles) {
      error_ = absl::StrFormat("still running after %llu cycles",
                               static_cast<unsigned long long>(max_cycles));
      break;
    }
    if (!RetireDma(pick->cycle)) break;
    const uint64_t limit =
        std::min(second, pick->cycle) + static_cast<uint64_t>(config_.quantum);
    while (pick->state == Core::kRunning && pick->cycle <= limit &&
           error_.empty()) {
      Step(*pick);
    }
    pick->hart.EndQuantum();
  }
  fesetenv(&host);
  ClusterRun run;
  // Transfers still in flight when the last core exited end the run too.
  for (const Transfer& x : dma_.queue)
    run.cycles = std::max(run.cycles, x.done);
  RetireDma(UINT64_MAX);
  run.dma = dma_.counters;
  for (const auto& c : cores_) {
    if (error_.empty() && c->state == Core::kBarrier) {
      error_ = absl::StrFormat(
          "core %d waits at the barrier for cores that exited", c->index);
    }
    CoreCounters n = c->n;
    if (c->state != Core::kExited) n.cycles = c->finish();
    run.cycles = std::max(run.cycles, n.cycles);
    run.cores.push_back(n);
    run.exit_codes.push_back(c->exit_code);
  }
  run.ok = error_.empty();
  run.error = error_;
  run.out = out_;
  return run;
}

}  // namespace joule::iss
