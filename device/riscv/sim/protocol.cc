#include "device/riscv/sim/protocol.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace joule::riscv {

std::string EncodeHeader(const Header& h) {
  Writer w;
  w.U32(h.magic)
      .U16(h.version)
      .U16(h.opcode)
      .U32(h.request_id)
      .U32(h.payload_bytes);
  return w.str();
}

Header DecodeHeader(const unsigned char* b) {
  Header h;
  std::memcpy(&h.magic, b, 4);
  std::memcpy(&h.version, b + 4, 2);
  std::memcpy(&h.opcode, b + 6, 2);
  std::memcpy(&h.request_id, b + 8, 4);
  std::memcpy(&h.payload_bytes, b + 12, 4);
  return h;
}

std::string EncodeStatus(const absl::Status& s) {
  Writer w;
  w.I32(static_cast<int32_t>(s.code())).Str(s.message());
  return w.str();
}

absl::Status DecodeStatus(Reader& r) {
  const int32_t code = r.I32();
  const std::string message = r.Str();
  if (!r.ok()) return absl::DataLossError("reply too short for a status");
  if (code < 0 || code > 16) {
    return absl::DataLossError(
        absl::StrFormat("reply has status code %d", code));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

void EncodeCounters(Writer& w, const Counters& c) {
  w.U64(c.cycles);
  for (uint64_t f : c.flops) w.U64(f);
  w.U64(c.dma_bytes).U64(c.tcdm_accesses).U64(c.launches).F64(c.energy_joules);
}

Counters DecodeCounters(Reader& r) {
  Counters c;
  c.cycles = r.U64();
  for (uint64_t& f : c.flops) f = r.U64();
  c.dma_bytes = r.U64();
  c.tcdm_accesses = r.U64();
  c.launches = r.U64();
  c.energy_joules = r.F64();
  return c;
}

absl::Status SendAll(int fd, absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("send failed: ", std::strerror(errno)));
    }
    off += n;
  }
  return absl::OkStatus();
}

namespace {

// Waits until `fd` has bytes (or EOF) to read, or `deadline` passes.
absl::Status AwaitReadable(int fd, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return absl::OkStatus();
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError("timed out in the middle of a frame");
    }
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
    const int ready = ::poll(&p, 1, ms);
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat("poll failed: ", std::strerror(errno)));
    }
  }
}

// Reads what has arrived, up to `n` bytes, into `buf`: at least one byte.
absl::StatusOr<size_t> RecvSome(int fd, char* buf, size_t n,
                                absl::Time deadline) {
  while (true) {
    if (absl::Status s = AwaitReadable(fd, deadline); !s.ok()) return s;
    const ssize_t r = ::recv(fd, buf, n, 0);
    if (r > 0) return static_cast<size_t>(r);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return absl::UnavailableError("connection closed");
    return absl::UnavailableError(
        errno == EAGAIN || errno == EWOULDBLOCK
            ? std::string("timed out waiting for the peer")
            : absl::StrCat("recv failed: ", std::strerror(errno)));
  }
}

}  // namespace

absl::Status RecvAll(int fd, void* buf, size_t n, absl::Time deadline) {
  char* out = static_cast<char*>(buf);
  for (size_t off = 0; off < n;) {
    absl::StatusOr<size_t> got = RecvSome(fd, out + off, n - off, deadline);
    if (!got.ok()) return got.status();
    off += *got;
  }
  return absl::OkStatus();
}

void EncodeHelloReply(Writer& w, const HelloReply& h) {
  w.U16(h.version)
      .U32(h.clusters)
      .U32(h.cores_per_cluster)
      .F64(h.frequency_hz)
      .U64(h.tcdm_bytes)
      .U64(h.hbm_bytes)
      .U32(h.precision)
      .Str(h.description);
}

absl::StatusOr<HelloReply> DecodeHelloReply(absl::string_view data) {
  Reader r(data);
  HelloReply h;
  h.version = r.U16();
  h.clusters = r.U32();
  h.cores_per_cluster = r.U32();
  h.frequency_hz = r.F64();
  h.tcdm_bytes = r.U64();
  h.hbm_bytes = r.U64();
  h.precision = r.U32();
  h.description = std::string(r.Str());
  if (!r.ok() || !r.done()) {
    return absl::DataLossError("malformed HELLO reply");
  }
  return h;
}

absl::Status CheckHeader(const Header& header, uint32_t max_payload) {
  if (header.magic != kMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad magic 0x%08x (expected 0x%08x)", header.magic, kMagic));
  }
  if (header.version != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("protocol version %d; this side speaks %d",
                        header.version, kProtocolVersion));
  }
  if (header.payload_bytes > max_payload) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("payload of %d bytes exceeds the limit of %d",
                        header.payload_bytes, max_payload));
  }
  return absl::OkStatus();
}

absl::Status RecvFrame(int fd, Header* header, std::string* payload,
                       uint32_t max_payload, absl::Time deadline) {
  unsigned char raw[kHeaderBytes];
  if (absl::Status s = RecvAll(fd, raw, sizeof(raw), deadline); !s.ok())
    return s;
  *header = DecodeHeader(raw);
  if (absl::Status s = CheckHeader(*header, max_payload); !s.ok()) return s;
  // Grown by what arrives, never by what the header announces.
  payload->clear();
  char chunk[64 << 10];
  while (payload->size() < header->payload_bytes) {
    const size_t want =
        std::min(sizeof(chunk), header->payload_bytes - payload->size());
    absl::StatusOr<size_t> got = RecvSome(fd, chunk, want, deadline);
    if (!got.ok()) return got.status();
    payload->append(chunk, *got);
  }
  return absl::OkStatus();
}

absl::Status SendFrame(int fd, uint16_t opcode, uint32_t request_id,
                       absl::string_view payload) {
  Header h;
  h.opcode = opcode;
  h.request_id = request_id;
  h.payload_bytes = static_cast<uint32_t>(payload.size());
  std::string frame = EncodeHeader(h);
  frame.append(payload.data(), payload.size());
  return SendAll(fd, frame);
}

}  // namespace joule::riscv
