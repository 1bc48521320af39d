#ifndef JOULE_DEVICE_RISCV_SIM_ISS_DECODE_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_DECODE_H_

#include <cstdint>

namespace joule::iss {

// Every instruction the ISS executes, RV32IMAFD plus Zicsr. Decoded once
// per code word (predecoding) so the interpreter dispatches on a dense
// enum instead of re-extracting fields on every execution.
enum class Op : uint8_t {
  kIllegal,
  // RV32I
  kLui,
  kAuipc,
  kJal,
  kJalr,
  kBeq,
  kBne,
  kBlt,
  kBge,
  kBltu,
  kBgeu,
  kLb,
  kLh,
  kLw,
  kLbu,
  kLhu,
  kSb,
  kSh,
  kSw,
  kAddi,
  kSlti,
  kSltiu,
  kXori,
  kOri,
  kAndi,
  kSlli,
  kSrli,
  kSrai,
  kAdd,
  kSub,
  kSll,
  kSlt,
  kSltu,
  kXor,
  kSrl,
  kSra,
  kOr,
  kAnd,
  kFence,
  kEcall,
  kEbreak,
  // Zicsr
  kCsrrw,
  kCsrrs,
  kCsrrc,
  kCsrrwi,
  kCsrrsi,
  kCsrrci,
  // M
  kMul,
  kMulh,
  kMulhsu,
  kMulhu,
  kDiv,
  kDivu,
  kRem,
  kRemu,
  // A
  kLrW,
  kScW,
  kAmoswapW,
  kAmoaddW,
  kAmoxorW,
  kAmoandW,
  kAmoorW,
  kAmominW,
  kAmomaxW,
  kAmominuW,
  kAmomaxuW,
  // F
  kFlw,
  kFsw,
  kFmaddS,
  kFmsubS,
  kFnmsubS,
  kFnmaddS,
  kFaddS,
  kFsubS,
  kFmulS,
  kFdivS,
  kFsqrtS,
  kFsgnjS,
  kFsgnjnS,
  kFsgnjxS,
  kFminS,
  kFmaxS,
  kFcvtWS,
  kFcvtWuS,
  kFmvXW,
  kFeqS,
  kFltS,
  kFleS,
  kFclassS,
  kFcvtSW,
  kFcvtSWu,
  kFmvWX,
  // D
  kFld,
  kFsd,
  kFmaddD,
  kFmsubD,
  kFnmsubD,
  kFnmaddD,
  kFaddD,
  kFsubD,
  kFmulD,
  kFdivD,
  kFsqrtD,
  kFsgnjD,
  kFsgnjnD,
  kFsgnjxD,
  kFminD,
  kFmaxD,
  kFcvtSD,
  kFcvtDS,
  kFeqD,
  kFltD,
  kFleD,
  kFclassD,
  kFcvtWD,
  kFcvtWuD,
  kFcvtDW,
  kFcvtDWu,
  // Snitch's extensions (docs/riscv_iss_sources.md, sections 1-4): Xfrep,
  // Xssr, Xdma and the packed-single part of Xfvec. Only a cluster's
  // harts execute them; elsewhere they are illegal instructions.
  kFrepO,
  kFrepI,
  kScfgri,
  kScfgwi,
  kScfgr,
  kScfgw,
  kDmsrc,
  kDmdst,
  kDmcpyi,
  kDmcpy,
  kDmstati,
  kDmstat,
  kDmstr,
  kDmrep,
  kVfaddS,
  kVfmulS,
  kVfmacS,
  kVfsumS,
  kVfcpkaSS,
  kCount,
};

// One decoded instruction. imm is sign-extended as the format defines it
// (for CSR instructions: the CSR number; for shifts: the shift amount).
struct Insn {
  Op op = Op::kIllegal;
  uint8_t rd = 0, rs1 = 0, rs2 = 0, rs3 = 0;
  uint8_t rm = 0;  // FP rounding mode field (7: dynamic, from frm).
  int32_t imm = 0;
  uint32_t raw = 0;
};

// Decodes one 32-bit instruction word (the base encoding of the RISC-V
// unprivileged spec, 20191213; no C extension; and Snitch's custom
// encodings above). Unknown or reserved encodings decode to Op::kIllegal.
// For frep: imm = max_inst (body length - 1), rs1 = the register holding
// the iterations - 1, rm = stagger_max, rd = {stagger_mask, is_outer}.
// For scfgri/scfgwi: imm = {register word, data mover} (12 bits).
Insn Decode(uint32_t raw);

// A Zicsr instruction's effect: the value it writes (csrrw: the source;
// csrrs: old | source; csrrc: old & ~source, the immediate forms alike),
// and whether it writes at all (csrrs/csrrc with a zero source only read).
struct CsrUpdate {
  bool writes;
  uint32_t value;
};
inline CsrUpdate CsrEffect(const Insn& in, uint32_t old, uint32_t rs1_value) {
  const bool imm = in.op >= Op::kCsrrwi && in.op <= Op::kCsrrci;
  const uint32_t src = imm ? in.rs1 : rs1_value;
  const Op kind = imm ? static_cast<Op>(static_cast<int>(in.op) - 3) : in.op;
  if (kind == Op::kCsrrw) return {true, src};
  return {in.rs1 != 0, kind == Op::kCsrrs ? old | src : old & ~src};
}

// The mnemonic, for traces and error messages.
const char* OpName(Op op);

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_DECODE_H_
