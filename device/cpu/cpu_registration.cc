// The CPU drivers' flags, and their registration under --devices=cpu and
// --devices=cpu-ref.
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "device/cpu/fast_engine.h"
#include "device/cpu/reference_engine.h"
#include "device/registry.h"

ABSL_FLAG(int, cpu_threads, 0, "Threads of the cpu device (0: one per core).");
ABSL_FLAG(std::string, cpu_kv_cache, "int8",
          "KV cache entries of the cpu device for int8 checkpoints: int8 "
          "(a scale per position and head; attention reads half the bytes) "
          "or fp16. fp32 checkpoints always keep fp32 entries.");

namespace joule::device {
namespace {

absl::StatusOr<std::unique_ptr<Device>> MakeCpu(const DeviceContext&) {
  FastEngine::Options o;
  o.name = "cpu";
  o.threads = absl::GetFlag(FLAGS_cpu_threads);
  o.kv_cache = absl::GetFlag(FLAGS_cpu_kv_cache);
  if (o.threads < 0) {
    return absl::InvalidArgumentError("--cpu_threads must be >= 0");
  }
  return std::make_unique<FastEngine>(o);
}

absl::StatusOr<std::unique_ptr<Device>> MakeCpuRef(const DeviceContext&) {
  ReferenceEngine::Options o;
  o.name = "cpu-ref";
  return std::make_unique<ReferenceEngine>(o);
}

const DeviceRegistration kCpu("cpu", MakeCpu);
const DeviceRegistration kCpuRef("cpu-ref", MakeCpuRef);

}  // namespace
}  // namespace joule::device
