#include "device/riscv/sim/iss/kernel_runner.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_format.h"
#include "device/riscv/sim/iss/elf.h"
#include "device/riscv/sim/kernels/launch.h"

namespace joule::iss {
namespace {

const char* StatusName(int code) {
  switch (code) {
    case JOULE_UNKNOWN_KERNEL:
      return "unknown kernel";
    case JOULE_BAD_SHAPE:
      return "shape outside what the kernel supports";
    default:
      return "unexpected exit status";
  }
}

}  // namespace

absl::StatusOr<KernelImage> KernelImage::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read kernel image " + path);
  KernelImage img;
  img.elf_.assign(std::istreambuf_iterator<char>(in), {});
  absl::StatusOr<ElfImage> parsed = ParseElf(img.elf_);
  if (!parsed.ok()) return parsed.status();
  auto it = parsed->symbols.find("joule_launch");
  if (it == parsed->symbols.end()) {
    return absl::InvalidArgumentError(path + " has no joule_launch symbol");
  }
  img.launch_addr_ = it->second;
  uint64_t end = 0;
  for (const auto& s : parsed->segments)
    end = std::max<uint64_t>(end, uint64_t{s.vaddr} + s.memsz);
  img.heap_base_ = static_cast<uint32_t>((end + 4095) & ~uint64_t{4095});
  return img;
}

absl::StatusOr<KernelImage::Result> KernelImage::Launch(
    uint32_t kernel, const std::vector<uint32_t>& args,
    const std::vector<Buffer>& inputs,
    const std::vector<std::pair<uint32_t, uint32_t>>& outputs,
    const ClusterConfig& config) const {
  if (args.size() > 15) return absl::InvalidArgumentError("over 15 args");
  Cluster cluster(config);
  if (absl::Status s = cluster.Load(elf_); !s.ok()) return s;
  JouleLaunch launch = {};
  launch.kernel = kernel;
  std::copy(args.begin(), args.end(), launch.args);
  uint8_t* at = cluster.memory().At(launch_addr_, sizeof(launch));
  if (at == nullptr) return absl::InternalError("joule_launch not mapped");
  std::memcpy(at, &launch, sizeof(launch));
  for (const Buffer& b : inputs) {
    uint8_t* p = cluster.memory().At(b.addr, b.bytes.size());
    if (p == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "input at 0x%08x (%d bytes) is outside the cluster's memory", b.addr,
          b.bytes.size()));
    }
    if (!b.bytes.empty()) std::memcpy(p, b.bytes.data(), b.bytes.size());
  }
  Result r;
  r.run = cluster.Run(uint64_t{1} << 36);
  if (!r.run.ok) return absl::InternalError("kernel run: " + r.run.error);
  for (size_t i = 0; i < r.run.exit_codes.size(); ++i) {
    if (r.run.exit_codes[i] != JOULE_OK) {
      return absl::InvalidArgumentError(
          absl::StrFormat("kernel %u: core %d: %s", kernel, i,
                          StatusName(r.run.exit_codes[i])));
    }
  }
  for (const auto& [addr, bytes] : outputs) {
    const uint8_t* p = cluster.memory().At(addr, bytes);
    if (p == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "output at 0x%08x (%u bytes) is outside the cluster's memory", addr,
          bytes));
    }
    r.outputs.emplace_back(p, p + bytes);
  }
  return r;
}

}  // namespace joule::iss
