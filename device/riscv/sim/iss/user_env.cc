#include "device/riscv/sim/iss/user_env.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/iss/elf.h"

namespace joule::iss {
namespace {

constexpr uint32_t kEnosys = static_cast<uint32_t>(-38);
constexpr uint32_t kEfault = static_cast<uint32_t>(-14);
constexpr uint32_t kEbadf = static_cast<uint32_t>(-9);
constexpr uint32_t kStackTop = 0x7ff00000u;
constexpr uint32_t kStackBytes = 1u << 20;

}  // namespace

bool UserEnv::Ecall(Hart& hart, Stop* stop) {
  uint32_t* a = hart.x + 10;  // a0..a7 are x10..x17.
  switch (a[7]) {
    case 64: {  // write(fd, buf, count)
      if (a[0] != 1 && a[0] != 2) {
        a[0] = kEbadf;
        return true;
      }
      const uint8_t* p = hart.mem->At(a[1], a[2]);
      if (p == nullptr && a[2] != 0) {
        a[0] = kEfault;
        return true;
      }
      if (out.size() + a[2] > kMaxOutput) {
        stop->reason = Stop::kFault;
        stop->message = "program wrote more than 16 MiB";
        return false;
      }
      out.append(reinterpret_cast<const char*>(p), a[2]);
      return true;  // a0 = count, unchanged.
    }
    case 93:
    case 94:
      stop->reason = Stop::kExit;
      stop->exit_code = static_cast<int>(a[0] & 0xff);
      return false;
    default:
      a[0] = kEnosys;
      return true;
  }
}

absl::StatusOr<UserRun> RunUserProgram(absl::Span<const uint8_t> elf,
                                       uint64_t budget) {
  absl::StatusOr<ElfImage> image = ParseElf(elf);
  if (!image.ok()) return image.status();
  Memory mem;
  if (absl::Status s = LoadElf(*image, &mem); !s.ok()) return s;
  if (absl::Status s = mem.Map(kStackTop - kStackBytes, kStackBytes, "stack");
      !s.ok()) {
    return s;
  }
  // The code: every executable segment, predecoded as one range.
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const ElfImage::Segment& s : image->segments) {
    if (!s.executable) continue;
    lo = std::min<uint64_t>(lo, s.vaddr);
    hi = std::max<uint64_t>(hi, uint64_t{s.vaddr} + s.memsz);
  }
  if (hi <= lo) return absl::InvalidArgumentError("ELF: no executable segment");
  lo &= ~uint64_t{3};
  std::vector<uint32_t> words((hi - lo + 3) / 4);
  for (size_t i = 0; i < words.size(); ++i) {
    // Gaps between executable segments decode as illegal (zero) words.
    mem.Load<uint32_t>(static_cast<uint32_t>(lo + 4 * i), &words[i]);
  }
  UserEnv env;
  Hart hart(&mem, &env, 0);
  hart.SetCode(static_cast<uint32_t>(lo), words);
  hart.pc = image->entry;
  hart.x[2] = kStackTop - 16;
  UserRun run;
  const absl::Time t0 = absl::Now();
  run.stop = hart.Run(budget);
  run.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  run.instructions = hart.instret;
  run.out = std::move(env.out);
  if (run.stop.reason == Stop::kFault) {
    run.stop.message =
        absl::StrFormat("%s (pc 0x%08x)", run.stop.message, run.stop.pc);
  }
  return run;
}

}  // namespace joule::iss
