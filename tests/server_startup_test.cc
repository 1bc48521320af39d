// joule_server's start-up against hostile or broken surroundings: it must
// fail with a message, or stop when told, never hang.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;
using testing::Runfile;

// Regression: opening a FIFO for reading waited for a writer forever.
TEST(ServerStartupTest, ModelThatIsAFifoIsRefused) {
  const std::string tmp = testing::TempDir();
  const std::string fifo = tmp + "/model.fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  testing::RunResult r = testing::Run(
      {Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
       "--metrics_port=-1", "--http_port=-1", "--model=" + fifo,
       "--tokenizer=" + testing::SharedModel("tok512.bin")},
      tmp, absl::Seconds(20));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is not a regular file"));
}

// Regression: SIGTERM was blocked from the first line of main for the
// drain thread, so a start-up stuck on a device could not be stopped.
TEST(ServerStartupTest, SigtermDuringStartUpExits) {
  const std::string tmp = testing::TempDir();
  // A "simulator" that accepts connections (the kernel's backlog) and never
  // answers: the device's HELLO waits for its 120 s I/O timeout.
  // Unix socket paths are short (108 bytes): not under the test's tmpdir.
  char dir[] = "/tmp/joule-startup-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/silent.sock";
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  const std::string token_path = std::string(dir) + "/token";
  {
    std::ofstream token(token_path);
    token << "silent-daemon-token\n";
  }

  testing::Subprocess server(
      {Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
       "--metrics_port=-1", "--http_port=-1", "--devices=riscv",
       "--riscv_sim_address=unix:" + path,
       "--riscv_sim_token_file=" + token_path},
      tmp + "/startup.out", tmp + "/startup.err");
  ASSERT_TRUE(server.started());
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_EQ(server.Wait(absl::Milliseconds(50)), -1000)
      << "start-up should still be waiting: " << server.Stderr();
  const absl::Time sent = absl::Now();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(absl::Seconds(10)), 128 + SIGTERM) << server.Stderr();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(5));
  EXPECT_THAT(server.Stderr(), HasSubstr("SIGTERM during start-up"));
  ::close(fd);
  ::unlink(path.c_str());
  ::unlink(token_path.c_str());
  ::rmdir(dir);
}

// Flags out of range are refused at start-up with a message naming them,
// before anything slow starts.
TEST(ServerStartupTest, OutOfRangeFlagsAreRefusedByName) {
  const std::string tmp = testing::TempDir();
  const std::string bad_template = tmp + "/bad_template.json";
  std::ofstream(bad_template) << R"({"system": "{content}", "user": "{contnet}",
                                    "assistant": "{content}"})";
  const struct {
    std::string flag;
    std::string message;
  } cases[] = {
      {"--http_port=70000", "--http_port"},
      {"--http_max_concurrent_generations=128", "below --http_threads"},
      {"--http_max_body_bytes=0", "--http_max_body_bytes"},
      {"--http_read_timeout_seconds=0", "--http_read_timeout_seconds"},
      {"--chat_template=" + tmp + "/missing.json", "cannot read"},
      {"--chat_template=" + bad_template, "has no {content}"},
      {"--cpu_threads=-1", "--cpu_threads"},
      {"--shutdown_delay_seconds=-1", "--shutdown_delay_seconds"},
      {"--shutdown_grace_seconds=-1", "--shutdown_grace_seconds"},
      {"--devices=riscv --riscv_max_batch=0", "--riscv_max_batch"},
      {"--devices=fpga --fpga_device_index=-1", "--fpga_device_index"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.flag);
    std::vector<std::string> argv = {Runfile("server/joule_server"),
                                     "--host=127.0.0.1", "--port=0",
                                     "--metrics_port=-1", "--http_port=-1"};
    for (absl::string_view f : absl::StrSplit(c.flag, ' ')) {
      argv.emplace_back(f);
    }
    testing::RunResult r = testing::Run(argv, tmp, absl::Seconds(30));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace joule
