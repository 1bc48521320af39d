// The simulator daemon's handling of bridge frames from hostile peers: two
// sessions share one machine, and each frame goes through the header check
// and Handle exactly as ServeConnection would run it. Nothing may crash or
// touch memory outside simulated HBM (ASan), every reply must carry a
// decodable status, and the ownership rules must hold: at most one owner,
// and nothing but HELLO succeeds for a session that does not own the machine.
// The driver's side reads the HELLO reply from a daemon it may not trust:
// DecodeHelloReply must refuse with DataLoss whatever does not re-encode to
// exactly its bytes, and must read every HELLO reply the daemon sends.
//
// Input: records of [u8 flags: bit 0 the session, bit 1 a reply to the
// driver's HELLO instead of a frame to the daemon] [16-byte header]
// [payload: the header's payload_bytes, or what remains of the input]. The
// token is kFuzzToken; make_seeds.py writes seeds that HELLO with it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "device/riscv/sim/protocol.h"
#include "device/riscv/sim/sim_config.h"
#include "device/riscv/sim/sim_server.h"

namespace {

using joule::riscv::Header;
using joule::riscv::SimServer;
using joule::riscv::SimSession;

constexpr char kFuzzToken[] = "fuzz-token";
// Small HBM: bounds are easy to reach, and no kernel the memory can hold
// runs for long.
constexpr int64_t kHbmBytes = int64_t{1} << 20;

SimServer& Server() {
  static SimServer* const server = [] {
    joule::riscv::SimConfig config;
    config.hbm_bytes = kHbmBytes;
    joule::riscv::SimServerOptions options;
    options.token = kFuzzToken;
    options.owner_wait = absl::ZeroDuration();
    auto s = SimServer::Create(config, options);
    if (!s.ok()) __builtin_trap();
    return s->release();
  }();
  return *server;
}

void CheckReply(const SimSession& session, const Header& header,
                const std::string& reply) {
  joule::riscv::Reader r(reply);
  const absl::Status status = joule::riscv::DecodeStatus(r);
  if (absl::IsDataLoss(status)) __builtin_trap();  // Undecodable reply.
  if (status.ok() && header.opcode != joule::riscv::kHello && !session.owner)
    __builtin_trap();  // A non-owner reached the machine.
  if (status.ok() && header.opcode == joule::riscv::kHello) {
    auto hello = joule::riscv::DecodeHelloReply(r.Rest());
    if (!hello.ok() || hello->version != joule::riscv::kProtocolVersion ||
        hello->hbm_bytes != static_cast<uint64_t>(kHbmBytes)) {
      __builtin_trap();  // The driver would refuse this daemon.
    }
  }
}

// As RiscvDevice::Call and CheckHello read the reply to their HELLO. Call's
// check of the reply's opcode and request id is left out: it decides only
// whether these bytes reach the decoders, not what they see.
void CheckHelloReply(const std::string& payload) {
  joule::riscv::Reader r(payload);
  if (!joule::riscv::DecodeStatus(r).ok()) return;
  const absl::string_view data = r.Rest();
  auto hello = joule::riscv::DecodeHelloReply(data);
  if (!hello.ok()) {
    if (!absl::IsDataLoss(hello.status())) __builtin_trap();
    return;
  }
  // Every field is fixed-size or length-prefixed: bytes that decode are
  // exactly the encoding of what they decode to.
  joule::riscv::Writer w;
  joule::riscv::EncodeHelloReply(w, *hello);
  if (w.str() != data) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SimServer& server = Server();
  SimSession sessions[2] = {server.OpenSession(), server.OpenSession()};
  size_t pos = 0;
  while (size - pos >= 1 + joule::riscv::kHeaderBytes) {
    SimSession& session = sessions[data[pos] & 1];
    const bool to_driver = data[pos] & 2;
    const Header header = joule::riscv::DecodeHeader(data + pos + 1);
    pos += 1 + joule::riscv::kHeaderBytes;
    if (to_driver) {
      // RecvFrame's check, with the driver's limit.
      if (!joule::riscv::CheckHeader(header, joule::riscv::kMaxPayload).ok())
        continue;
      const size_t n = std::min<size_t>(header.payload_bytes, size - pos);
      CheckHelloReply(
          std::string(reinterpret_cast<const char*>(data + pos), n));
      pos += n;
      continue;
    }
    bool keep = false;
    if (joule::riscv::CheckHeader(header, server.MaxPayload(session)).ok()) {
      const size_t n = std::min<size_t>(header.payload_bytes, size - pos);
      const std::string payload(reinterpret_cast<const char*>(data + pos), n);
      pos += n;
      std::string reply;
      keep = server.Handle(session, header, payload, &reply);
      CheckReply(session, header, reply);
    }
    if (sessions[0].owner && sessions[1].owner) __builtin_trap();
    if (!keep) {  // The daemon closes the connection; the peer reconnects.
      server.CloseSession(session);
      session = server.OpenSession();
    }
  }
  server.CloseSession(sessions[0]);
  server.CloseSession(sessions[1]);
  return 0;
}
