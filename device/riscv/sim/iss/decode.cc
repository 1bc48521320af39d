#include "device/riscv/sim/iss/decode.h"

namespace joule::iss {
namespace {

uint32_t Bits(uint32_t raw, int hi, int lo) {
  return (raw >> lo) & ((1u << (hi - lo + 1)) - 1);
}
int32_t ImmI(uint32_t raw) { return static_cast<int32_t>(raw) >> 20; }
int32_t ImmS(uint32_t raw) {
  return static_cast<int32_t>((static_cast<int32_t>(raw) >> 25) * 32 +
                              Bits(raw, 11, 7));
}
int32_t ImmB(uint32_t raw) {
  const uint32_t v = Bits(raw, 31, 31) << 12 | Bits(raw, 7, 7) << 11 |
                     Bits(raw, 30, 25) << 5 | Bits(raw, 11, 8) << 1;
  return static_cast<int32_t>(v << 19) >> 19;
}
int32_t ImmJ(uint32_t raw) {
  const uint32_t v = Bits(raw, 31, 31) << 20 | Bits(raw, 19, 12) << 12 |
                     Bits(raw, 20, 20) << 11 | Bits(raw, 30, 21) << 1;
  return static_cast<int32_t>(v << 11) >> 11;
}

Op Branch(uint32_t f3) {
  constexpr Op kOps[8] = {Op::kBeq, Op::kBne, Op::kIllegal, Op::kIllegal,
                          Op::kBlt, Op::kBge, Op::kBltu,    Op::kBgeu};
  return kOps[f3];
}
Op Load(uint32_t f3) {
  constexpr Op kOps[8] = {Op::kLb,  Op::kLh,  Op::kLw,      Op::kIllegal,
                          Op::kLbu, Op::kLhu, Op::kIllegal, Op::kIllegal};
  return kOps[f3];
}
Op Store(uint32_t f3) {
  return f3 == 0   ? Op::kSb
         : f3 == 1 ? Op::kSh
         : f3 == 2 ? Op::kSw
                   : Op::kIllegal;
}

Op OpImm(uint32_t raw, uint32_t f3, Insn* in) {
  const uint32_t f7 = Bits(raw, 31, 25);
  switch (f3) {
    case 0:
      return Op::kAddi;
    case 2:
      return Op::kSlti;
    case 3:
      return Op::kSltiu;
    case 4:
      return Op::kXori;
    case 6:
      return Op::kOri;
    case 7:
      return Op::kAndi;
    case 1:
      in->imm = static_cast<int32_t>(Bits(raw, 24, 20));
      return f7 == 0 ? Op::kSlli : Op::kIllegal;
    default:  // 5
      in->imm = static_cast<int32_t>(Bits(raw, 24, 20));
      return f7 == 0 ? Op::kSrli : f7 == 0x20 ? Op::kSrai : Op::kIllegal;
  }
}

Op OpReg(uint32_t raw, uint32_t f3) {
  const uint32_t f7 = Bits(raw, 31, 25);
  if (f7 == 0) {
    constexpr Op kOps[8] = {Op::kAdd, Op::kSll, Op::kSlt, Op::kSltu,
                            Op::kXor, Op::kSrl, Op::kOr,  Op::kAnd};
    return kOps[f3];
  }
  if (f7 == 1) {
    constexpr Op kOps[8] = {Op::kMul, Op::kMulh, Op::kMulhsu, Op::kMulhu,
                            Op::kDiv, Op::kDivu, Op::kRem,    Op::kRemu};
    return kOps[f3];
  }
  if (f7 == 0x20) return f3 == 0 ? Op::kSub : f3 == 5 ? Op::kSra : Op::kIllegal;
  return Op::kIllegal;
}

Op System(uint32_t raw, uint32_t f3, Insn* in) {
  in->imm = static_cast<int32_t>(Bits(raw, 31, 20));  // The CSR number.
  switch (f3) {
    case 0:
      if (Bits(raw, 19, 7) != 0) return Op::kIllegal;
      return in->imm == 0   ? Op::kEcall
             : in->imm == 1 ? Op::kEbreak
                            : Op::kIllegal;
    case 1:
      return Op::kCsrrw;
    case 2:
      return Op::kCsrrs;
    case 3:
      return Op::kCsrrc;
    case 5:
      return Op::kCsrrwi;
    case 6:
      return Op::kCsrrsi;
    case 7:
      return Op::kCsrrci;
    default:
      return Op::kIllegal;
  }
}

Op Amo(uint32_t raw, uint32_t f3) {
  if (f3 != 2) return Op::kIllegal;
  switch (Bits(raw, 31, 27)) {
    case 0x02:
      return Bits(raw, 24, 20) == 0 ? Op::kLrW : Op::kIllegal;
    case 0x03:
      return Op::kScW;
    case 0x01:
      return Op::kAmoswapW;
    case 0x00:
      return Op::kAmoaddW;
    case 0x04:
      return Op::kAmoxorW;
    case 0x0C:
      return Op::kAmoandW;
    case 0x08:
      return Op::kAmoorW;
    case 0x10:
      return Op::kAmominW;
    case 0x14:
      return Op::kAmomaxW;
    case 0x18:
      return Op::kAmominuW;
    case 0x1C:
      return Op::kAmomaxuW;
    default:
      return Op::kIllegal;
  }
}

Op Fused(uint32_t opcode, uint32_t fmt) {
  if (fmt > 1) return Op::kIllegal;
  const bool d = fmt == 1;
  switch (opcode) {
    case 0x43:
      return d ? Op::kFmaddD : Op::kFmaddS;
    case 0x47:
      return d ? Op::kFmsubD : Op::kFmsubS;
    case 0x4B:
      return d ? Op::kFnmsubD : Op::kFnmsubS;
    default:
      return d ? Op::kFnmaddD : Op::kFnmaddS;  // 0x4F
  }
}

Op OpFp(uint32_t raw, uint32_t f3) {
  const uint32_t f7 = Bits(raw, 31, 25), rs2 = Bits(raw, 24, 20);
  switch (f7) {
    case 0x00:
      return Op::kFaddS;
    case 0x04:
      return Op::kFsubS;
    case 0x08:
      return Op::kFmulS;
    case 0x0C:
      return Op::kFdivS;
    case 0x01:
      return Op::kFaddD;
    case 0x05:
      return Op::kFsubD;
    case 0x09:
      return Op::kFmulD;
    case 0x0D:
      return Op::kFdivD;
    case 0x2C:
      return rs2 == 0 ? Op::kFsqrtS : Op::kIllegal;
    case 0x2D:
      return rs2 == 0 ? Op::kFsqrtD : Op::kIllegal;
    case 0x10:
      return f3 == 0   ? Op::kFsgnjS
             : f3 == 1 ? Op::kFsgnjnS
             : f3 == 2 ? Op::kFsgnjxS
                       : Op::kIllegal;
    case 0x11:
      return f3 == 0   ? Op::kFsgnjD
             : f3 == 1 ? Op::kFsgnjnD
             : f3 == 2 ? Op::kFsgnjxD
                       : Op::kIllegal;
    case 0x14:
      return f3 == 0 ? Op::kFminS : f3 == 1 ? Op::kFmaxS : Op::kIllegal;
    case 0x15:
      return f3 == 0 ? Op::kFminD : f3 == 1 ? Op::kFmaxD : Op::kIllegal;
    case 0x20:
      return rs2 == 1 ? Op::kFcvtSD : Op::kIllegal;
    case 0x21:
      return rs2 == 0 ? Op::kFcvtDS : Op::kIllegal;
    case 0x60:
      return rs2 == 0 ? Op::kFcvtWS : rs2 == 1 ? Op::kFcvtWuS : Op::kIllegal;
    case 0x61:
      return rs2 == 0 ? Op::kFcvtWD : rs2 == 1 ? Op::kFcvtWuD : Op::kIllegal;
    case 0x68:
      return rs2 == 0 ? Op::kFcvtSW : rs2 == 1 ? Op::kFcvtSWu : Op::kIllegal;
    case 0x69:
      return rs2 == 0 ? Op::kFcvtDW : rs2 == 1 ? Op::kFcvtDWu : Op::kIllegal;
    case 0x70:
      if (rs2 != 0) return Op::kIllegal;
      return f3 == 0 ? Op::kFmvXW : f3 == 1 ? Op::kFclassS : Op::kIllegal;
    case 0x71:
      return rs2 == 0 && f3 == 1 ? Op::kFclassD : Op::kIllegal;
    case 0x78:
      return rs2 == 0 && f3 == 0 ? Op::kFmvWX : Op::kIllegal;
    case 0x50:
      return f3 == 2   ? Op::kFeqS
             : f3 == 1 ? Op::kFltS
             : f3 == 0 ? Op::kFleS
                       : Op::kIllegal;
    case 0x51:
      return f3 == 2   ? Op::kFeqD
             : f3 == 1 ? Op::kFltD
             : f3 == 0 ? Op::kFleD
                       : Op::kIllegal;
    default:
      return Op::kIllegal;
  }
}

// custom-1 (0x2B): SSR configuration (funct3 1, 2) and the DMA (funct3 0).
Op Custom1(uint32_t raw, uint32_t f3, Insn* in) {
  const uint32_t f7 = Bits(raw, 31, 25), rs1 = Bits(raw, 19, 15),
                 rd = Bits(raw, 11, 7);
  if (f3 == 1) {
    in->imm = static_cast<int32_t>(Bits(raw, 31, 20));
    if (rs1 == 0) return Op::kScfgri;
    return rs1 == 1 && f7 == 0 ? Op::kScfgr : Op::kIllegal;
  }
  if (f3 == 2) {
    in->imm = static_cast<int32_t>(Bits(raw, 31, 20));
    if (rd == 0) return Op::kScfgwi;
    return rd == 1 && f7 == 0 ? Op::kScfgw : Op::kIllegal;
  }
  if (f3 != 0) return Op::kIllegal;
  constexpr Op kDma[8] = {Op::kDmsrc,   Op::kDmdst,  Op::kDmcpyi, Op::kDmcpy,
                          Op::kDmstati, Op::kDmstat, Op::kDmstr,  Op::kDmrep};
  return f7 < 8 ? kDma[f7] : Op::kIllegal;
}

// The packed-single Xfvec instructions share OP (0x33) with funct7 10xxxxx;
// funct3 4 is the .R form (rs2's lane 0 replicated), except for vfcpka.
Op Xfvec(uint32_t raw, uint32_t f3) {
  if (f3 != 0 && f3 != 4) return Op::kIllegal;
  switch (Bits(raw, 31, 25)) {
    case 0x41:
      return Op::kVfaddS;
    case 0x43:
      return Op::kVfmulS;
    case 0x48:
      return Op::kVfmacS;
    case 0x47:
      return f3 == 0 && Bits(raw, 24, 20) == 0x1C ? Op::kVfsumS : Op::kIllegal;
    case 0x58:
      return f3 == 0 ? Op::kVfcpkaSS : Op::kIllegal;
    default:
      return Op::kIllegal;
  }
}

}  // namespace

Insn Decode(uint32_t raw) {
  Insn in;
  in.raw = raw;
  in.rd = static_cast<uint8_t>(Bits(raw, 11, 7));
  in.rs1 = static_cast<uint8_t>(Bits(raw, 19, 15));
  in.rs2 = static_cast<uint8_t>(Bits(raw, 24, 20));
  in.rs3 = static_cast<uint8_t>(Bits(raw, 31, 27));
  in.rm = static_cast<uint8_t>(Bits(raw, 14, 12));
  const uint32_t f3 = in.rm;
  if ((raw & 3) != 3) return in;  // Compressed: not in RV32IMAFD.
  switch (Bits(raw, 6, 0)) {
    case 0x37:
      in.op = Op::kLui;
      in.imm = static_cast<int32_t>(raw & 0xfffff000u);
      break;
    case 0x17:
      in.op = Op::kAuipc;
      in.imm = static_cast<int32_t>(raw & 0xfffff000u);
      break;
    case 0x6F:
      in.op = Op::kJal;
      in.imm = ImmJ(raw);
      break;
    case 0x67:
      in.op = f3 == 0 ? Op::kJalr : Op::kIllegal;
      in.imm = ImmI(raw);
      break;
    case 0x63:
      in.op = Branch(f3);
      in.imm = ImmB(raw);
      break;
    case 0x03:
      in.op = Load(f3);
      in.imm = ImmI(raw);
      break;
    case 0x23:
      in.op = Store(f3);
      in.imm = ImmS(raw);
      break;
    case 0x13:
      in.imm = ImmI(raw);
      in.op = OpImm(raw, f3, &in);
      break;
    case 0x33:
      in.op = Bits(raw, 31, 30) == 2 ? Xfvec(raw, f3) : OpReg(raw, f3);
      break;
    case 0x0B:
      in.op = Bits(raw, 7, 7) ? Op::kFrepO : Op::kFrepI;
      in.imm = static_cast<int32_t>(Bits(raw, 31, 20));
      break;
    case 0x2B:
      in.op = Custom1(raw, f3, &in);
      break;
    case 0x0F:
      in.op = f3 <= 1 ? Op::kFence : Op::kIllegal;
      break;
    case 0x73:
      in.op = System(raw, f3, &in);
      break;
    case 0x2F:
      in.op = Amo(raw, f3);
      break;
    case 0x07:
      in.op = f3 == 2 ? Op::kFlw : f3 == 3 ? Op::kFld : Op::kIllegal;
      in.imm = ImmI(raw);
      break;
    case 0x27:
      in.op = f3 == 2 ? Op::kFsw : f3 == 3 ? Op::kFsd : Op::kIllegal;
      in.imm = ImmS(raw);
      break;
    case 0x43:
    case 0x47:
    case 0x4B:
    case 0x4F:
      in.op = Fused(Bits(raw, 6, 0), Bits(raw, 26, 25));
      break;
    case 0x53:
      in.op = OpFp(raw, f3);
      break;
    default:
      break;
  }
  return in;
}

const char* OpName(Op op) {
  static const char* const kNames[] = {
      "illegal",   "lui",        "auipc",     "jal",       "jalr",
      "beq",       "bne",        "blt",       "bge",       "bltu",
      "bgeu",      "lb",         "lh",        "lw",        "lbu",
      "lhu",       "sb",         "sh",        "sw",        "addi",
      "slti",      "sltiu",      "xori",      "ori",       "andi",
      "slli",      "srli",       "srai",      "add",       "sub",
      "sll",       "slt",        "sltu",      "xor",       "srl",
      "sra",       "or",         "and",       "fence",     "ecall",
      "ebreak",    "csrrw",      "csrrs",     "csrrc",     "csrrwi",
      "csrrsi",    "csrrci",     "mul",       "mulh",      "mulhsu",
      "mulhu",     "div",        "divu",      "rem",       "remu",
      "lr.w",      "sc.w",       "amoswap.w", "amoadd.w",  "amoxor.w",
      "amoand.w",  "amoor.w",    "amomin.w",  "amomax.w",  "amominu.w",
      "amomaxu.w", "flw",        "fsw",       "fmadd.s",   "fmsub.s",
      "fnmsub.s",  "fnmadd.s",   "fadd.s",    "fsub.s",    "fmul.s",
      "fdiv.s",    "fsqrt.s",    "fsgnj.s",   "fsgnjn.s",  "fsgnjx.s",
      "fmin.s",    "fmax.s",     "fcvt.w.s",  "fcvt.wu.s", "fmv.x.w",
      "feq.s",     "flt.s",      "fle.s",     "fclass.s",  "fcvt.s.w",
      "fcvt.s.wu", "fmv.w.x",    "fld",       "fsd",       "fmadd.d",
      "fmsub.d",   "fnmsub.d",   "fnmadd.d",  "fadd.d",    "fsub.d",
      "fmul.d",    "fdiv.d",     "fsqrt.d",   "fsgnj.d",   "fsgnjn.d",
      "fsgnjx.d",  "fmin.d",     "fmax.d",    "fcvt.s.d",  "fcvt.d.s",
      "feq.d",     "flt.d",      "fle.d",     "fclass.d",  "fcvt.w.d",
      "fcvt.wu.d", "fcvt.d.w",   "fcvt.d.wu", "frep.o",    "frep.i",
      "scfgri",    "scfgwi",     "scfgr",     "scfgw",     "dmsrc",
      "dmdst",     "dmcpyi",     "dmcpy",     "dmstati",   "dmstat",
      "dmstr",     "dmrep",      "vfadd.s",   "vfmul.s",   "vfmac.s",
      "vfsum.s",   "vfcpka.s.s",
  };
  static_assert(sizeof(kNames) / sizeof(kNames[0]) ==
                static_cast<int>(Op::kCount));
  const int i = static_cast<int>(op);
  return i < static_cast<int>(Op::kCount) ? kNames[i] : "?";
}

}  // namespace joule::iss
