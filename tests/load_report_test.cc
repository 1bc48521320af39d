#include "clients/load_report.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace joule::clients {
namespace {

using ::testing::HasSubstr;

TEST(LoadReportTest, NearestRankPercentiles) {
  std::vector<double> v = {5, 1, 4, 2, 3, 6, 7, 8, 9, 10};
  EXPECT_EQ(Percentile(v, 50), 5);
  EXPECT_EQ(Percentile(v, 90), 9);
  EXPECT_EQ(Percentile(v, 99), 10);
  EXPECT_EQ(Percentile(v, 0), 1);
  std::vector<double> empty;
  EXPECT_EQ(Percentile(empty, 50), 0);
}

TEST(LoadReportTest, TableAndGhzShapedJson) {
  std::vector<RequestRecord> records(4);
  for (int i = 0; i < 4; ++i) {
    records[i].ttft = absl::Milliseconds(10 * (i + 1));
    records[i].inter_token = {absl::Milliseconds(2), absl::Milliseconds(4)};
    records[i].total = absl::Milliseconds(100 * (i + 1));
    records[i].tokens = 3;
    records[i].energy["cpu"] = {3, 0.3, "modeled"};
  }
  records[3].code = "UNAVAILABLE";
  records[3].error = "device \"x\" down";
  LoadReport report(records, absl::Seconds(2), "{\"concurrency\": 2}");
  EXPECT_EQ(report.errors(), 1);
  const std::string table = report.Table();
  EXPECT_THAT(
      table,
      HasSubstr(
          "requests 4 (1 failed) in 2.00 s: 2.00 req/s, 6.0 generated tok/s"));
  EXPECT_THAT(
      table,
      HasSubstr("cpu            0.100000 J/token over 12 tokens (modeled)"));
  EXPECT_THAT(table, HasSubstr("[UNAVAILABLE] 1"));
  const std::string json = report.Json();
  for (const char* field :
       {"\"count\": 4", "\"total\": 2000000000", "\"average\": 250000000",
        "\"fastest\": 100000000", "\"slowest\": 400000000", "\"rps\": 2.0000",
        "{\"percentage\": 50, \"latency\": 200000000}",
        "\"statusCodeDistribution\": {\"OK\": 3, \"UNAVAILABLE\": 1}",
        "\"UNAVAILABLE: device \\\"x\\\" down\": 1",
        "\"options\": {\"concurrency\": 2}", "\"joulesPerToken\": 0.1",
        "\"interTokenLatency\": {\"count\": 8"}) {
    EXPECT_THAT(json, HasSubstr(field));
  }
}

TEST(LoadReportTest, CountsSuccessfulRequestsPerReplica) {
  std::vector<RequestRecord> records(4);
  records[0].instance = "replica-0";
  records[1].instance = "replica-1";
  records[2].instance = "replica-1";
  records[3].instance = "replica-0";
  records[3].code = "UNAVAILABLE";
  for (RequestRecord& r : records) r.total = absl::Milliseconds(5);
  LoadReport report(records, absl::Seconds(1), "");
  EXPECT_THAT(report.Json(),
              HasSubstr("\"instances\": {\"replica-0\": 1, \"replica-1\": 2}"));
  EXPECT_THAT(report.Table(), HasSubstr("Served by:"));
}

}  // namespace
}  // namespace joule::clients
