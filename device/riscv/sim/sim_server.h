#ifndef JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_
#define JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device/riscv/sim/execution_engine.h"
#include "device/riscv/sim/memory.h"
#include "device/riscv/sim/protocol.h"
#include "device/riscv/sim/sim_config.h"

namespace joule::riscv {

struct SimServerOptions {
  // The shared secret every HELLO must carry (required).
  std::string token;
  // Listen on addresses other than loopback TCP and Unix sockets.
  bool allow_remote_listen = false;
  // Once a frame's first byte arrives, all of it must arrive within this;
  // a peer that stalls (or trickles bytes) mid-frame is dropped. A new
  // connection must also have authenticated within this.
  absl::Duration frame_timeout = absl::Seconds(10);
  // How long an authenticated HELLO waits for the current owner's
  // connection to end (a client reconnecting races its old connection's
  // teardown) before it is refused.
  absl::Duration owner_wait = absl::Seconds(1);
  // How kernels execute: "tile" (TileModelEngine: the reference's math, a
  // tile-level timing model) or "iss" (IssEngine: the cross-compiled
  // kernels at `kernel_image` on the instruction-level cluster simulator).
  std::string engine = "tile";
  std::string kernel_image;
  // For "tile": the ISS-measured fp32 utilizations (cost_table.h); empty:
  // the configuration's constant utilizations.
  std::string cost_table;
};

// One client connection's view of the machine.
struct SimSession {
  uint64_t id = 0;
  // Authenticated by HELLO; then it owns the machine until it disconnects.
  bool owner = false;
  // This session's launches, numbered from 1, and the first that failed:
  // per session, so one client's bad launch never fails another's WAIT.
  uint64_t next_launch = 1;
  std::optional<std::pair<uint64_t, absl::Status>> first_error;
};

// The simulator daemon's core: one simulated machine (memory, counters,
// launches) served over the bridge protocol to one owning session at a
// time. The first connection whose HELLO carries the token owns it; others
// are refused while it stays connected, and its memory and counters are
// cleared when it leaves, so no client sees or changes another's weights,
// KV cache or results.
class SimServer {
 public:
  // A machine without a socket: frames go through OpenSession/Handle
  // in-process (the fuzzer and tests).
  static absl::StatusOr<std::unique_ptr<SimServer>> Create(
      const SimConfig& config, const SimServerOptions& options);
  // Create() and listen on `listen`: "unix:/path/to/socket" (created 0600)
  // or "tcp:host:port" (port 0 picks one; loopback only unless
  // options.allow_remote_listen).
  static absl::StatusOr<std::unique_ptr<SimServer>> Start(
      const std::string& listen, const SimConfig& config,
      const SimServerOptions& options);
  ~SimServer();

  // Where clients connect, with the chosen port for tcp:...:0.
  const std::string& address() const { return address_; }
  // Accepts and serves clients until Stop().
  void Serve();
  void Stop();

  // The handling of one connection's frames, callable without a socket.
  SimSession OpenSession();
  // The payload limit for the session's next frame: a HELLO's until it has
  // authenticated, so unauthenticated peers cannot make the daemon buffer
  // megabytes.
  uint32_t MaxPayload(const SimSession& session) const;
  // Handles one request frame (its header already passed CheckHeader).
  // Returns false when the connection must close after `reply` is sent.
  bool Handle(SimSession& session, const Header& header,
              const std::string& payload, std::string* reply);
  // The connection ended. An owner's memory, counters and launches are
  // cleared before the next owner can connect.
  void CloseSession(SimSession& session);

 private:
  SimServer(const SimConfig& config, const SimServerOptions& options,
            Memory memory, std::unique_ptr<ExecutionEngine> engine);
  absl::Status Listen(const std::string& listen);
  void ServeConnection(int fd);
  bool Hello(SimSession& session, const std::string& payload,
             std::string* reply);
  // The owner's requests; each returns the reply's data or its error.
  absl::StatusOr<std::string> Dispatch(SimSession& session, uint16_t opcode,
                                       const std::string& payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> ReadMem(Reader& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> Poll(Reader& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> Launch(SimSession& session, Reader& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> Wait(SimSession& session, Reader& r);
  void ClearMachine() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SimConfig config_;
  const SimServerOptions options_;
  std::unique_ptr<ExecutionEngine> engine_;
  int listen_fd_ = -1;  // Set by Create; closed only by the destructor.
  std::string address_;
  std::string unix_path_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_session_{1};

  absl::Mutex mu_;  // The machine: one request at a time.
  Memory memory_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  uint64_t owner_ ABSL_GUARDED_BY(mu_) = 0;  // Session id; 0: none.

  // Connection threads are detached; the destructor waits for this to be 0.
  absl::Mutex conn_mu_;
  int open_connections_ ABSL_GUARDED_BY(conn_mu_) = 0;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_SIM_SERVER_H_
