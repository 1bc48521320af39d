#ifndef JOULE_DEVICE_RISCV_SIM_PROTOCOL_H_
#define JOULE_DEVICE_RISCV_SIM_PROTOCOL_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// The bridge between the RISC-V device driver and the simulator daemon.
// protocol.md beside this file is the specification.
namespace joule::riscv {

inline constexpr uint32_t kMagic = 0x5356524A;  // "JRVS" little-endian.
// 2: HELLO carries the shared token, and the daemon serves one owner.
inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr size_t kHeaderBytes = 16;
// The largest payload of any frame. The driver splits its WRITE_MEM,
// LOAD_WEIGHTS and READ_MEM transfers at kMaxDataBytes, so no legitimate
// frame is larger (a step's inputs and logits are a few MiB at most for the
// models it serves); a receiver refuses bigger ones from the header alone.
inline constexpr uint32_t kMaxPayload = 4u << 20;
// Data bytes one WRITE_MEM, LOAD_WEIGHTS or READ_MEM carries, leaving room
// for the address (requests) or the status (replies).
inline constexpr uint32_t kMaxDataBytes = kMaxPayload - 64;
// Until a connection has authenticated, only a HELLO may arrive: a u16
// version and the token as a string (u32 length + bytes).
inline constexpr uint32_t kMaxTokenBytes = 1024;
inline constexpr uint32_t kMaxHelloPayload = 2 + 4 + kMaxTokenBytes;
inline constexpr uint16_t kReplyBit = 0x8000;

enum Opcode : uint16_t {
  kHello = 1,
  kReset = 2,
  kWriteMem = 3,
  kReadMem = 4,
  kPoll = 5,
  kLoadWeights = 6,
  kLaunch = 7,
  kWait = 8,
  kReadCounters = 9,
};

enum Kernel : uint32_t {
  kGemm = 1,       // Y[N,M] (+)= X[N,K] W[M,K]^T
  kRmsNorm = 2,    // out[N,D] = x * w / rms(x)
  kRope = 3,       // rotate q and k rows by their positions
  kAttention = 4,  // FlashAttention-2 over each query's cached keys
  kSwiGlu = 5,     // out[N,H] = silu(h1) * h3
  kCopy = 6,       // DMA copies from a descriptor list
};

struct Header {
  uint32_t magic = kMagic;
  uint16_t version = kProtocolVersion;
  uint16_t opcode = 0;
  uint32_t request_id = 0;
  uint32_t payload_bytes = 0;
};

// Little-endian encoding of headers and payload fields.
std::string EncodeHeader(const Header& h);
Header DecodeHeader(const unsigned char* bytes);

class Writer {
 public:
  Writer& U16(uint16_t v) { return Raw(&v, 2); }
  Writer& U32(uint32_t v) { return Raw(&v, 4); }
  Writer& I32(int32_t v) { return Raw(&v, 4); }
  Writer& U64(uint64_t v) { return Raw(&v, 8); }
  Writer& F64(double v) { return Raw(&v, 8); }
  Writer& Bytes(absl::string_view b) { return Raw(b.data(), b.size()); }
  Writer& Str(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    return Bytes(s);
  }
  Writer& Raw(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string& str() { return buf_; }

 private:
  std::string buf_;
};

// Reads payload fields; any read past the end sets !ok() and yields zeros,
// so handlers check ok() once at the end.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  uint16_t U16() { return Get<uint16_t>(); }
  uint32_t U32() { return Get<uint32_t>(); }
  int32_t I32() { return Get<int32_t>(); }
  uint64_t U64() { return Get<uint64_t>(); }
  double F64() { return Get<double>(); }
  absl::string_view Bytes(size_t n) {
    if (n > data_.size() - pos_) {
      ok_ = false;
      pos_ = data_.size();
      return {};
    }
    absl::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string Str() { return std::string(Bytes(U32())); }
  absl::string_view Rest() { return Bytes(data_.size() - pos_); }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == data_.size(); }

 private:
  template <typename T>
  T Get() {
    T v{};
    absl::string_view b = Bytes(sizeof(T));
    if (ok_) std::memcpy(&v, b.data(), sizeof(T));
    return v;
  }
  absl::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Replies start with the status; data follows only when it is OK.
std::string EncodeStatus(const absl::Status& s);
absl::Status DecodeStatus(Reader& r);

// The daemon's counters since its last reset.
struct Counters {
  uint64_t cycles = 0;
  uint64_t flops[4] = {0, 0, 0, 0};  // By precision: fp64, fp32, fp16, fp8.
  uint64_t dma_bytes = 0;            // HBM <-> TCDM traffic.
  uint64_t tcdm_accesses = 0;
  uint64_t launches = 0;
  double energy_joules = 0;
};
void EncodeCounters(Writer& w, const Counters& c);
Counters DecodeCounters(Reader& r);

// HELLO's reply data: the daemon's protocol version and its machine.
struct HelloReply {
  uint16_t version = kProtocolVersion;
  uint32_t clusters = 0;
  uint32_t cores_per_cluster = 0;
  double frequency_hz = 0;
  uint64_t tcdm_bytes = 0;  // Per cluster.
  uint64_t hbm_bytes = 0;
  uint32_t precision = 0;
  std::string description;
};
void EncodeHelloReply(Writer& w, const HelloReply& h);
// DataLoss if the reply is cut short or has bytes left over.
absl::StatusOr<HelloReply> DecodeHelloReply(absl::string_view data);

// OK for a header this side can read a payload after: the magic, the
// version, and a payload of at most `max_payload` bytes.
absl::Status CheckHeader(const Header& header, uint32_t max_payload);

// Blocking I/O on a connected socket, for both sides. Reads fail with
// UNAVAILABLE on a closed or broken connection, or once `deadline` passes
// (absl::InfiniteFuture(): only the socket's own timeout applies).
absl::Status SendAll(int fd, absl::string_view data);
absl::Status RecvAll(int fd, void* buf, size_t n,
                     absl::Time deadline = absl::InfiniteFuture());
// One whole frame: header and payload, both by `deadline`. Refuses, from the
// header alone, payloads over `max_payload`; the payload then grows as its
// bytes arrive, so a header announcing megabytes costs nothing until they
// are actually sent.
absl::Status RecvFrame(int fd, Header* header, std::string* payload,
                       uint32_t max_payload = kMaxPayload,
                       absl::Time deadline = absl::InfiniteFuture());
absl::Status SendFrame(int fd, uint16_t opcode, uint32_t request_id,
                       absl::string_view payload);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_PROTOCOL_H_
