#include "device/riscv/sim/iss/kernel_runner.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <type_traits>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
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

// Every field is an integer and there is no padding, so equal bytes are
// equal fields, and a field added later is compared too; one that breaks
// this (a float, padding) stops the build rather than letting a launch run
// on a cluster built for another configuration.
static_assert(std::has_unique_object_representations_v<ClusterConfig>);

bool SameConfig(const ClusterConfig& a, const ClusterConfig& b) {
  return std::memcmp(&a, &b, sizeof(ClusterConfig)) == 0;
}

// More configurations than launches alternate between are not expected:
// beyond this many, the least recently kept is dropped.
constexpr size_t kMaxIdleClusters = 4;

}  // namespace

// Loaded clusters between launches. A cluster is taken out while a launch
// uses it, so the lock is held only to take or give one back.
class KernelImage::ClusterCache {
 public:
  // A reset cluster loaded for `config`, or nullptr if none is idle.
  std::unique_ptr<Cluster> Take(const ClusterConfig& config) {
    std::unique_ptr<Cluster> cluster;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (SameConfig((*it)->config(), config)) {
          cluster = std::move(*it);
          idle_.erase(it);
          break;
        }
      }
    }
    if (cluster != nullptr && !cluster->Reset().ok()) cluster.reset();
    return cluster;
  }

  // Keeps `cluster` for a later launch, unless one with its configuration
  // is already kept (a concurrent launch's).
  void Give(std::unique_ptr<Cluster> cluster) {
    absl::MutexLock lock(&mu_);
    for (const auto& c : idle_)
      if (SameConfig(c->config(), cluster->config())) return;
    if (idle_.size() == kMaxIdleClusters) idle_.erase(idle_.begin());
    idle_.push_back(std::move(cluster));
  }

 private:
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Cluster>> idle_ ABSL_GUARDED_BY(mu_);
};

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
  img.cache_ = std::make_shared<ClusterCache>();
  return img;
}

absl::StatusOr<KernelImage::Result> KernelImage::Launch(
    uint32_t kernel, const std::vector<uint32_t>& args,
    const std::vector<Buffer>& inputs,
    const std::vector<std::pair<uint32_t, uint32_t>>& outputs,
    const ClusterConfig& config) const {
  if (args.size() > 15) return absl::InvalidArgumentError("over 15 args");
  std::unique_ptr<Cluster> cluster;
  if (cache_ != nullptr) cluster = cache_->Take(config);
  if (cluster == nullptr) {
    cluster = std::make_unique<Cluster>(config);
    if (absl::Status s = cluster->Load(elf_); !s.ok()) return s;
  }
  absl::StatusOr<Result> r = Run(*cluster, kernel, args, inputs, outputs);
  if (cache_ != nullptr) cache_->Give(std::move(cluster));
  return r;
}

absl::StatusOr<KernelImage::Result> KernelImage::Run(
    Cluster& cluster, uint32_t kernel, const std::vector<uint32_t>& args,
    const std::vector<Buffer>& inputs,
    const std::vector<std::pair<uint32_t, uint32_t>>& outputs) const {
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
    const uint8_t* p = cluster.memory().Read(addr, bytes);
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
