// The simulator daemon as a process: what it refuses at start-up (no
// token, a non-loopback address), and the driver authenticating to one it
// did not start, and to one it did.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "device/riscv/riscv_device.h"
#include "device/riscv/sim/protocol.h"
#include "device/riscv/sim/token.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Daemon() { return testing::Runfile("device/riscv/sim/riscv_simd"); }

class RiscvSimdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/jsimdXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    token_file_ = dir_ + "/token";
    ASSERT_TRUE(riscv::WriteTokenFile(token_file_, "shared-secret\n").ok());
    socket_ = dir_ + "/s.sock";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  // Runs the daemon with `flags`; its exit code once it stops by itself.
  int RunUntilExit(std::vector<std::string> flags, std::string* err) {
    flags.insert(flags.begin(), Daemon());
    testing::Subprocess p(flags, dir_ + "/out", dir_ + "/err");
    const int code = p.Wait(absl::Seconds(10));
    *err = p.Stderr();
    return code;
  }
  // Starts the daemon and waits until it listens.
  std::unique_ptr<testing::Subprocess> StartDaemon(
      std::vector<std::string> flags) {
    flags.insert(flags.begin(), Daemon());
    auto p = std::make_unique<testing::Subprocess>(flags, dir_ + "/out",
                                                   dir_ + "/err");
    for (int i = 0; i < 500 && !absl::StrContains(p->Stderr(), "listening");
         ++i)
      absl::SleepFor(absl::Milliseconds(10));
    EXPECT_THAT(p->Stderr(), HasSubstr("listening"));
    return p;
  }
  device::RiscvOptions External(const std::string& token_file) {
    device::RiscvOptions o;
    o.address = "unix:" + socket_;
    o.token_file = token_file;
    o.max_batch_size = 2;
    return o;
  }

  std::string dir_, token_file_, socket_;
};

TEST_F(RiscvSimdTest, RefusesToStartWithoutAReadableNonEmptyToken) {
  const std::string listen = "--listen=unix:" + socket_;
  std::string err;
  EXPECT_EQ(RunUntilExit({listen}, &err), 1);
  EXPECT_THAT(err, HasSubstr("--token_file is required"));
  EXPECT_EQ(RunUntilExit({listen, "--token_file=" + dir_ + "/none"}, &err), 1);
  EXPECT_THAT(err, HasSubstr("cannot read token file"));
  const std::string empty = dir_ + "/empty";
  ASSERT_TRUE(riscv::WriteTokenFile(empty, "\n").ok());
  EXPECT_EQ(RunUntilExit({listen, "--token_file=" + empty}, &err), 1);
  EXPECT_THAT(err, HasSubstr("is empty"));
  EXPECT_NE(access(socket_.c_str(), F_OK), 0);  // Never listened.
}

TEST_F(RiscvSimdTest, ListensOnOtherHostsOnlyWithAllowRemoteListen) {
  const std::string token = "--token_file=" + token_file_;
  std::string err;
  EXPECT_EQ(RunUntilExit({"--listen=tcp:0.0.0.0:0", token}, &err), 1);
  EXPECT_THAT(err, HasSubstr("add --allow_remote_listen"));
  auto remote =
      StartDaemon({"--listen=tcp:0.0.0.0:0", token, "--allow_remote_listen"});
  remote->Signal(SIGTERM);
  EXPECT_EQ(remote->Wait(), 0);
  // Loopback needs no flag; a Unix socket is created 0600.
  auto local = StartDaemon({"--listen=unix:" + socket_, token});
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  local->Signal(SIGTERM);
  EXPECT_EQ(local->Wait(), 0);
}

TEST_F(RiscvSimdTest, TheDriverAuthenticatesAndOwnsAnExternalDaemon) {
  auto daemon =
      StartDaemon({"--listen=unix:" + socket_, "--token_file=" + token_file_});
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  {
    device::RiscvDevice no_token(External(""));
    absl::Status s = no_token.LoadModel(**ckpt);
    EXPECT_THAT(std::string(s.message()), HasSubstr("--riscv_sim_token_file"));
    const std::string wrong = dir_ + "/wrong";
    ASSERT_TRUE(riscv::WriteTokenFile(wrong, "not-the-secret").ok());
    device::RiscvDevice wrong_token(External(wrong));
    s = wrong_token.LoadModel(**ckpt);
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("wrong token"));
  }
  device::StepOutput out;
  std::vector<int> prompt = {1, 100, 200};
  {
    device::RiscvDevice owner(External(token_file_));
    ASSERT_TRUE(owner.LoadModel(**ckpt).ok());
    ASSERT_TRUE(owner.Step({{1, 0, prompt}}, &out).ok());
    // A second server with the right token is refused while the first is
    // connected.
    device::RiscvDevice second(External(token_file_));
    absl::Status s = second.LoadModel(**ckpt);
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("in use"));
    ASSERT_TRUE(owner.Step({{1, 3, {42}}}, &out).ok());
  }
  // Once the owner is gone the next one is served.
  device::RiscvDevice next(External(token_file_));
  ASSERT_TRUE(next.LoadModel(**ckpt).ok());
  EXPECT_TRUE(next.Step({{1, 0, prompt}}, &out).ok());
}

// joule_server --riscv_sim_token_file: the server presents the file's token,
// so a pinned generation on the external daemon succeeds.
TEST_F(RiscvSimdTest, TheServerUsesItsTokenFileForAnExternalDaemon) {
  auto daemon =
      StartDaemon({"--listen=unix:" + socket_, "--token_file=" + token_file_});
  testing::Subprocess server(
      {testing::Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
       "--metrics_port=-1", "--http_port=-1", "--devices=riscv",
       "--model=" + testing::SharedModel("stories260K.bin"),
       "--tokenizer=" + testing::SharedModel("tok512.bin"),
       "--riscv_sim_address=unix:" + socket_,
       "--riscv_sim_token_file=" + token_file_},
      dir_ + "/server.out", dir_ + "/server.err");
  const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
  std::string port;
  for (int i = 0; i < 1000 && port.empty(); ++i) {
    std::smatch m;
    const std::string err = server.Stderr();
    if (std::regex_search(err, m, listening)) port = m[1];
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE(port.empty()) << server.Stderr();
  testing::RunResult r = testing::Run(
      {testing::Runfile("clients/joule_cli"), "--target=127.0.0.1:" + port,
       "--device=riscv", "--pin_device", "--prompt=Once", "--max_tokens=4",
       "--temperature=0"},
      dir_);
  EXPECT_EQ(r.code, 0) << r.err << server.Stderr();
  EXPECT_THAT(server.Stderr(), Not(HasSubstr("wrong token")));
}

TEST_F(RiscvSimdTest, AStartedDaemonGetsAFreshTokenThatIsThenDeleted) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  device::RiscvOptions o;
  o.daemon_binary = Daemon();
  o.max_batch_size = 2;
  device::RiscvDevice dev(o);
  ASSERT_TRUE(dev.LoadModel(**ckpt).ok());
  std::ifstream in("/proc/" + std::to_string(dev.daemon_pid()) + "/cmdline");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string cmdline =
      absl::StrReplaceAll(ss.str(), {{absl::string_view("\0", 1), " "}});
  const size_t at = cmdline.find("--token_file=");
  ASSERT_NE(at, std::string::npos) << cmdline;
  const std::string path =
      cmdline.substr(at + 13, cmdline.find(' ', at) - at - 13);
  EXPECT_NE(access(path.c_str(), F_OK), 0) << path << " still exists";
  struct stat st;
  ASSERT_EQ(stat(path.substr(0, path.rfind('/')).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // Private to the server's user.
  device::StepOutput out;
  std::vector<int> prompt = {1, 100};
  EXPECT_TRUE(dev.Step({{1, 0, prompt}}, &out).ok());
}

// A daemon told to live with a process stops once that process has ended.
TEST_F(RiscvSimdTest, StopsWhenItsParentPidEnds) {
  testing::Subprocess owner({"/bin/sleep", "60"}, dir_ + "/sleep.out",
                            dir_ + "/sleep.err");
  ASSERT_TRUE(owner.started());
  auto daemon = StartDaemon({"--listen=unix:" + socket_,
                             "--token_file=" + token_file_,
                             "--parent_pid=" + std::to_string(owner.pid())});
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(testing::Running(daemon->pid())) << "stopped while owned";
  owner.Signal(SIGKILL);
  owner.Wait();
  EXPECT_EQ(daemon->Wait(absl::Seconds(5)), 0) << daemon->Stderr();
}

// A server that dies without its shutdown (SIGKILL, a crash, a sanitizer's
// exit) takes the simulator it started with it.
TEST_F(RiscvSimdTest, AKilledServerLeavesNoSimulatorBehind) {
  testing::Subprocess server(
      {testing::Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
       "--metrics_port=-1", "--http_port=-1", "--devices=riscv",
       "--model=" + testing::SharedModel("stories260K.bin"),
       "--tokenizer=" + testing::SharedModel("tok512.bin")},
      dir_ + "/server.out", dir_ + "/server.err");
  for (int i = 0; i < 1000 && !absl::StrContains(server.Stderr(), "listening");
       ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_THAT(server.Stderr(), HasSubstr("listening"));
  const std::vector<pid_t> daemons =
      testing::ChildrenNamed(server.pid(), "riscv_simd");
  ASSERT_EQ(daemons.size(), 1u) << server.Stderr();
  server.Signal(SIGKILL);
  server.Wait();
  bool gone = false;
  for (int i = 0; i < 250 && !gone; ++i) {
    gone = !testing::Running(daemons[0]);
    if (!gone) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(gone) << "riscv_simd " << daemons[0] << " outlived its server";
  if (!gone) kill(daemons[0], SIGKILL);
}

// A daemon of another protocol version, whether its frames or its HELLO
// reply say so, is refused with a message saying what to run.
TEST_F(RiscvSimdTest, AnotherProtocolVersionIsAClearError) {
  for (const bool in_header : {true, false}) {
    const std::string path = dir_ + (in_header ? "/h.sock" : "/b.sock");
    int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr)),
              0);
    ASSERT_EQ(::listen(listener, 1), 0);
    // Answers the first frame (HELLO) as a daemon speaking version 3 would.
    std::thread fake([listener, in_header] {
      const int fd = ::accept(listener, nullptr, nullptr);
      riscv::Header h;
      std::string payload;
      if (riscv::RecvFrame(fd, &h, &payload).ok()) {
        riscv::HelloReply hello;
        hello.version = 3;
        hello.hbm_bytes = uint64_t{1} << 40;
        riscv::Writer w;
        riscv::EncodeHelloReply(w, hello);
        const std::string body = riscv::EncodeStatus(absl::OkStatus()) + w.str();
        riscv::Header reply;
        reply.version = in_header ? 3 : riscv::kProtocolVersion;
        reply.opcode = riscv::kHello | riscv::kReplyBit;
        reply.request_id = h.request_id;
        reply.payload_bytes = body.size();
        (void)riscv::SendAll(fd, riscv::EncodeHeader(reply) + body);
      }
      ::close(fd);
    });
    auto ckpt =
        model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
    ASSERT_TRUE(ckpt.ok());
    device::RiscvOptions o;
    o.address = "unix:" + path;
    o.token_file = token_file_;
    device::RiscvDevice dev(o);
    const absl::Status s = dev.LoadModel(**ckpt);
    fake.join();
    ::close(listener);
    // Unavailable, as any unreachable daemon: the device is re-probed, so a
    // daemon restarted with the right build is picked up.
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("RISC-V simulator: it speaks another bridge protocol"));
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(in_header ? "protocol version 3" : "answered version 3"));
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("run the riscv_simd built with this joule_server"));
  }
}

}  // namespace
}  // namespace joule
