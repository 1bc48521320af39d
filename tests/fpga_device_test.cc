// The FPGA device through the real XRT runtime in noop emulation: the
// xclbin Joule writes is loaded by XRT, the host path runs (device, xclbin,
// buffer objects, syncs, start/wait) and the kernel's C simulation computes.
#include "device/fpga/fpga_device.h"

#include <fstream>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "device/fpga/kernel/built_shapes.h"
#include "device/fpga/xclbin_file.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/convert.h"
#include "proto/joule.grpc.pb.h"
#include "server/server.h"
#include "tests/test_paths.h"

ABSL_DECLARE_FLAG(bool, fpga_emulation);  // device/fpga/fpga_registration.cc

namespace joule {
namespace {

using ::testing::HasSubstr;

std::string XclbinDir() { return testing::Runfile("device/fpga"); }

std::string Int8Stories260K() {
  static const std::string path = [] {
    auto fp32 =
        model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
    const std::string p = testing::TempDir() + "/s260k_q8_fpga.bin";
    EXPECT_TRUE(model::ConvertCheckpoint(**fp32, p, 2, 0).ok());
    return p;
  }();
  return path;
}

device::FpgaOptions Emulated() {
  device::FpgaOptions o;
  o.emulation = true;
  o.xclbin_dir = XclbinDir();
  return o;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(FpgaDeviceTest, ServerOnEmulatedFpgaMatchesTheCpuEngine) {
  server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.checkpoint_path = Int8Stories260K();
  o.tokenizer_path = testing::SharedModel("tok512.bin");
  o.devices = {"fpga", "cpu-ref"};
  o.energy.cpu_energy = "model";
  // As joule_server runs it: the registered driver, its own flag, and the
  // kernel the build shipped in the runfiles.
  absl::SetFlag(&FLAGS_fpga_emulation, true);
  setenv("RUNFILES_DIR", std::getenv("TEST_SRCDIR"), 1);
  auto server = server::JouleServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Joule::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                          grpc::InsecureChannelCredentials()));
  auto run = [&](const std::string& device) {
    v1::GenerateRequest req;
    req.set_temperature(0);
    req.set_max_tokens(300);  // Past position 257.
    req.set_ignore_eos(true);
    req.set_device(device);
    req.set_pin_device(true);
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    EXPECT_TRUE(stub->Generate(&ctx, req, &resp).ok());
    return resp;
  };
  v1::GenerateResponse fpga = run("fpga"), cpu = run("cpu-ref");
  ASSERT_EQ(fpga.tokens_size(), 300);
  ASSERT_EQ(cpu.tokens_size(), 300);
  for (int i = 0; i < 300; ++i)
    ASSERT_EQ(fpga.tokens(i).id(), cpu.tokens(i).id()) << i;
  EXPECT_EQ(fpga.summary().device(), "fpga");
  EXPECT_EQ(fpga.summary().energy_source(), v1::ENERGY_SOURCE_MODELED);
  EXPECT_GT(fpga.summary().joules_per_token(), 0);
  grpc::ClientContext ctx;
  v1::ListDevicesResponse d;
  ASSERT_TRUE(stub->ListDevices(&ctx, {}, &d).ok());
  EXPECT_EQ(d.devices(0).kind(), v1::DEVICE_KIND_FPGA);
  EXPECT_THAT(d.devices(0).description(), HasSubstr("emulated"));
  (*server)->Shutdown(absl::Seconds(2));
}

TEST(FpgaDeviceTest, XclbinCarriesItsShape) {
  auto shape =
      fpga::ReadXclbinShape(XclbinDir() + "/forward_stories15M.xclbin");
  ASSERT_TRUE(shape.ok()) << shape.status();
  EXPECT_EQ(shape->config.dim, 288);
  EXPECT_EQ(shape->group_size, 32);
}

TEST(FpgaDeviceTest, ErrorsSayWhatIsWrong) {
  auto ckpt = model::Checkpoint::Open(Int8Stories260K());
  ASSERT_TRUE(ckpt.ok());
  {  // Missing xclbin.
    device::FpgaOptions o = Emulated();
    o.xclbin = "/nonexistent/forward.xclbin";
    device::FpgaDevice dev(o);
    absl::Status s = dev.LoadModel(**ckpt);
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(Msg(s), HasSubstr("not found; pass --fpga_xclbin"));
  }
  {  // An xclbin built for another shape.
    device::FpgaOptions o = Emulated();
    o.xclbin = XclbinDir() + "/forward_stories15M.xclbin";
    device::FpgaDevice dev(o);
    absl::Status s = dev.LoadModel(**ckpt);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(Msg(s), HasSubstr("is built for joule-shape dim=288"));
  }
  {  // Wrong kernel name: XRT itself refuses it.
    const fpga::BuiltShape& s260 = fpga::BuiltShapes()[0];
    const std::string path = testing::TempDir() + "/backward.xclbin";
    std::ofstream(path, std::ios::binary) << fpga::BuildXclbin(
        "backward", fpga::ForwardKernelArgs(), {s260.config, 4}, "test");
    device::FpgaOptions o = Emulated();
    o.xclbin = path;
    device::FpgaDevice dev(o);
    absl::Status s = dev.LoadModel(**ckpt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(s), HasSubstr("no usable kernel 'forward'"));
  }
  {  // Not an xclbin.
    const std::string path = testing::TempDir() + "/junk.xclbin";
    std::ofstream(path) << "not an xclbin at all";
    device::FpgaOptions o = Emulated();
    o.xclbin = path;
    device::FpgaDevice dev(o);
    EXPECT_THAT(Msg(dev.LoadModel(**ckpt)), HasSubstr("is not an xclbin"));
  }
  {  // fp32 checkpoints: the kernel runs int8.
    auto fp32 =
        model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
    device::FpgaDevice dev(Emulated());
    EXPECT_EQ(dev.LoadModel(**fp32).code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace joule
