#include "device/riscv/sim/sim_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/iss_engine.h"
#include "device/riscv/sim/tile_model_engine.h"
#include "device/riscv/sim/token.h"
#include "spdlog/spdlog.h"

namespace joule::riscv {
namespace {

constexpr int kMaxConnections = 16;
// Replies to a client that does not read them fail after this.
constexpr int kSendTimeoutSeconds = 10;
constexpr uint32_t kMaxArgs = 64;

std::string Reply(const absl::Status& s, const std::string& data = "") {
  return EncodeStatus(s) + (s.ok() ? data : "");
}

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SimServer>> SimServer::Create(
    const SimConfig& config, const SimServerOptions& options) {
  if (options.token.empty()) {
    return absl::InvalidArgumentError(
        "the simulator needs a token (riscv_simd --token_file)");
  }
  if (options.token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the token exceeds %d bytes", kMaxTokenBytes));
  }
  std::unique_ptr<ExecutionEngine> engine;
  if (options.engine == "tile") {
    std::optional<CostTable> table;
    if (!options.cost_table.empty()) {
      auto t = CostTable::Load(options.cost_table);
      if (!t.ok()) return t.status();
      table = *std::move(t);
    }
    engine = std::make_unique<TileModelEngine>(config, std::move(table));
  } else if (options.engine == "iss") {
    auto iss = IssEngine::Create(config, options.kernel_image);
    if (!iss.ok()) return iss.status();
    engine = *std::move(iss);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown engine '", options.engine, "' (tile or iss)"));
  }
  auto memory = Memory::Create(config.hbm_bytes);
  if (!memory.ok()) return memory.status();
  return std::unique_ptr<SimServer>(
      new SimServer(config, options, *std::move(memory), std::move(engine)));
}

absl::StatusOr<std::unique_ptr<SimServer>> SimServer::Start(
    const std::string& listen, const SimConfig& config,
    const SimServerOptions& options) {
  auto s = Create(config, options);
  if (!s.ok()) return s.status();
  if (absl::Status l = (*s)->Listen(listen); !l.ok()) return l;
  return s;
}

absl::Status SimServer::Listen(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:")) {
    const std::string path = listen.substr(5);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad unix socket path '", path, "'"));
    }
    // A stale socket from an earlier run is replaced; anything else at the
    // path is someone's file, not ours to delete.
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", path, "' exists and is not a socket"));
      }
      ::unlink(path.c_str());
    }
    std::strcpy(addr.sun_path, path.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // Owner-only from the moment it exists: connecting needs write access
    // to the socket file, and a chmod after bind would leave a window.
    const mode_t old_mask = ::umask(0177);
    const int bound =
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::umask(old_mask);
    if (bound != 0 || ::chmod(path.c_str(), 0600) != 0 ||
        ::listen(listen_fd_, 8) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen,
                                                 ": ", std::strerror(errno)));
    }
    unix_path_ = path;
    address_ = listen;
    return absl::OkStatus();
  }
  if (!absl::StartsWith(listen, "tcp:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address '", listen, "' must start with unix: or tcp:"));
  }
  const std::string rest = listen.substr(4);
  const size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad tcp address '", listen, "'"));
  }
  const std::string host = rest.substr(0, colon);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad IPv4 host '", host, "'"));
  }
  // A client that authenticates controls the simulated machine, and the
  // token crosses the wire in the clear: other hosts get no socket unless
  // asked for explicitly.
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127 &&
      !options_.allow_remote_listen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on ", listen,
        ": not a loopback address; use tcp:127.0.0.1:PORT or unix:PATH, or "
        "add --allow_remote_listen to accept connections from other hosts"));
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0 ||
      ::listen(listen_fd_, 8) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, ": ", std::strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  address_ = absl::StrCat("tcp:", host, ":", ntohs(addr.sin_port));
  return absl::OkStatus();
}

SimServer::SimServer(const SimConfig& config, const SimServerOptions& options,
                     Memory memory, std::unique_ptr<ExecutionEngine> engine)
    : config_(config),
      options_(options),
      engine_(std::move(engine)),
      memory_(std::move(memory)) {}

SimServer::~SimServer() {
  Stop();
  {
    // Connection threads notice stopping_ within their 200 ms poll.
    absl::MutexLock l(&conn_mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_mu_) {
      return open_connections_ == 0;
    };
    conn_mu_.Await(absl::Condition(&idle));
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

void SimServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
}

void SimServer::Serve() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      spdlog::error("accept failed: {}", std::strerror(errno));
      break;
    }
    absl::MutexLock l(&conn_mu_);
    if (open_connections_ >= kMaxConnections) {
      // Bounded threads and memory: refuse beyond the limit, saying why.
      SendFrame(fd, kReplyBit, 0,
                Reply(absl::ResourceExhaustedError("too many connections")))
          .IgnoreError();
      ::close(fd);
      continue;
    }
    ++open_connections_;
    std::thread([this, fd] { ServeConnection(fd); }).detach();
  }
  // The listening socket stays open until the destructor: Stop() may still
  // be shutting it down from another thread.
}

void SimServer::ServeConnection(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kSendTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SimSession session = OpenSession();
  // Unauthenticated connections may not sit on one of the few connection
  // slots: they must HELLO promptly.
  const absl::Time hello_by = absl::Now() + options_.frame_timeout;
  std::string payload;
  while (!stopping_ && (session.owner || absl::Now() < hello_by)) {
    // Idle between frames for as long as the owner likes; once a frame
    // starts, all of it must arrive within the timeout (a deadline for the
    // whole frame: a per-read timeout would let a peer that trickles a byte
    // now and then hold the connection forever).
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 200);
    if (ready == 0) continue;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    Header header;
    absl::Status s = RecvFrame(fd, &header, &payload, MaxPayload(session),
                               absl::Now() + options_.frame_timeout);
    if (!s.ok()) {
      if (absl::IsUnavailable(s)) break;  // Closed or stalled mid-frame.
      // Bad magic, version or size: say why, then close (cannot resync).
      SendFrame(fd, header.opcode | kReplyBit, header.request_id, Reply(s))
          .IgnoreError();
      break;
    }
    std::string reply;
    const bool keep = Handle(session, header, payload, &reply);
    if (!SendFrame(fd, header.opcode | kReplyBit, header.request_id, reply)
             .ok() ||
        !keep)
      break;
  }
  CloseSession(session);
  ::close(fd);
  absl::MutexLock l(&conn_mu_);
  --open_connections_;
}

SimSession SimServer::OpenSession() {
  SimSession session;
  session.id = next_session_++;
  return session;
}

uint32_t SimServer::MaxPayload(const SimSession& session) const {
  return session.owner ? kMaxPayload : kMaxHelloPayload;
}

void SimServer::CloseSession(SimSession& session) {
  if (!session.owner) return;
  absl::MutexLock lock(&mu_);
  if (owner_ == session.id) {
    ClearMachine();
    owner_ = 0;
  }
  session.owner = false;
}

void SimServer::ClearMachine() {
  memory_.Clear();
  counters_ = Counters();
}

bool SimServer::Handle(SimSession& session, const Header& header,
                       const std::string& payload, std::string* reply) {
  if (header.opcode == kHello) return Hello(session, payload, reply);
  if (!session.owner) {
    // Nothing but HELLO reaches the machine before authentication.
    *reply = Reply(absl::UnauthenticatedError(
        "HELLO with the daemon's token first (its --token_file)"));
    return false;
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> data = Dispatch(session, header.opcode, payload);
  *reply = data.ok() ? Reply(absl::OkStatus(), *data) : Reply(data.status());
  return true;
}

bool SimServer::Hello(SimSession& session, const std::string& payload,
                      std::string* reply) {
  Reader r(payload);
  r.U16();  // The client's version; the header's already matched ours.
  const absl::string_view token = r.Bytes(r.U32());
  if (!r.ok() || !r.done()) {
    *reply = Reply(absl::InvalidArgumentError(
        "HELLO takes a u16 client version and a string token"));
    return false;
  }
  if (!TokenMatches(options_.token, token)) {
    *reply = Reply(absl::UnauthenticatedError(
        "HELLO: wrong token (use the daemon's --token_file)"));
    return false;
  }
  absl::MutexLock lock(&mu_);
  if (!session.owner) {
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return owner_ == 0 || stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&free), options_.owner_wait);
    if (owner_ != 0 || stopping_) {
      *reply = Reply(absl::UnavailableError(
          "the simulator is in use by another session (it serves one owner "
          "at a time)"));
      return false;
    }
    owner_ = session.id;
    session.owner = true;
  }
  HelloReply hello;
  hello.clusters = config_.clusters();
  hello.cores_per_cluster = config_.cores_per_cluster;
  hello.frequency_hz = config_.frequency_hz;
  hello.tcdm_bytes = config_.tcdm_bytes;
  hello.hbm_bytes = memory_.size();
  hello.precision = static_cast<uint32_t>(config_.precision);
  hello.description = absl::StrCat(
      config_.Describe(), ", engine ", options_.engine,
      options_.engine == "iss" ? " (instruction-level)" : " (tile model)");
  Writer w;
  EncodeHelloReply(w, hello);
  *reply = Reply(absl::OkStatus(), w.str());
  return true;
}

absl::StatusOr<std::string> SimServer::Dispatch(SimSession& session,
                                                uint16_t opcode,
                                                const std::string& payload) {
  Reader r(payload);
  switch (opcode) {
    case kReset:
      if (!payload.empty()) return Invalid("RESET takes no payload");
      ClearMachine();
      session.first_error.reset();
      session.next_launch = 1;
      return std::string();
    case kWriteMem:
    case kLoadWeights: {
      const uint64_t addr = r.U64();
      if (!r.ok()) return Invalid("WRITE_MEM takes a u64 address and data");
      const absl::string_view data = r.Rest();
      if (absl::Status s = memory_.Write(addr, data.data(), data.size());
          !s.ok())
        return s;
      return std::string();
    }
    case kReadMem:
      return ReadMem(r);
    case kPoll:
      return Poll(r);
    case kLaunch:
      return Launch(session, r);
    case kWait:
      return Wait(session, r);
    case kReadCounters: {
      if (!payload.empty()) return Invalid("READ_COUNTERS takes no payload");
      Writer w;
      EncodeCounters(w, counters_);
      return std::move(w.str());
    }
  }
  return Invalid(absl::StrFormat("unknown opcode %d", opcode));
}

absl::StatusOr<std::string> SimServer::ReadMem(Reader& r) {
  const uint64_t addr = r.U64(), len = r.U64();
  if (!r.ok() || !r.done())
    return Invalid("READ_MEM takes a u64 address and a u64 length");
  if (len > kMaxDataBytes) {
    return Invalid(absl::StrFormat(
        "READ_MEM of %d bytes exceeds the %d-byte limit; read in pieces", len,
        kMaxDataBytes));
  }
  if (absl::Status s = memory_.Check(addr, len); !s.ok()) return s;
  std::string data(len, '\0');
  memory_.Read(addr, data.data(), len).IgnoreError();  // Checked above.
  return data;
}

absl::StatusOr<std::string> SimServer::Poll(Reader& r) {
  const uint64_t addr = r.U64();
  const uint32_t mask = r.U32(), value = r.U32();
  r.U32();  // Timeout: see below.
  if (!r.ok() || !r.done())
    return Invalid("POLL takes u64 address, u32 mask, value, timeout");
  // Kernels complete when launched, so nothing can change the word while
  // we hold the machine: check once, then report the timeout.
  uint32_t word = 0;
  if (absl::Status s = memory_.Read(addr, &word, 4); !s.ok()) return s;
  if ((word & mask) != value) {
    return absl::DeadlineExceededError(
        absl::StrFormat("word at 0x%x is 0x%x, not 0x%x under mask 0x%x", addr,
                        word, value, mask));
  }
  Writer w;
  w.U32(word);
  return std::move(w.str());
}

absl::StatusOr<std::string> SimServer::Launch(SimSession& session, Reader& r) {
  const uint32_t kernel = r.U32(), n = r.U32();
  if (!r.ok() || n > kMaxArgs)
    return Invalid("LAUNCH takes u32 kernel, u32 n <= 64, n u64");
  std::vector<uint64_t> args(n);
  for (uint64_t& a : args) a = r.U64();
  if (!r.ok() || !r.done())
    return Invalid("LAUNCH payload does not match its argument count");
  const uint64_t id = session.next_launch++;
  absl::Status s = engine_->Run(kernel, args, memory_, &counters_);
  if (!s.ok() && !session.first_error.has_value()) {
    session.first_error = {
        id, absl::Status(s.code(),
                         absl::StrFormat("launch %d: %s", id, s.message()))};
  }
  Writer w;
  w.U64(id);
  return std::move(w.str());
}

absl::StatusOr<std::string> SimServer::Wait(SimSession& session, Reader& r) {
  const uint64_t id = r.U64();
  if (!r.ok() || !r.done()) return Invalid("WAIT takes a u64 launch id");
  if (id >= session.next_launch) {
    return Invalid(absl::StrFormat("no launch %d yet", id));
  }
  if (session.first_error.has_value() && session.first_error->first <= id) {
    absl::Status s = session.first_error->second;
    session.first_error.reset();
    return s;
  }
  return std::string();
}

}  // namespace joule::riscv
