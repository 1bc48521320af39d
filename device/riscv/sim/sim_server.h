#ifndef JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_
#define JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device/riscv/sim/execution_engine.h"
#include "device/riscv/sim/memory.h"
#include "device/riscv/sim/protocol.h"
#include "device/riscv/sim/sim_config.h"

namespace joule::riscv {

struct SimServerOptions {
  // Once a frame's first byte arrives, all of it must arrive within this;
  // a peer that stalls (or trickles bytes) mid-frame is dropped.
  absl::Duration frame_timeout = absl::Seconds(10);
};

// The simulator daemon's core: one simulated machine (memory, counters,
// launches) served to clients over the bridge protocol.
class SimServer {
 public:
  // `listen`: "unix:/path/to/socket" or "tcp:host:port" (port 0 picks one).
  static absl::StatusOr<std::unique_ptr<SimServer>> Start(
      const std::string& listen, const SimConfig& config,
      const SimServerOptions& options = {});
  ~SimServer();

  // Where clients connect, with the chosen port for tcp:...:0.
  const std::string& address() const { return address_; }
  // Accepts and serves clients until Stop().
  void Serve();
  void Stop();

  // Handles one request frame; public for tests of the message handling.
  // Returns false when the connection must close after `reply` is sent.
  bool Handle(const Header& header, const std::string& payload,
              std::string* reply);

 private:
  SimServer(const SimConfig& config, const SimServerOptions& options,
            Memory memory);
  void ServeConnection(int fd);

  const SimConfig config_;
  const SimServerOptions options_;
  std::unique_ptr<ExecutionEngine> engine_;
  int listen_fd_ = -1;
  std::string address_;
  std::string unix_path_;
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;  // The machine: one request at a time.
  Memory memory_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_launch_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<std::pair<uint64_t, absl::Status>> first_error_
      ABSL_GUARDED_BY(mu_);

  // Connection threads are detached; the destructor waits for this to be 0.
  absl::Mutex conn_mu_;
  int open_connections_ ABSL_GUARDED_BY(conn_mu_) = 0;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_
