#include "device/fpga/fpga_device.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/chunk_check.h"
#include "device/fpga/kernel/built_shapes.h"
#include "device/fpga/packed_weights.h"
#include "device/fpga/xclbin_file.h"
#include "spdlog/spdlog.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_kernel.h"

namespace joule::device {
namespace {

// Buffer object sizes are whole 4 KiB pages. XRT backs a BO with host
// memory from aligned_alloc(4096, size), and C11 requires the size to be a
// multiple of the alignment: other sizes are undefined behaviour (ASan's
// invalid-aligned-alloc-alignment). The kernel reads only the bytes it is
// told about, so the padding is never touched.
size_t BoBytes(size_t bytes) {
  constexpr size_t kPage = 4096;
  return (std::max<size_t>(bytes, 1) + kPage - 1) / kPage * kPage;
}

// Argument indices of `forward` (kernel/forward.h).
enum Arg {
  kQ8 = 0,
  kScales,
  kNorms,
  kShared,
  kToken,
  kPos,
  kKeys,
  kValues,
  kOut
};

// XRT's noop device lives in $XILINX_XRT/lib: point it at Debian's
// multiarch directory through a private root. Must precede the first
// xrt::device of the process.
absl::Status EnableNoopEmulation() {
  static absl::Status status = [] {
    char dir[] = "/tmp/joule-xrt-XXXXXX";
    if (mkdtemp(dir) == nullptr)
      return absl::InternalError("cannot create an XRT root");
    const std::string lib = std::string(dir) + "/lib";
    if (symlink("/usr/lib/x86_64-linux-gnu", lib.c_str()) != 0) {
      return absl::InternalError("cannot link the XRT library directory");
    }
    setenv("XILINX_XRT", dir, 1);
    setenv("XCL_EMULATION_MODE", "noop", 1);
    return absl::OkStatus();
  }();
  return status;
}

}  // namespace

struct FpgaDevice::Xrt {
  xrt::device device;
  xrt::uuid uuid;
  xrt::kernel kernel;
  xrt::bo q8, scales, norms, out;
  const fpga::BuiltShape* shape = nullptr;  // C simulation (emulation only).
  struct Sequence {
    xrt::bo keys, values;
    int length = 0;
  };
  absl::flat_hash_map<SequenceId, Sequence> sequences;
};

FpgaDevice::FpgaDevice(FpgaOptions options) : options_(std::move(options)) {}
FpgaDevice::~FpgaDevice() = default;

Capabilities FpgaDevice::capabilities() const {
  Capabilities c;
  c.name = options_.name;
  c.kind = DeviceKind::kFpga;
  c.description =
      options_.emulation
          ? absl::StrCat(
                "Xilinx VU9P via XRT, emulated (XRT noop device + HLS C "
                "simulation; ",
                options_.model.Describe(), ")")
          : "Xilinx FPGA via XRT";
  c.max_batch_size = options_.max_batch_size;
  c.max_context = ckpt_ ? ckpt_->config().seq_len : 0;
  c.kv_capacity_tokens =
      ckpt_ ? int64_t{options_.max_batch_size} * ckpt_->config().seq_len : 0;
  c.precision = "int8 weights (Q8_0), fp32 activations";
  // Emulated time and energy come from the VU9P model; on a board the time
  // is measured but the energy still comes from the model (reading the
  // board's power rails is not done yet), so it is labeled modeled too.
  c.energy_source = EnergySource::kModeled;
  c.reports_energy = true;
  return c;
}

absl::Status FpgaDevice::LoadModel(const model::Checkpoint& ckpt) {
  absl::MutexLock l(&mu_);
  auto packed = fpga::PackWeights(ckpt);
  if (!packed.ok()) return packed.status();
  const model::Config& c = ckpt.config();
  auto x = std::make_unique<Xrt>();
  x->shape = fpga::FindBuiltShape(c, ckpt.group_size());
  if (options_.emulation && x->shape == nullptr) {
    std::string built;
    for (const auto& s : fpga::BuiltShapes())
      absl::StrAppend(&built, built.empty() ? "" : "; ", s.name);
    return absl::FailedPreconditionError(absl::StrCat(
        "no FPGA kernel is built for this model (", c.DebugString(),
        ", group size ", ckpt.group_size(), "); built: ", built));
  }
  xclbin_path_ = options_.xclbin;
  if (xclbin_path_.empty() && options_.xclbin_dir.empty()) {
    return absl::NotFoundError(
        "no FPGA kernels were shipped with this binary (its runfiles have no "
        "device/fpga); pass --fpga_xclbin");
  }
  if (xclbin_path_.empty() && x->shape != nullptr) {
    xclbin_path_ = absl::StrCat(
        options_.xclbin_dir, "/forward_",
        x->shape->name.substr(0, x->shape->name.find(',')), ".xclbin");
  }
  if (xclbin_path_.empty() || access(xclbin_path_.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("FPGA xclbin '", xclbin_path_,
                                            "' not found; pass --fpga_xclbin"));
  }
  auto shape = fpga::ReadXclbinShape(xclbin_path_);
  if (!shape.ok()) return shape.status();
  const model::Config& b = shape->config;
  if (b.dim != c.dim || b.hidden_dim != c.hidden_dim ||
      b.n_layers != c.n_layers || b.n_heads != c.n_heads ||
      b.n_kv_heads != c.n_kv_heads || b.vocab_size != c.vocab_size ||
      b.seq_len != c.seq_len || shape->group_size != ckpt.group_size()) {
    return absl::FailedPreconditionError(
        absl::StrCat(xclbin_path_, " is built for ", fpga::ShapeText(*shape),
                     " but the model is ", c.DebugString(), " with group size ",
                     ckpt.group_size()));
  }
  if (options_.emulation) {
    if (absl::Status s = EnableNoopEmulation(); !s.ok()) return s;
  }
  try {
    x->device = xrt::device(options_.device_index);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "no FPGA device ", options_.device_index, " (XRT: ", e.what(),
        "); without a board, pass --fpga_emulation"));
  }
  try {
    x->uuid = x->device.load_xclbin(xclbin_path_);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("XRT could not load ", xclbin_path_, ": ", e.what()));
  }
  try {
    x->kernel = xrt::kernel(x->device, x->uuid, "forward");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("xclbin ", xclbin_path_,
                     " has no usable kernel 'forward': ", e.what()));
  }
  try {
    auto upload = [&](int arg, const void* data, size_t bytes) {
      xrt::bo bo(x->device, BoBytes(bytes), x->kernel.group_id(arg));
      bo.write(data, bytes, 0);
      bo.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      return bo;
    };
    x->q8 = upload(kQ8, packed->q8.data(), packed->q8.size());
    x->scales =
        upload(kScales, packed->scales.data(), 4 * packed->scales.size());
    x->norms = upload(kNorms, packed->norms.data(), 4 * packed->norms.size());
    x->out =
        xrt::bo(x->device, BoBytes(4 * size_t{static_cast<size_t>(c.vocab_size)}),
                x->kernel.group_id(kOut));
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("FPGA buffer allocation failed: ", e.what()));
  }
  ckpt_ = &ckpt;
  xrt_ = std::move(x);
  spdlog::info(
      "device {}: xclbin {} loaded{}", options_.name, xclbin_path_,
      options_.emulation ? " (emulated: XRT noop + C simulation)" : "");
  return absl::OkStatus();
}

absl::Status FpgaDevice::Step(absl::Span<const SequenceChunk> batch,
                              StepOutput* out) {
  absl::MutexLock l(&mu_);
  if (xrt_ == nullptr) return absl::FailedPreconditionError("no model loaded");
  const model::Config& c = ckpt_->config();
  const absl::StatusOr<int64_t> checked = CheckBatch(
      batch,
      [this](SequenceId id) {
        auto it = xrt_->sequences.find(id);
        return it == xrt_->sequences.end() ? 0 : it->second.length;
      },
      c, {options_.max_batch_size, 0});
  if (!checked.ok()) return checked.status();
  out->vocab_size = c.vocab_size;
  out->logits.resize(batch.size() * static_cast<size_t>(c.vocab_size));
  const absl::Time start = absl::Now();
  double modeled_seconds = 0;
  try {
    for (size_t i = 0; i < batch.size(); ++i) {
      const SequenceChunk& ch = batch[i];
      auto [it, fresh] = xrt_->sequences.try_emplace(ch.seq);
      Xrt::Sequence& s = it->second;
      if (fresh) {
        const size_t bytes = BoBytes(sizeof(float) * size_t(c.seq_len) *
                                     c.n_layers * c.kv_dim());
        s.keys = xrt::bo(xrt_->device, bytes, xrt_->kernel.group_id(kKeys));
        s.values = xrt::bo(xrt_->device, bytes, xrt_->kernel.group_id(kValues));
      }
      for (size_t k = 0; k < ch.tokens.size(); ++k) {
        const int pos = ch.start_pos + static_cast<int>(k);
        xrt::run run(xrt_->kernel);
        run.set_arg(kQ8, xrt_->q8);
        run.set_arg(kScales, xrt_->scales);
        run.set_arg(kNorms, xrt_->norms);
        run.set_arg(kShared, int(c.shared_classifier));
        run.set_arg(kToken, ch.tokens[k]);
        run.set_arg(kPos, pos);
        run.set_arg(kKeys, s.keys);
        run.set_arg(kValues, s.values);
        run.set_arg(kOut, xrt_->out);
        run.start();
        if (options_.emulation) {
          // The noop device completes without computing: the kernel's C
          // simulation computes on the buffers' host memory meanwhile.
          xrt_->shape->kernel(xrt_->q8.map<int8_t*>(),
                              xrt_->scales.map<float*>(),
                              xrt_->norms.map<float*>(), c.shared_classifier,
                              ch.tokens[k], pos, s.keys.map<float*>(),
                              s.values.map<float*>(), xrt_->out.map<float*>());
        }
        const auto state = run.wait(std::chrono::milliseconds(60000));
        if (state != ERT_CMD_STATE_COMPLETED) {
          return absl::UnavailableError(
              absl::StrFormat("FPGA kernel run ended in state %d", state));
        }
        modeled_seconds += options_.model.SecondsPerToken(c, pos);
        s.length = pos + 1;
      }
      xrt_->out.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
      xrt_->out.read(out->row(static_cast<int>(i)).data(),
                     4 * size_t(c.vocab_size), 0);
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("XRT: ", e.what()));
  }
  // Emulated: the model's time and energy. A board: wall time, and energy
  // from the model too until board power is read (labeled modeled).
  out->device_time =
      options_.emulation ? absl::Seconds(modeled_seconds) : absl::Now() - start;
  out->energy_joules =
      options_.model.board_watts * absl::ToDoubleSeconds(out->device_time);
  return absl::OkStatus();
}

void FpgaDevice::Release(SequenceId seq) {
  absl::MutexLock l(&mu_);
  if (xrt_ != nullptr) xrt_->sequences.erase(seq);
}

int64_t FpgaDevice::kv_used_tokens() const {
  absl::MutexLock l(&mu_);
  int64_t used = 0;
  if (xrt_ == nullptr) return 0;
  for (const auto& [id, s] : xrt_->sequences) used += s.length;
  return used;
}

}  // namespace joule::device
