// --routing=energy end to end, as a user runs it: joule_server with two
// devices whose power models differ places requests on the device whose
// tokens cost fewer joules, and swapping the models swaps the placement;
// --routing=latency places them where the least time is expected, whatever
// the models.
// Placements are read from joule_routed_requests_total on /metrics.
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/raw_http.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;

class EnergyRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = testing::TempDir(); }

  // Starts joule_server on cpu and cpu-ref (both with power models) with
  // `flags`, sends `n` requests through joule_cli, and returns how many
  // were routed to each device by `policy`, from the server's /metrics.
  std::map<std::string, int> Route(std::vector<std::string> flags,
                                   const std::string& policy, int n) {
    std::vector<std::string> args = {
        testing::Runfile("server/joule_server"), "--host=127.0.0.1",
        "--port=0", "--metrics_port=0", "--http_port=-1", "--devices=cpu,cpu-ref",
        "--cpu_energy=model", "--log_level=debug",
        "--model=" + testing::SharedModel("stories260K.bin"),
        "--tokenizer=" + testing::SharedModel("tok512.bin")};
    args.insert(args.end(), flags.begin(), flags.end());
    testing::Subprocess server(args, tmp_ + "/server.out",
                               tmp_ + "/server.err");
    int port = 0, metrics_port = 0;
    const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    const std::regex metrics("metrics on http://127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 1000 && metrics_port == 0; ++i) {
      std::smatch m;
      const std::string err = server.Stderr();
      if (std::regex_search(err, m, listening)) port = std::stoi(m[1]);
      if (std::regex_search(err, m, metrics)) metrics_port = std::stoi(m[1]);
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_NE(metrics_port, 0) << server.Stderr();
    for (int i = 0; i < n; ++i) {
      testing::RunResult r = testing::Run(
          {testing::Runfile("clients/joule_cli"),
           "--target=127.0.0.1:" + std::to_string(port), "--prompt=Once upon",
           "--max_tokens=16", "--temperature=0"},
          tmp_);
      EXPECT_EQ(r.code, 0) << r.err;
    }
    const std::string text =
        testing::Scrape(metrics_port, absl::Seconds(5)).value_or("");
    log_ = server.Stderr();
    return Counts(text, policy);
  }

  // joule_routed_requests_total{device="X",policy="P"} N, for `policy`.
  static std::map<std::string, int> Counts(const std::string& metrics,
                                           const std::string& policy) {
    std::map<std::string, int> out;
    const std::regex line("joule_routed_requests_total\\{device=\"([^\"]+)\","
                          "policy=\"([^\"]+)\"\\} ([0-9.e+]+)");
    for (std::sregex_iterator it(metrics.begin(), metrics.end(), line), end;
         it != end; ++it) {
      double v = 0;
      if ((*it)[2] == policy && absl::SimpleAtod((*it)[3].str(), &v))
        out[(*it)[1]] = static_cast<int>(v);
    }
    return out;
  }

  std::string tmp_, log_;
};

TEST_F(EnergyRoutingTest, EnergyPolicyFollowsThePowerModels) {
  auto frugal_ref = Route(
      {"--routing=energy", "--energy_model=cpu=500:5,cpu-ref=1:0.5"}, "energy",
      4);
  EXPECT_EQ(frugal_ref["cpu-ref"], 4) << log_;
  EXPECT_EQ(frugal_ref["cpu"], 0);
  // The routing log line gives both prices.
  EXPECT_THAT(log_, HasSubstr("-> cpu-ref (energy; cpu "));

  auto frugal_cpu = Route(
      {"--routing=energy", "--energy_model=cpu=1:0.5,cpu-ref=500:5"}, "energy",
      4);
  EXPECT_EQ(frugal_cpu["cpu"], 4) << log_;
  EXPECT_EQ(frugal_cpu["cpu-ref"], 0);
}

// Which of the two devices is faster depends on the build (a sanitizer's,
// the machine's cores), so each placement is checked against the prices the
// server logged for it: the least expected time wins, whatever the models.
TEST_F(EnergyRoutingTest, LatencyPolicyIgnoresThePowerModels) {
  for (const char* models :
       {"--energy_model=cpu=500:5,cpu-ref=1:0.5",
        "--energy_model=cpu=1:0.5,cpu-ref=500:5"}) {
    auto placed = Route({"--routing=latency", models}, "latency", 4);
    EXPECT_EQ(placed["cpu"] + placed["cpu-ref"], 4) << log_;
    const std::regex line(
        "-> (\\S+) \\(latency; cpu ([0-9.e+-]+) s, cpu-ref ([0-9.e+-]+) s\\)");
    int checked = 0;
    for (std::sregex_iterator it(log_.begin(), log_.end(), line), end;
         it != end; ++it, ++checked) {
      const double cpu = std::stod((*it)[2]), ref = std::stod((*it)[3]);
      EXPECT_EQ((*it)[1], cpu <= ref ? "cpu" : "cpu-ref") << it->str();
    }
    EXPECT_EQ(checked, 4) << log_;
  }
}

}  // namespace
}  // namespace joule
