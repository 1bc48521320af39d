#include "device/riscv/sim/sim_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/tile_model_engine.h"
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

}  // namespace

absl::StatusOr<std::unique_ptr<SimServer>> SimServer::Start(
    const std::string& listen, const SimConfig& config,
    const SimServerOptions& options) {
  auto memory = Memory::Create(config.hbm_bytes);
  if (!memory.ok()) return memory.status();
  std::unique_ptr<SimServer> s(
      new SimServer(config, options, *std::move(memory)));
  if (absl::StartsWith(listen, "unix:")) {
    s->unix_path_ = listen.substr(5);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (s->unix_path_.empty() ||
        s->unix_path_.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad unix socket path '", s->unix_path_, "'"));
    }
    std::strcpy(addr.sun_path, s->unix_path_.c_str());
    ::unlink(s->unix_path_.c_str());
    s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr),
               sizeof(addr)) != 0 ||
        ::listen(s->listen_fd_, 8) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen,
                                                 ": ", std::strerror(errno)));
    }
    s->address_ = listen;
  } else if (absl::StartsWith(listen, "tcp:")) {
    const std::string rest = listen.substr(4);
    const size_t colon = rest.rfind(':');
    int port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &port)) {
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
    s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr),
               sizeof(addr)) != 0 ||
        ::listen(s->listen_fd_, 8) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen,
                                                 ": ", std::strerror(errno)));
    }
    socklen_t len = sizeof(addr);
    getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    s->address_ = absl::StrCat("tcp:", host, ":", ntohs(addr.sin_port));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address '", listen, "' must start with unix: or tcp:"));
  }
  return s;
}

SimServer::SimServer(const SimConfig& config, const SimServerOptions& options,
                     Memory memory)
    : config_(config),
      options_(options),
      engine_(std::make_unique<TileModelEngine>(config)),
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
  ::close(listen_fd_);
  listen_fd_ = -1;
}

void SimServer::ServeConnection(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kSendTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string payload;
  while (!stopping_) {
    // Idle between frames for as long as the client likes; once a frame
    // starts, all of it must arrive within the timeout (a deadline for the
    // whole frame: a per-read timeout would let a peer that trickles a byte
    // now and then hold the connection forever).
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 200);
    if (ready == 0) continue;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    Header header;
    absl::Status s = RecvFrame(fd, &header, &payload, kMaxPayload,
                               absl::Now() + options_.frame_timeout);
    if (!s.ok()) {
      if (absl::IsUnavailable(s)) break;  // Closed or stalled mid-frame.
      // Bad magic, version or size: say why, then close (cannot resync).
      SendFrame(fd, header.opcode | kReplyBit, header.request_id, Reply(s))
          .IgnoreError();
      break;
    }
    std::string reply;
    const bool keep = Handle(header, payload, &reply);
    if (!SendFrame(fd, header.opcode | kReplyBit, header.request_id, reply)
             .ok() ||
        !keep)
      break;
  }
  ::close(fd);
  absl::MutexLock l(&conn_mu_);
  --open_connections_;
}

bool SimServer::Handle(const Header& header, const std::string& payload,
                       std::string* reply) {
  Reader r(payload);
  auto bad = [&](const std::string& why) {
    *reply = Reply(absl::InvalidArgumentError(why));
    return true;
  };
  absl::MutexLock lock(&mu_);
  switch (header.opcode) {
    case kHello: {
      r.U16();
      if (!r.ok() || !r.done()) return bad("HELLO takes a u16 client version");
      Writer w;
      w.U16(kProtocolVersion)
          .U32(config_.clusters())
          .U32(config_.cores_per_cluster)
          .F64(config_.frequency_hz)
          .U64(config_.tcdm_bytes)
          .U64(memory_.size())
          .U32(static_cast<uint32_t>(config_.precision))
          .Str(config_.Describe());
      *reply = Reply(absl::OkStatus(), w.str());
      return true;
    }
    case kReset: {
      if (!payload.empty()) return bad("RESET takes no payload");
      memory_.Clear();
      counters_ = Counters();
      first_error_.reset();
      next_launch_ = 1;
      *reply = Reply(absl::OkStatus());
      return true;
    }
    case kWriteMem:
    case kLoadWeights: {
      const uint64_t addr = r.U64();
      if (!r.ok()) return bad("WRITE_MEM takes a u64 address and data");
      absl::string_view data = r.Rest();
      *reply = Reply(memory_.Write(addr, data.data(), data.size()));
      return true;
    }
    case kReadMem: {
      const uint64_t addr = r.U64(), len = r.U64();
      if (!r.ok() || !r.done())
        return bad("READ_MEM takes a u64 address and a u64 length");
      if (len > kMaxDataBytes) {
        *reply = Reply(absl::InvalidArgumentError(absl::StrFormat(
            "READ_MEM of %d bytes exceeds the %d-byte limit; read in pieces",
            len, kMaxDataBytes)));
        return true;
      }
      std::string data(len, '\0');
      absl::Status s = memory_.Read(addr, data.data(), len);
      *reply = Reply(s, data);
      return true;
    }
    case kPoll: {
      const uint64_t addr = r.U64();
      const uint32_t mask = r.U32(), value = r.U32(), timeout_ms = r.U32();
      if (!r.ok() || !r.done())
        return bad("POLL takes u64 address, u32 mask, value, timeout");
      // Kernels complete when launched, so nothing can change the word
      // while we hold the machine: check once, then report the timeout.
      uint32_t word = 0;
      absl::Status s = memory_.Read(addr, &word, 4);
      if (s.ok() && (word & mask) != value) {
        (void)timeout_ms;
        s = absl::DeadlineExceededError(
            absl::StrFormat("word at 0x%x is 0x%x, not 0x%x under mask 0x%x",
                            addr, word, value, mask));
      }
      Writer w;
      w.U32(word);
      *reply = Reply(s, w.str());
      return true;
    }
    case kLaunch: {
      const uint32_t kernel = r.U32(), n = r.U32();
      if (!r.ok() || n > kMaxArgs)
        return bad("LAUNCH takes u32 kernel, u32 n <= 64, n u64");
      std::vector<uint64_t> args(n);
      for (uint64_t& a : args) a = r.U64();
      if (!r.ok() || !r.done())
        return bad("LAUNCH payload does not match its argument count");
      const uint64_t id = next_launch_++;
      absl::Status s = engine_->Run(kernel, args, memory_, &counters_);
      if (!s.ok() && !first_error_.has_value()) {
        first_error_ = {
            id, absl::Status(s.code(), absl::StrFormat("launch %d: %s", id,
                                                       s.message()))};
      }
      Writer w;
      w.U64(id);
      *reply = Reply(absl::OkStatus(), w.str());
      return true;
    }
    case kWait: {
      const uint64_t id = r.U64();
      if (!r.ok() || !r.done()) return bad("WAIT takes a u64 launch id");
      if (id >= next_launch_) {
        *reply = Reply(absl::InvalidArgumentError(
            absl::StrFormat("no launch %d yet", id)));
        return true;
      }
      if (first_error_.has_value() && first_error_->first <= id) {
        *reply = Reply(first_error_->second);
        first_error_.reset();
        return true;
      }
      *reply = Reply(absl::OkStatus());
      return true;
    }
    case kReadCounters: {
      if (!payload.empty()) return bad("READ_COUNTERS takes no payload");
      Writer w;
      EncodeCounters(w, counters_);
      *reply = Reply(absl::OkStatus(), w.str());
      return true;
    }
  }
  *reply = Reply(absl::InvalidArgumentError(
      absl::StrFormat("unknown opcode %d", header.opcode)));
  return true;
}

}  // namespace joule::riscv
