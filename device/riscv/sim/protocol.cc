#include "device/riscv/sim/protocol.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

absl::Status RecvAll(int fd, void* buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::recv(fd, static_cast<char*>(buf) + off, n - off, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return absl::UnavailableError("connection closed");
    if (r < 0) {
      return absl::UnavailableError(
          errno == EAGAIN || errno == EWOULDBLOCK
              ? std::string("timed out waiting for the peer")
              : absl::StrCat("recv failed: ", std::strerror(errno)));
    }
    off += r;
  }
  return absl::OkStatus();
}

absl::Status RecvFrame(int fd, Header* header, std::string* payload) {
  unsigned char raw[kHeaderBytes];
  if (absl::Status s = RecvAll(fd, raw, sizeof(raw)); !s.ok()) return s;
  *header = DecodeHeader(raw);
  if (header->magic != kMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad magic 0x%08x (expected 0x%08x)", header->magic, kMagic));
  }
  if (header->version != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("protocol version %d; this side speaks %d",
                        header->version, kProtocolVersion));
  }
  if (header->payload_bytes > kMaxPayload) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("payload of %d bytes exceeds the limit of %d",
                        header->payload_bytes, kMaxPayload));
  }
  payload->resize(header->payload_bytes);
  return RecvAll(fd, payload->data(), payload->size());
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
