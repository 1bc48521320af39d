#ifndef JOULE_CLIENTS_LOAD_REPORT_H_
#define JOULE_CLIENTS_LOAD_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace joule::clients {

// What one streamed request did, as the client saw it.
struct RequestRecord {
  std::string code = "OK";                         // gRPC status name.
  std::string error;                               // Message, for failures.
  absl::Duration ttft = absl::InfiniteDuration();  // Infinite: no token.
  std::vector<absl::Duration> inter_token;
  absl::Duration total;
  int tokens = 0;
  // Per device: tokens with a known energy, their joules, and the source.
  struct Energy {
    int tokens = 0;
    double joules = 0;
    std::string source;
  };
  std::map<std::string, Energy> energy;
  // The replica that served it (GenerationSummary.server_instance).
  std::string instance;
};

// Value at percentile p (0-100) of `v` (sorted in place), nearest rank.
double Percentile(std::vector<double>& v, double p);

// Sums up a load run.
class LoadReport {
 public:
  LoadReport(std::vector<RequestRecord> records, absl::Duration wall,
             std::string options_json);

  // Human-readable summary.
  std::string Table() const;
  // ghz's JSON report (count, total, average, fastest, slowest, rps,
  // latencyDistribution, statusCodeDistribution, errorDistribution; times in
  // ns), with Joule's figures under "joule".
  std::string Json() const;

  int errors() const { return errors_; }

 private:
  std::vector<RequestRecord> records_;
  absl::Duration wall_;
  std::string options_json_;
  int errors_ = 0;
  // Totals over all records, gathered once.
  std::vector<double> ttft_, itl_, total_;  // Seconds.
  std::map<std::string, int> codes_, error_messages_;
  std::map<std::string, RequestRecord::Energy> energy_;
  std::map<std::string, int> instances_;  // Successful requests per replica.
  int64_t tokens_ = 0;
};

}  // namespace joule::clients

#endif  // JOULE_CLIENTS_LOAD_REPORT_H_
