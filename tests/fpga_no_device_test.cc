// Without a board and without --fpga_emulation, the FPGA device says so.
// Its own binary: emulation, once enabled, is process-wide.
#include "device/fpga/fpga_device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/convert.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

TEST(FpgaNoDeviceTest, NoBoardIsUnavailableWithAHint) {
  unsetenv("XCL_EMULATION_MODE");
  auto fp32 = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(fp32.ok());
  const std::string path = testing::TempDir() + "/q8.bin";
  ASSERT_TRUE(model::ConvertCheckpoint(**fp32, path, 2, 0).ok());
  auto ckpt = model::Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok());
  device::FpgaOptions o;
  o.xclbin_dir = testing::Runfile("device/fpga");
  device::FpgaDevice dev(o);
  absl::Status s = dev.LoadModel(**ckpt);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("pass --fpga_emulation"));
}

}  // namespace
}  // namespace joule
