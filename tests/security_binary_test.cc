// The security flags as an operator uses them: joule_server refuses bad
// TLS and key flags at start-up with a message, and joule_cli and
// joule_loadgen reach a TLS server with an API key.
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Runfile;

constexpr char kKey[] = "binary-test-key-42";

class SecurityBinaryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new std::string(testing::TempDir());
    setenv("RUNFILES_DIR", std::getenv("TEST_SRCDIR"), 1);
    testing::RunResult r =
        testing::Run({"/bin/bash", Runfile("tests/testdata/make_test_certs.sh"),
                      *tmp_ + "/certs"},
                     *tmp_);
    ASSERT_EQ(r.code, 0) << r.err;
    std::ofstream(*tmp_ + "/keys") << "# test keys\n" << kKey << "\n";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete tmp_;
  }

  static std::string Cert(const std::string& name) {
    return *tmp_ + "/certs/" + name;
  }
  // Runs joule_server with `flags`, expecting it to refuse to start.
  static testing::RunResult StartFails(std::vector<std::string> flags) {
    flags.insert(flags.begin(),
                 {Runfile("server/joule_server"), "--host=127.0.0.1",
                  "--port=0", "--metrics_port=-1", "--http_port=-1"});
    return testing::Run(flags, *tmp_, absl::Seconds(30));
  }
  // The suite's server: mutual TLS and an API key file.
  static void StartServer() {
    if (server_ != nullptr) return;
    server_ = new testing::Subprocess(
        {Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
         "--metrics_port=-1", "--http_port=-1", "--tls_cert_file=" + Cert("server.pem"),
         "--tls_key_file=" + Cert("server.key"),
         "--tls_client_ca_file=" + Cert("ca.pem"),
         "--api_key_file=" + *tmp_ + "/keys"},
        *tmp_ + "/server.out", *tmp_ + "/server.err");
    const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 1000 && port_ == 0; ++i) {
      std::smatch m;
      std::string err = server_->Stderr();
      if (std::regex_search(err, m, listening)) port_ = std::stoi(m[1]);
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_NE(port_, 0) << server_->Stderr();
  }
  static std::vector<std::string> TlsClientFlags(const std::string& binary) {
    return {Runfile(binary), "--target=localhost:" + std::to_string(port_),
            "--tls_ca_file=" + Cert("ca.pem"),
            "--tls_cert_file=" + Cert("client.pem"),
            "--tls_key_file=" + Cert("client.key")};
  }

  static std::string* tmp_;
  static testing::Subprocess* server_;
  static int port_;
};

std::string* SecurityBinaryTest::tmp_ = nullptr;
testing::Subprocess* SecurityBinaryTest::server_ = nullptr;
int SecurityBinaryTest::port_ = 0;

TEST_F(SecurityBinaryTest, BadTlsFlagsAreRefusedWithAMessage) {
  const struct {
    std::vector<std::string> flags;
    const char* message;
  } cases[] = {
      {{"--tls_cert_file=" + Cert("server.pem")},
       "--tls_cert_file is set but --tls_key_file is not"},
      {{"--tls_key_file=" + Cert("server.key")},
       "--tls_key_file is set but --tls_cert_file is not"},
      {{"--tls_client_ca_file=" + Cert("ca.pem")},
       "--tls_client_ca_file needs --tls_cert_file"},
      {{"--tls_cert_file=" + *tmp_ + "/missing.pem",
        "--tls_key_file=" + Cert("server.key")},
       "--tls_cert_file: cannot read"},
      {{"--tls_cert_file=" + Cert("server.key"),
        "--tls_key_file=" + Cert("server.key")},
       "holds no PEM CERTIFICATE"},
      {{"--tls_cert_file=" + Cert("server.pem"),
        "--tls_key_file=" + Cert("client.key")},
       "--tls_key_file is not the key of the certificate"},
      {{"--api_key_file=" + *tmp_ + "/no-keys"},
       "cannot read the API key file"},
      {{"--api_key=has space"}, "non-printable"},
      {{"--max_concurrent_streams=-1"}, "must be >= 0"},
  };
  for (const auto& c : cases) {
    testing::RunResult r = StartFails(c.flags);
    EXPECT_EQ(r.code, 1) << c.flags[0];
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.flags[0];
    // Refused before the model loads: start-up problems show at once.
    EXPECT_THAT(r.err, Not(HasSubstr("device cpu ready"))) << c.flags[0];
  }
}

TEST_F(SecurityBinaryTest, CliWithTlsAndKey) {
  StartServer();
  std::vector<std::string> cli = TlsClientFlags("clients/joule_cli");
  cli.push_back("--max_tokens=4");

  testing::RunResult no_key = testing::Run(cli, *tmp_);
  EXPECT_EQ(no_key.code, 1);
  EXPECT_THAT(no_key.err, HasSubstr("error: UNAUTHENTICATED: missing API key"));

  std::vector<std::string> with_key = cli;
  with_key.push_back(std::string("--api_key=") + kKey);
  testing::RunResult ok = testing::Run(with_key, *tmp_);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.err, HasSubstr("[4 tokens on cpu"));

  // The key from the environment, as scripts pass it.
  setenv("JOULE_API_KEY", kKey, 1);
  testing::RunResult env = testing::Run(cli, *tmp_);
  unsetenv("JOULE_API_KEY");
  EXPECT_EQ(env.code, 0) << env.err;

  // No client certificate: the handshake fails.
  std::vector<std::string> no_cert = {
      Runfile("clients/joule_cli"),
      "--target=localhost:" + std::to_string(port_),
      "--tls_ca_file=" + Cert("ca.pem"),
      std::string("--api_key=") + kKey,
      "--max_tokens=4",
      "--deadline_seconds=5"};
  testing::RunResult refused = testing::Run(no_cert, *tmp_);
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(SecurityBinaryTest, LoadgenWithTlsAndKey) {
  StartServer();
  std::vector<std::string> gen = TlsClientFlags("clients/joule_loadgen");
  for (const char* f :
       {"--concurrency=2", "--requests=4", "--max_tokens=4", "--format=json"}) {
    gen.push_back(f);
  }
  gen.push_back(std::string("--api_key=") + kKey);
  testing::RunResult r = testing::Run(gen, *tmp_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"OK\": 4"));
}

}  // namespace
}  // namespace joule
