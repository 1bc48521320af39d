// The ISS's base ISA against qemu-riscv32 (Debian's qemu-user): each test
// program (tests/riscv_isa) prints a signature of every result it
// computed, with the FP flags each raised; both must print the same bytes
// and exit 0. The signatures are large (up to ~1 MB of results for the FP
// programs), so a wrong corner case anywhere shows.
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "device/riscv/sim/iss/decode.h"
#include "device/riscv/sim/iss/elf.h"
#include "device/riscv/sim/iss/user_env.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class IsaTest : public ::testing::TestWithParam<std::string> {};

TEST_P(IsaTest, SignatureMatchesQemu) {
  const std::string path =
      testing::Runfile("tests/riscv_isa/" + GetParam() + ".elf");
  const std::vector<uint8_t> elf = ReadFile(path);
  ASSERT_FALSE(elf.empty()) << path;
  auto run = iss::RunUserProgram(elf, uint64_t{1} << 32);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->stop.reason, iss::Stop::kExit) << run->stop.message;
  EXPECT_EQ(run->stop.exit_code, 0) << "the signature overflowed";
  testing::RunResult qemu =
      testing::Run({"/usr/bin/qemu-riscv32", path}, testing::TempDir());
  ASSERT_EQ(qemu.code, 0) << qemu.err
                          << " (qemu-riscv32 comes with tools/setup.sh)";
  ASSERT_GE(run->out.size(), 4u);
  // The first word is the count of result words that follow.
  uint32_t words = 0;
  std::memcpy(&words, run->out.data(), 4);
  EXPECT_EQ(run->out.size(), 4 + size_t{words} * 4);
  EXPECT_GT(words, 20u);
  ASSERT_EQ(run->out.size(), qemu.out.size());
  for (size_t i = 0; i < run->out.size(); i += 4) {
    if (run->out.compare(i, 4, qemu.out, i, 4) != 0) {
      uint32_t a = 0, b = 0;
      std::memcpy(&a, run->out.data() + i, 4);
      std::memcpy(&b, qemu.out.data() + i, 4);
      FAIL() << GetParam() << ": result word " << i / 4 - 1 << " is 0x"
             << std::hex << a << " on the ISS, 0x" << b << " on qemu";
    }
  }
  std::printf("%s: %u result words identical, %llu instructions\n",
              GetParam().c_str(), words,
              static_cast<unsigned long long>(run->instructions));
}

INSTANTIATE_TEST_SUITE_P(Programs, IsaTest,
                         ::testing::Values("alu", "atomic", "branch", "fp_d",
                                           "fp_s", "mem", "programs"));

// What the hart reports when a program goes wrong.
TEST(IssTest, IllegalInstructionStopsWithItsWordAndPc) {
  auto img =
      iss::ParseElf(ReadFile(testing::Runfile("tests/riscv_isa/alu.elf")));
  ASSERT_TRUE(img.ok()) << img.status();
  iss::Memory mem;
  ASSERT_TRUE(mem.Map(0x1000, 0x1000, "code").ok());
  iss::UserEnv env;
  iss::Hart hart(&mem, &env, 0);
  // addi x1, x0, 5; then an all-ones word (no such instruction).
  hart.SetCode(0x1000, {0x00500093u, 0xffffffffu});
  hart.pc = 0x1000;
  iss::Stop stop = hart.Run(10);
  EXPECT_EQ(stop.reason, iss::Stop::kFault);
  EXPECT_EQ(stop.pc, 0x1004u);
  EXPECT_NE(stop.message.find("illegal instruction 0xffffffff"),
            std::string::npos)
      << stop.message;
  EXPECT_EQ(hart.x[1], 5u);
  EXPECT_EQ(hart.instret, 1u);
}

TEST(IssTest, AccessOutsideMemoryIsAFaultNamingTheAddress) {
  iss::Memory mem;
  ASSERT_TRUE(mem.Map(0x1000, 0x1000, "code").ok());
  iss::UserEnv env;
  iss::Hart hart(&mem, &env, 0);
  hart.SetCode(0x1000, {0x0000a103u});  // lw x2, 0(x1)
  hart.pc = 0x1000;
  hart.x[1] = 0x1ffe;  // Straddles the region's end.
  iss::Stop stop = hart.Run(10);
  EXPECT_EQ(stop.reason, iss::Stop::kFault);
  EXPECT_NE(stop.message.find("load access fault at 0x00001ffe"),
            std::string::npos)
      << stop.message;
  EXPECT_FALSE(mem.Map(0x1800, 0x1000, "overlap").ok());
  EXPECT_FALSE(mem.Map(0xfffff000, 0x2000, "wraps").ok());
}

TEST(IssTest, RmmArithmeticIsRefusedByName) {
  iss::Memory mem;
  ASSERT_TRUE(mem.Map(0x1000, 0x1000, "code").ok());
  iss::UserEnv env;
  iss::Hart hart(&mem, &env, 0);
  hart.SetCode(0x1000, {0x00004053u});  // fadd.s f0, f0, f0, rmm
  hart.pc = 0x1000;
  iss::Stop stop = hart.Run(10);
  EXPECT_EQ(stop.reason, iss::Stop::kFault);
  EXPECT_NE(stop.message.find("RMM"), std::string::npos) << stop.message;
}

TEST(IssTest, BudgetStopsAnEndlessLoop) {
  iss::Memory mem;
  ASSERT_TRUE(mem.Map(0x1000, 0x1000, "code").ok());
  iss::UserEnv env;
  iss::Hart hart(&mem, &env, 0);
  hart.SetCode(0x1000, {0x0000006fu});  // jal x0, 0
  hart.pc = 0x1000;
  iss::Stop stop = hart.Run(1000);
  EXPECT_EQ(stop.reason, iss::Stop::kBudget);
  EXPECT_EQ(hart.instret, 1000u);
}

TEST(ElfTest, HostileHeadersAreRefusedWithTheReason) {
  std::vector<uint8_t> elf =
      ReadFile(testing::Runfile("tests/riscv_isa/mem.elf"));
  ASSERT_TRUE(iss::ParseElf(elf).ok());
  auto set32 = [](std::vector<uint8_t> b, size_t at, uint32_t v) {
    std::memcpy(b.data() + at, &v, 4);
    return b;
  };
  // The first PT_LOAD header (a RISCV_ATTRIBUTES one may come first).
  uint32_t phoff = 0, type = 0;
  std::memcpy(&phoff, elf.data() + 28, 4);
  for (std::memcpy(&type, elf.data() + phoff, 4); type != 1;
       std::memcpy(&type, elf.data() + phoff, 4)) {
    phoff += 32;
    ASSERT_LT(phoff + 32, elf.size());
  }
  auto expect = [](const std::vector<uint8_t>& b, const std::string& what) {
    auto r = iss::ParseElf(b);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status();
  };
  expect(std::vector<uint8_t>(elf.begin(), elf.begin() + 40), "not an ELF");
  expect(set32(elf, phoff + 16, 0x7fffffff), "file size");
  expect(set32(set32(elf, phoff + 16, 0x7fffffff), phoff + 20, 0x7fffffff),
         "past the end of the file");
  expect(set32(elf, phoff + 8, 0xffffff00), "wraps past 4 GiB");
  expect(set32(elf, 28, 0xfffffff0), "program headers run past");
  std::vector<uint8_t> x86 = elf;
  x86[18] = 62;
  expect(x86, "not RISC-V");
}

}  // namespace
}  // namespace joule
