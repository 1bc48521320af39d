#ifndef JOULE_DEVICE_FPGA_FPGA_DEVICE_H_
#define JOULE_DEVICE_FPGA_FPGA_DEVICE_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "device/device.h"
#include "device/fpga/vu9p_model.h"

namespace joule::device {

struct FpgaOptions {
  std::string name = "fpga";
  // The xclbin to load; empty: forward_<shape>.xclbin in `xclbin_dir`, the
  // folder the build ships them in (//device/fpga:xclbins in the runfiles).
  std::string xclbin;
  std::string xclbin_dir;
  // No board: XRT's own noop device runs the real host path (device open,
  // xclbin load, buffer objects, syncs, kernel start and wait) and the
  // kernel's C simulation computes on the buffers between start and wait,
  // as Vitis software emulation does. Time and energy are then modeled.
  bool emulation = false;
  unsigned device_index = 0;
  int max_batch_size = 8;
  fpga::Vu9pModel model;
};

// The FPGA as a Device, on the native XRT C++ API (xrt::device,
// xrt::kernel, xrt::bo): weights uploaded once, one KV buffer pair per
// sequence, one kernel run per token; sequences in a batch run in turn.
class FpgaDevice : public Device {
 public:
  explicit FpgaDevice(FpgaOptions options);
  ~FpgaDevice() override;

  Capabilities capabilities() const override;
  absl::Status LoadModel(const model::Checkpoint& ckpt) override;
  absl::Status Step(absl::Span<const SequenceChunk> batch,
                    StepOutput* out) override;
  void Release(SequenceId seq) override;
  int64_t kv_used_tokens() const override;

 private:
  struct Xrt;  // XRT objects, kept out of this header.

  FpgaOptions options_;
  const model::Checkpoint* ckpt_ = nullptr;
  mutable absl::Mutex mu_;
  std::unique_ptr<Xrt> xrt_ ABSL_GUARDED_BY(mu_);
  std::string xclbin_path_;
};

}  // namespace joule::device

#endif  // JOULE_DEVICE_FPGA_FPGA_DEVICE_H_
