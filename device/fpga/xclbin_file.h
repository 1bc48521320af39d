#ifndef JOULE_DEVICE_FPGA_XCLBIN_FILE_H_
#define JOULE_DEVICE_FPGA_XCLBIN_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"

namespace joule::fpga {

// One kernel argument as the xclbin's metadata describes it.
struct KernelArg {
  std::string name;
  bool global;  // m_axi pointer (else a 32-bit s_axilite scalar).
};

// The `forward` kernel's arguments, in order (see kernel/forward.h).
std::vector<KernelArg> ForwardKernelArgs();

// The bitstream shape an xclbin is built for, stored in a USER_METADATA
// section as "joule-shape dim=... gs=..." (XRT ignores the section).
struct XclbinShape {
  model::Config config;
  int group_size = 0;
};
std::string ShapeText(const XclbinShape& shape);

// Writes an axlf container (xclbin2) with the sections the XRT runtime
// reads to load it and create the kernel: EMBEDDED_METADATA (kernel and
// argument XML), MEM_TOPOLOGY (one DDR bank per m_axi bundle), IP_LAYOUT
// (one AP_CTRL_HS compute unit "forward:forward_1") and CONNECTIVITY (each
// pointer argument to its bank), plus the shape. No bitstream: a real board
// needs one from Vitis; XRT's emulation loads this as it is.
std::string BuildXclbin(const std::string& kernel_name,
                        const std::vector<KernelArg>& args,
                        const XclbinShape& shape, const std::string& platform);

// Reads the shape back from an xclbin file.
absl::StatusOr<XclbinShape> ReadXclbinShape(const std::string& path);

}  // namespace joule::fpga

#endif  // JOULE_DEVICE_FPGA_XCLBIN_FILE_H_
