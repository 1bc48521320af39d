#ifndef JOULE_DEVICE_RISCV_SIM_ISS_HART_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_HART_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device/riscv/sim/iss/decode.h"
#include "device/riscv/sim/iss/memory.h"

namespace joule::iss {

class Hart;

// Why Hart::Run returned.
struct Stop {
  enum Reason { kBudget, kExit, kBreak, kFault };
  Reason reason = kBudget;
  int exit_code = 0;    // kExit: the program's status.
  uint32_t pc = 0;      // The instruction that stopped it.
  std::string message;  // kFault: what went wrong, with the pc.
};

// What an ecall reaches: a user-mode environment (tests' Linux-style
// write/exit) or a cluster runtime. Returns false to stop the hart with
// *stop filled in.
class Environment {
 public:
  virtual ~Environment() = default;
  virtual bool Ecall(Hart& hart, Stop* stop) = 0;
};

// One RV32IMAFD hart (Zicsr; machine-mode CSRs only as far as mhartid and
// the counters). Code is predecoded once from the executable segments:
// stores into code are not seen by later fetches (no self-modifying code).
// Floating point runs on the host's FPU under the instruction's rounding
// mode, with the host's sticky exception flags as fflags and results'
// NaNs made canonical, as the spec requires; round-to-nearest-max-magnitude
// (RMM) is implemented for conversions to integers only, and elsewhere is
// an illegal-instruction fault that says so.
class Hart {
 public:
  Hart(Memory* mem, Environment* env, uint32_t hartid);

  // Predecodes [base, base + words.size() * 4) as the hart's code.
  void SetCode(uint32_t base, const std::vector<uint32_t>& words);
  // Code predecoded once and shared by a cluster's harts.
  void SetCode(uint32_t base, std::shared_ptr<const std::vector<Insn>> code);
  // Runs at most `budget` instructions.
  Stop Run(uint64_t budget);

  // For a cluster that interleaves its harts on one host thread (the host
  // FPU's rounding mode and flags are shared): Fetch the instruction at
  // pc (nullptr if outside the code) and Execute it (false: stopped, *stop
  // says why); EndQuantum before another hart runs takes this one's FP
  // flags (the host's are kept clear between quanta).
  const Insn* Fetch() const {
    const uint32_t off = pc - code_base_;
    if ((off & 3) != 0 || (off >> 2) >= code_size_) return nullptr;
    return code_data_ + (off >> 2);
  }
  bool Execute(const Insn& in, Stop* stop) { return Step(in, stop); }
  void EndQuantum() {
    if (fp_used_) HarvestFlags();
    fp_used_ = false;
  }

  uint32_t x[32] = {};
  uint64_t f[32] = {};  // Singles NaN-boxed in the upper 32 bits.
  uint32_t pc = 0;
  uint32_t frm = 0;     // Dynamic rounding mode (fcsr[7:5]).
  uint32_t fflags = 0;  // Accrued exceptions (fcsr[4:0]), as last harvested.
  uint64_t instret = 0;
  uint64_t cycles = 0;  // One per instruction until a timing model is set.
  const uint32_t hartid;
  Memory* const mem;
  // Snitch's packed-single instructions (vfadd.s, vfmul.s, vfmac.s,
  // vfsum.s, vfcpka.s.s): a cluster's compute cores have them; elsewhere
  // they are illegal.
  bool xfvec = false;

 private:
  bool Step(const Insn& in, Stop* stop);
  bool ReadCsr(uint32_t csr, uint32_t* v);
  bool WriteCsr(uint32_t csr, uint32_t v);
  bool Amo(const Insn& in, Stop* stop);
  bool ExecFp(const Insn& in, Stop* stop);
  bool ExecVector(const Insn& in, Stop* stop);
  // The rounding mode an FP instruction uses (its field, or frm), set on
  // the host; false if reserved (or RMM, which the host cannot do).
  bool SetRounding(uint32_t rm);
  void HarvestFlags();

  Environment* env_;
  uint32_t code_base_ = 0;
  std::shared_ptr<const std::vector<Insn>> code_;
  const Insn* code_data_ = nullptr;
  size_t code_size_ = 0;
  bool fp_used_ = false;
  uint32_t reservation_ = 0;
  bool reserved_ = false;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_HART_H_
