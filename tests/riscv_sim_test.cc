// The RISC-V simulator daemon over its bridge protocol: round trips,
// malformed input, kernel results and counters against analytic counts.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "device/riscv/sim/memory.h"
#include "device/riscv/sim/protocol.h"
#include "device/riscv/sim/sim_config.h"
#include "device/riscv/sim/sim_server.h"
#include "device/riscv/sim/tile_model_engine.h"
#include "device/riscv/sim/token.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_paths.h"

namespace joule::riscv {
namespace {

using ::testing::HasSubstr;

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimConfig config;
    config.hbm_bytes = 64 << 20;
    // Sandboxed tests share PIDs: a fresh private directory keeps the
    // socket path unique and short enough for sun_path.
    char dir[] = "/tmp/jsimXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    path_ = std::string(dir) + "/s.sock";
    SimServerOptions options;
    options.token = std::string(kToken);
    options.frame_timeout = absl::Milliseconds(500);
    options.owner_wait = absl::Milliseconds(100);
    auto s = SimServer::Start("unix:" + path_, config, options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    thread_ = std::thread([this] { server_->Serve(); });
    fd_ = Connect();
    absl::Status hello = Hello(fd_);
    ASSERT_TRUE(hello.ok()) << hello;
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    server_->Stop();
    thread_.join();
  }
  int Connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
              0)
        << path_ << ": " << std::strerror(errno);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  }
  static std::string HelloPayload(absl::string_view token = kToken) {
    Writer w;
    w.U16(kProtocolVersion).Str(token);
    return w.str();
  }
  absl::Status Hello(int fd, absl::string_view token = kToken) {
    return Call(kHello, HelloPayload(token), nullptr, fd);
  }
  // The owner's connection ends; the daemon releases the machine on its own
  // thread, so the next HELLO may briefly find it still owned.
  int ReconnectAsOwner() {
    if (fd_ >= 0) ::close(fd_);
    for (int i = 0; i < 100; ++i) {
      fd_ = Connect();
      if (Hello(fd_).ok()) return fd_;
      ::close(fd_);
      absl::SleepFor(absl::Milliseconds(20));  // Junk connections drain.
    }
    ADD_FAILURE() << "no HELLO accepted";
    return fd_ = -1;
  }
  // Whether the daemon closed `fd` (EOF within a second).
  static bool ClosedByPeer(int fd) {
    pollfd p{fd, POLLIN, 0};
    char c;
    return ::poll(&p, 1, 1000) > 0 && ::recv(fd, &c, 1, 0) == 0;
  }

  static constexpr absl::string_view kToken = "test-token-0123456789";

  // One request; the reply's status, with its data in *data.
  absl::Status Call(uint16_t op, const std::string& payload,
                    std::string* data = nullptr, int fd = -1) {
    fd = fd < 0 ? fd_ : fd;
    EXPECT_TRUE(SendFrame(fd, op, ++id_, payload).ok());
    Header h;
    std::string reply;
    absl::Status s = RecvFrame(fd, &h, &reply);
    if (!s.ok()) return s;
    Reader r(reply);
    absl::Status status = DecodeStatus(r);
    // A connection refused at accept (too many open) answers no request:
    // opcode 0, id 0.
    if (h.opcode == kReplyBit && h.request_id == 0 && !status.ok())
      return status;
    EXPECT_EQ(h.opcode, op | kReplyBit);
    EXPECT_EQ(h.request_id, id_);
    if (data) *data = std::string(r.Rest());
    return status;
  }
  absl::Status Write(uint64_t addr, const std::vector<float>& v) {
    Writer w;
    w.U64(addr).Raw(v.data(), 4 * v.size());
    return Call(kWriteMem, w.str());
  }
  std::vector<float> Read(uint64_t addr, size_t n) {
    Writer w;
    w.U64(addr).U64(4 * n);
    std::string data;
    EXPECT_TRUE(Call(kReadMem, w.str(), &data).ok());
    std::vector<float> v(n);
    std::memcpy(v.data(), data.data(), std::min(data.size(), 4 * n));
    return v;
  }
  absl::Status Launch(uint32_t kernel, std::vector<uint64_t> args) {
    Writer w;
    w.U32(kernel).U32(args.size());
    for (uint64_t a : args) w.U64(a);
    std::string data;
    absl::Status s = Call(kLaunch, w.str(), &data);
    if (!s.ok()) return s;
    Reader r(data);
    Writer wait;
    wait.U64(r.U64());
    return Call(kWait, wait.str());
  }
  Counters ReadCounters() {
    std::string data;
    EXPECT_TRUE(Call(kReadCounters, "", &data).ok());
    Reader r(data);
    return DecodeCounters(r);
  }

  std::string path_;
  std::unique_ptr<SimServer> server_;
  std::thread thread_;
  int fd_ = -1;
  uint32_t id_ = 0;
};

TEST_F(SimTest, HelloDescribesTheMachine) {
  std::string data;
  absl::Status hello = Call(kHello, HelloPayload(), &data);
  ASSERT_TRUE(hello.ok()) << hello;
  absl::StatusOr<HelloReply> h = DecodeHelloReply(data);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->version, kProtocolVersion);
  EXPECT_EQ(h->clusters, 24u);
  EXPECT_EQ(h->cores_per_cluster, 8u);
  EXPECT_EQ(h->frequency_hz, 1e9);
  EXPECT_EQ(h->tcdm_bytes, 128u * 1024);
  EXPECT_EQ(h->hbm_bytes, 64u << 20);
  EXPECT_EQ(h->precision, 1u);  // fp32
  EXPECT_THAT(h->description, HasSubstr("24 clusters x 8 cores"));
  // Cut short or with bytes left over, a reply is refused, not half read.
  EXPECT_EQ(DecodeHelloReply(data.substr(0, data.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeHelloReply(data + "x").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(SimTest, MemoryRoundTripPollAndBounds) {
  ASSERT_TRUE(Write(4096, {1.5f, -2.0f, 3.25f}).ok());
  EXPECT_EQ(Read(4096, 3), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  Writer poll;
  uint32_t bits;
  float v = 1.5f;
  std::memcpy(&bits, &v, 4);
  poll.U64(4096).U32(0xFFFFFFFF).U32(bits).U32(10);
  EXPECT_TRUE(Call(kPoll, poll.str()).ok());
  Writer poll_bad;
  poll_bad.U64(4096).U32(0xFFFFFFFF).U32(7).U32(10);
  EXPECT_EQ(Call(kPoll, poll_bad.str()).code(),
            absl::StatusCode::kDeadlineExceeded);
  Writer far;
  far.U64((64 << 20) - 4).U64(8);
  EXPECT_EQ(Call(kReadMem, far.str()).code(), absl::StatusCode::kOutOfRange);
  Writer huge;
  huge.U64(0).U64(uint64_t{1} << 40);
  EXPECT_EQ(Call(kReadMem, huge.str()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Call(kReset, "").ok());
  EXPECT_EQ(Read(4096, 1)[0], 0.0f);  // Reset clears memory.
}

TEST_F(SimTest, GemmComputesAndCountsAnalyticFlops) {
  const int M = 48, K = 64, N = 5;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> W(M * K), X(N * K), Y0(N * M, 0.5f);
  for (float& x : W) x = d(rng);
  for (float& x : X) x = d(rng);
  const uint64_t w = 4096, x = w + 4 * W.size(), y = x + 4 * X.size();
  ASSERT_TRUE(Write(w, W).ok());
  ASSERT_TRUE(Write(x, X).ok());
  ASSERT_TRUE(Write(y, Y0).ok());
  const Counters before = ReadCounters();
  ASSERT_TRUE(Launch(kGemm, {w, x, y, M, K, N, 1, 0}).ok());
  const Counters after = ReadCounters();
  const std::vector<float> Y = Read(y, N * M);
  for (int n = 0; n < N; ++n) {
    for (int m = 0; m < M; ++m) {
      float acc = 0;
      for (int k = 0; k < K; ++k) acc += W[m * K + k] * X[n * K + k];
      ASSERT_EQ(Y[n * M + m], 0.5f + acc);  // Same order: bit-identical.
    }
  }
  EXPECT_EQ(after.flops[1] - before.flops[1], 2u * M * K * N);
  EXPECT_EQ(after.launches - before.launches, 1u);
  EXPECT_GT(after.cycles, before.cycles);
  EXPECT_GT(after.energy_joules, before.energy_joules);
  EXPECT_GE(after.dma_bytes - before.dma_bytes,
            4u * M * K);  // W read at least once.
}

TEST_F(SimTest, KernelErrorsReachWaitAndTheConnectionStaysUsable) {
  // Wrong argument count, and a GEMM reaching past HBM.
  EXPECT_EQ(Launch(kGemm, {1, 2, 3}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Launch(kGemm, {(64 << 20) - 64, 4096, 8192, 64, 64, 1, 0, 0}).code(),
      absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Launch(99, {0}).code(), absl::StatusCode::kInvalidArgument);
  // Unknown opcode and short payloads: error replies, connection intact.
  EXPECT_EQ(Call(77, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(kWriteMem, "abc").code(), absl::StatusCode::kInvalidArgument);
  Writer many;
  many.U32(kGemm).U32(1000);
  EXPECT_EQ(Call(kLaunch, many.str()).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Write(4096, {2.0f}).ok());
  EXPECT_EQ(Read(4096, 1)[0], 2.0f);
}

// Kernel arguments near 2^64 must not wrap past the bounds checks: before
// the checks were overflow-safe, this ROPE passed (q_off + dim wrapped to 8,
// under the stride) and rotated 32 bytes below simulated HBM.
TEST_F(SimTest, RopeOffsetThatWrapsPast64BitsIsRefused) {
  ASSERT_TRUE(Write(8192, {0.0f}).ok());       // Position 0.
  const uint64_t wrapping = ~uint64_t{0} - 7;  // + 16 == 8 (mod 2^64).
  absl::Status s =
      Launch(kRope, {4096, 8192, 1, 32, wrapping, 0, 16, 16, 16, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("q_off"));
  s = Launch(kRope, {4096, 8192, 1, 32, 0, wrapping, 16, 16, 16, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("k_off"));
  // Odd sizes would rotate one float past the row (and past HBM's end).
  s = Launch(kRope, {4096, 8192, 1, 3, 0, 0, 3, 0, 2, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("dim = 3 must be even"));
}

// heads * head wrapped to 0 passed the stride check, then the kernel walked
// 2^63 heads off the end of memory (SIGSEGV).
TEST_F(SimTest, AttentionHeadsTimesHeadThatWrapsIsRefused) {
  Writer desc;
  desc.U64(16384).U64(16384).U64(1);  // K, V, one key.
  Writer w;
  w.U64(12288).Bytes(desc.str());
  ASSERT_TRUE(Call(kWriteMem, w.str()).ok());
  absl::Status s = Launch(
      kAttention, {4096, 64, 8192, 12288, 1, uint64_t{1} << 63, 1, 2, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("heads"));
  // Each descriptor's K and V ranges are checked too, without wrapping.
  Writer far;
  far.U64(12288).U64(~uint64_t{0} - 3).U64(16384).U64(1);
  ASSERT_TRUE(Call(kWriteMem, far.str()).ok());
  s = Launch(kAttention, {4096, 64, 8192, 12288, 1, 2, 1, 2, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("descriptor K"));
}

TEST_F(SimTest, EveryKernelArgumentIsCheckedAndNamed) {
  const uint64_t end = 64 << 20;
  struct Case {
    uint32_t kernel;
    std::vector<uint64_t> args;
    absl::StatusCode code;
    const char* names;
  };
  const Case cases[] = {
      // Floats are accessed as floats: misaligned tensors are refused.
      {kGemm,
       {4097, 8192, 12288, 4, 4, 1, 0, 0},
       absl::StatusCode::kInvalidArgument,
       "GEMM: W: address 0x1001 is not 4-byte aligned"},
      {kGemm,
       {4096, 8192, 12288, 4, 4, 1, 0, end},
       absl::StatusCode::kOutOfRange,
       "GEMM: done flag"},
      {kGemm,
       {4096, 8192, 12288, 4, uint64_t{1} << 40, 1, 0, 0},
       absl::StatusCode::kInvalidArgument,
       "GEMM: K"},
      {kRmsNorm,
       {4096, ~uint64_t{0} - 3, 12288, 1, 4, 0},
       absl::StatusCode::kOutOfRange,
       "RMSNORM: w"},
      {kSwiGlu,
       {4096, end - 4, 1, 4, 0},
       absl::StatusCode::kOutOfRange,
       "SWIGLU: out"},
      // Was a division by zero (found by sim_message_fuzzer).
      {kAttention,
       {4096, 8, 8192, 12288, 1, 2, 0, 4, 0},
       absl::StatusCode::kInvalidArgument,
       "ATTENTION: kv_heads = 0"},
      {kCopy,
       {~uint64_t{0} - 7, 1, 0},
       absl::StatusCode::kOutOfRange,
       "COPY: descriptors"},
  };
  for (const Case& c : cases) {
    absl::Status s = Launch(c.kernel, c.args);
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.names));
  }
  // A COPY with one bad descriptor copies nothing, even its good ones.
  ASSERT_TRUE(Write(20480, {7.0f}).ok());
  Writer copies;
  copies.U64(12288).U64(20480).U64(24480).U64(4);  // Good.
  copies.U64(20480).U64(end - 2).U64(4);           // Past the end.
  ASSERT_TRUE(Call(kWriteMem, copies.str()).ok());
  absl::Status s = Launch(kCopy, {12288, 2, 0});
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("COPY: descriptor dst"));
  EXPECT_EQ(Read(24480, 1)[0], 0.0f);
}

// A header announcing a big payload used to make the receiver allocate it
// all at once (a 16-byte frame reserved 64 MiB); now the payload grows only
// with the bytes that arrive.
TEST(FrameTest, PayloadGrowsOnlyAsItsBytesArrive) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Header h;
  h.opcode = kWriteMem;
  h.payload_bytes = kMaxPayload;
  ASSERT_TRUE(SendAll(fds[0], EncodeHeader(h) + "only ten b").ok());
  ::close(fds[0]);
  Header got;
  std::string payload;
  absl::Status s = RecvFrame(fds[1], &got, &payload);
  ::close(fds[1]);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(payload, "only ten b");
  EXPECT_LT(payload.capacity(), size_t{1} << 20);
}

TEST(FrameTest, OversizedFramesAreRefusedFromTheHeader) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Header h;
  h.payload_bytes = 5000;
  ASSERT_TRUE(SendAll(fds[0], EncodeHeader(h)).ok());
  Header got;
  std::string payload;
  absl::Status s = RecvFrame(fds[1], &got, &payload, /*max_payload=*/4096);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(payload.capacity() < 4096, true);
  ::close(fds[0]);
  ::close(fds[1]);
}

// A per-read timeout let a peer that trickles a byte now and then hold a
// frame open forever; the frame as a whole now has a deadline.
TEST_F(SimTest, AFrameThatTricklesInIsDroppedAfterTheFrameTimeout) {
  Header h;
  h.opcode = kWriteMem;
  h.payload_bytes = 1000;
  ASSERT_TRUE(SendAll(fd_, EncodeHeader(h)).ok());
  const absl::Time start = absl::Now();
  bool closed = false;
  while (!closed && absl::Now() - start < absl::Seconds(5)) {
    if (!SendAll(fd_, "x").ok()) break;  // Closed under us: EPIPE.
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char c;
      closed = ::recv(fd_, &c, 1, 0) == 0;  // Dropped without a reply.
    }
  }
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(3));  // The timeout is 500 ms.
  EXPECT_GE(took, absl::Milliseconds(400));
}

TEST(CheckedRangeTest, RefusesRangesThatWrapOrLeaveTheLimit) {
  const uint64_t max = ~uint64_t{0};
  EXPECT_TRUE(CheckedRange("x", 0, 4, 4, 16).ok());
  EXPECT_TRUE(CheckedRange("x", 16, 0, 4, 16).ok());  // Empty, at the end.
  EXPECT_FALSE(CheckedRange("x", 17, 0, 4, 16).ok());
  EXPECT_FALSE(CheckedRange("x", 4, 4, 4, 16).ok());
  // off + size wraps to a small value.
  EXPECT_FALSE(CheckedRange("x", max - 7, 4, 4, 16).ok());
  // count * elem_size wraps (2^62 x 8 == 0 mod 2^64).
  absl::Status s = CheckedRange("tensor y", 0, uint64_t{1} << 62, 8, 16);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor y"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("overflows"));
}

TEST_F(SimTest, MalformedFramesCloseOnlyThatConnection) {
  // Bad magic: an error reply, then closed.
  std::string bad = EncodeHeader(Header{0xDEADBEEF, 1, kHello, 1, 0});
  ASSERT_TRUE(SendAll(fd_, bad).ok());
  Header h;
  std::string reply;
  ASSERT_TRUE(RecvFrame(fd_, &h, &reply).ok());
  Reader r(reply);
  EXPECT_THAT(std::string(DecodeStatus(r).message()), HasSubstr("bad magic"));
  EXPECT_FALSE(RecvFrame(fd_, &h, &reply).ok());  // Closed.
  ::close(fd_);
  fd_ = -1;

  // Oversized payload: refused without reading it.
  ReconnectAsOwner();
  Header big;
  big.opcode = kWriteMem;
  big.payload_bytes = kMaxPayload + 1;
  ASSERT_TRUE(SendAll(fd_, EncodeHeader(big)).ok());
  ASSERT_TRUE(RecvFrame(fd_, &h, &reply).ok());
  Reader r2(reply);
  EXPECT_EQ(DecodeStatus(r2).code(), absl::StatusCode::kResourceExhausted);
  ::close(fd_);
  fd_ = -1;

  // Truncated frame, then hang-up; and random garbage.
  int t = Connect();
  Header half;
  half.opcode = kWriteMem;
  half.payload_bytes = 100;
  ASSERT_TRUE(SendAll(t, EncodeHeader(half) + "short").ok());
  ::close(t);
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    int g = Connect();
    std::string junk(1 + rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    SendAll(g, junk).IgnoreError();
    ::close(g);
  }
  // The daemon still serves new clients (once the junk connections are gone:
  // it serves at most 16 at a time).
  ASSERT_GE(ReconnectAsOwner(), 0);
  ASSERT_TRUE(Write(4096, {4.0f}).ok());
  EXPECT_EQ(Read(4096, 1)[0], 4.0f);
}

// Authentication: HELLO must carry the token; nothing else is served before.
TEST_F(SimTest, HelloWithoutTheTokenIsRefusedAndTheConnectionClosed) {
  struct Case {
    std::string payload;
    absl::StatusCode code;
    const char* message;
  };
  Writer v1;  // Version 1's HELLO: no token.
  v1.U16(kProtocolVersion);
  const Case cases[] = {
      {HelloPayload("wrong-token"), absl::StatusCode::kUnauthenticated,
       "wrong token"},
      {HelloPayload(""), absl::StatusCode::kUnauthenticated, "wrong token"},
      {HelloPayload(std::string(kToken) + "x"),
       absl::StatusCode::kUnauthenticated, "wrong token"},
      {v1.str(), absl::StatusCode::kInvalidArgument, "string token"},
  };
  for (const Case& c : cases) {
    const int fd = Connect();
    absl::Status s = Call(kHello, c.payload, nullptr, fd);
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
    EXPECT_TRUE(ClosedByPeer(fd));
    ::close(fd);
  }
  // A version 1 header is refused before its payload is looked at.
  const int fd = Connect();
  Header old;
  old.version = 1;
  old.opcode = kHello;
  old.payload_bytes = 2;
  ASSERT_TRUE(SendAll(fd, EncodeHeader(old) + std::string(2, '\1')).ok());
  Header h;
  std::string reply;
  ASSERT_TRUE(RecvFrame(fd, &h, &reply).ok());
  Reader r(reply);
  absl::Status s = DecodeStatus(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("protocol version 1"));
  ::close(fd);
}

// A second connection used to be able to RESET or overwrite the memory the
// server was using (it then streamed <unk> with status OK), READ_MEM its
// weights and KV cache, and fail its next WAIT with a bad LAUNCH.
TEST_F(SimTest, OtherConnectionsCannotTouchTheOwnersMachine) {
  ASSERT_TRUE(Write(4096, {1.0f, 2.0f, 3.0f, 4.0f}).ok());
  Writer write;
  write.U64(4096).U32(0);
  Writer read;
  read.U64(4096).U64(16);
  Writer bad_launch;
  bad_launch.U32(kGemm).U32(1).U64(0);
  Writer wait;
  wait.U64(1);
  const std::pair<uint16_t, std::string> requests[] = {
      {kReset, ""},
      {kWriteMem, write.str()},
      {kLoadWeights, write.str()},
      {kReadMem, read.str()},
      {kLaunch, bad_launch.str()},
      {kWait, wait.str()},
      {kReadCounters, ""},
  };
  for (const auto& [op, payload] : requests) {
    const int fd = Connect();
    absl::Status s = Call(op, payload, nullptr, fd);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << op << ": " << s;
    EXPECT_TRUE(ClosedByPeer(fd)) << op;
    ::close(fd);
  }
  // Even with the token, a second session is refused while the owner stays.
  const int second = Connect();
  absl::Status s = Hello(second);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("in use"));
  EXPECT_TRUE(ClosedByPeer(second));
  ::close(second);
  // The owner's memory and launches are as it left them.
  EXPECT_EQ(Read(4096, 4), (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
  ASSERT_TRUE(Write(8192, std::vector<float>(4, 1.0f)).ok());
  EXPECT_TRUE(Launch(kRmsNorm, {4096, 8192, 12288, 1, 4, 0}).ok());
  EXPECT_EQ(ReadCounters().launches, 1u);
}

TEST_F(SimTest, TheNextOwnerFindsTheMachineCleared) {
  ASSERT_TRUE(Write(4096, {5.0f}).ok());
  // A failed launch the owner never WAITs for.
  Writer bad;
  bad.U32(kGemm).U32(1).U64(0);
  ASSERT_TRUE(Call(kLaunch, bad.str()).ok());
  ASSERT_GE(ReconnectAsOwner(), 0);
  EXPECT_EQ(Read(4096, 1)[0], 0.0f);       // Memory cleared.
  EXPECT_EQ(ReadCounters().launches, 0u);  // Counters too.
  // Launches count from 1 again, and the old error is not this session's.
  ASSERT_TRUE(Write(8192, std::vector<float>(4, 1.0f)).ok());
  Writer launch;
  launch.U32(kRmsNorm).U32(6).U64(8192).U64(8192).U64(12288).U64(1).U64(4).U64(
      0);
  std::string data;
  ASSERT_TRUE(Call(kLaunch, launch.str(), &data).ok());
  Reader r(data);
  EXPECT_EQ(r.U64(), 1u);
  Writer wait;
  wait.U64(1);
  EXPECT_TRUE(Call(kWait, wait.str()).ok());
}

// Before authentication a frame may carry only a HELLO: 16-byte headers
// announcing megabytes on idle connections cannot make the daemon buffer
// them, and a connection that never says HELLO loses its slot.
TEST_F(SimTest, UnauthenticatedConnectionsAreSmallAndShortLived) {
  int fds[4];
  for (int& fd : fds) {
    fd = Connect();
    Header big;
    big.opcode = kWriteMem;
    big.payload_bytes = kMaxHelloPayload + 1;
    ASSERT_TRUE(SendAll(fd, EncodeHeader(big)).ok());
  }
  for (int fd : fds) {
    Header h;
    std::string reply;
    ASSERT_TRUE(RecvFrame(fd, &h, &reply).ok());
    Reader r(reply);
    EXPECT_EQ(DecodeStatus(r).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(ClosedByPeer(fd));
    ::close(fd);
  }
  const int idle = Connect();
  const absl::Time start = absl::Now();
  pollfd p{idle, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1);  // The frame timeout is 500 ms.
  char c;
  EXPECT_EQ(::recv(idle, &c, 1, 0), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ::close(idle);
  // The owner, idle all along, keeps its connection.
  EXPECT_TRUE(Write(4096, {1.0f}).ok());
}

TEST(SimServerTest, NeedsATokenAndListensOnlyLocallyUnlessAllowed) {
  SimConfig config;
  config.hbm_bytes = 1 << 20;
  SimServerOptions options;
  EXPECT_FALSE(SimServer::Create(config, options).ok());  // No token.
  options.token = "t";
  auto remote = SimServer::Start("tcp:0.0.0.0:0", config, options);
  ASSERT_FALSE(remote.ok());
  EXPECT_THAT(std::string(remote.status().message()),
              HasSubstr("--allow_remote_listen"));
  EXPECT_TRUE(SimServer::Start("tcp:127.0.0.1:0", config, options).ok());
  options.allow_remote_listen = true;
  EXPECT_TRUE(SimServer::Start("tcp:0.0.0.0:0", config, options).ok());
  // Unix sockets are created owner-only, whatever the umask.
  char dir[] = "/tmp/jsimXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/s.sock";
  const mode_t old_mask = umask(0);
  auto local = SimServer::Start("unix:" + path, config, options);
  umask(old_mask);
  ASSERT_TRUE(local.ok()) << local.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  local->reset();
  // A path that holds something other than a socket is not replaced.
  const std::string file = std::string(dir) + "/file";
  ASSERT_TRUE(WriteTokenFile(file, "keep me").ok());
  EXPECT_FALSE(SimServer::Start("unix:" + file, config, options).ok());
  EXPECT_EQ(*ReadTokenFile(file), "keep me");
  ::unlink(file.c_str());
  ::rmdir(dir);
}

TEST(TokenTest, FilesTokensAndComparison) {
  char dir[] = "/tmp/jtokXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/token";
  EXPECT_FALSE(ReadTokenFile(path).ok());  // Missing.
  auto token = NewToken();
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->size(), 64u);
  EXPECT_NE(*token, *NewToken());
  ASSERT_TRUE(WriteTokenFile(path, *token + "\n").ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadTokenFile(path), *token);  // Trailing newline dropped.
  EXPECT_FALSE(WriteTokenFile(path, "again").ok());  // Never reused.
  ::unlink(path.c_str());
  ASSERT_TRUE(WriteTokenFile(path, " \n").ok());
  absl::StatusOr<std::string> empty = ReadTokenFile(path);
  EXPECT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));
  ::unlink(path.c_str());
  ASSERT_TRUE(WriteTokenFile(path, std::string(kMaxTokenBytes + 1, 'a')).ok());
  EXPECT_FALSE(ReadTokenFile(path).ok());
  ::unlink(path.c_str());
  ::rmdir(dir);

  EXPECT_TRUE(TokenMatches("secret", "secret"));
  EXPECT_FALSE(TokenMatches("secret", "secreT"));
  EXPECT_FALSE(TokenMatches("secret", "secre"));
  EXPECT_FALSE(TokenMatches("secret", "secrets"));
  EXPECT_FALSE(TokenMatches("secret", ""));
  EXPECT_FALSE(TokenMatches("ab", std::string("ab\0", 3)));
}

TEST(TileModelTest, PrefillIsComputeBoundAndDecodeIsBandwidthBound) {
  SimConfig config;
  TileModelEngine engine(config);
  // A stories110M-sized projection: 768 x 768 weights.
  auto cycles = [&](double n) {
    TileModelEngine::Work w;
    w.flops = 2.0 * 768 * 768 * n;
    w.utilization = config.gemm_utilization[1];
    w.hbm_bytes = 4.0 * 768 * 768 + 4.0 * 768 * n * config.clusters();
    w.tiles = 8;
    Counters c;
    engine.Charge(w, &c);
    return double(c.cycles);
  };
  // Decode is bandwidth-bound: streaming the weights costs the same for one
  // token or two (fp32 crosses over near 4 tokens: 768 GFLOP/s against
  // 384 GB/s is about 2 FLOP per byte).
  EXPECT_LT(cycles(2) / cycles(1), 1.2);
  // Prefill of 512 tokens scales with the tokens: compute dominates.
  EXPECT_GT(cycles(512) / cycles(256), 1.8);
}

TEST(SimConfigTest, ParsesOverridesAndRejectsBadLines) {
  auto c = ParseSimConfig(
      "# comment\ngroups = 2\nprecision = fp8\n\nstatic_watts=1.5\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->groups, 2);
  EXPECT_EQ(c->clusters(), 8);
  EXPECT_EQ(c->precision, Precision::kFp8);
  EXPECT_EQ(c->static_watts, 1.5);
  EXPECT_THAT(std::string(ParseSimConfig("bogus = 1").status().message()),
              HasSubstr("line 1: unknown key"));
  EXPECT_THAT(std::string(ParseSimConfig("\ngroups = x").status().message()),
              HasSubstr("line 2: bad value"));
  EXPECT_FALSE(ParseSimConfig("groups = 0").ok());
  // Beyond the field's range (converting it would be undefined), or NaN.
  EXPECT_THAT(std::string(ParseSimConfig("groups = 1e30").status().message()),
              HasSubstr("bad value"));
  EXPECT_FALSE(ParseSimConfig("dma_setup_cycles = nan").ok());
  EXPECT_THAT(
      std::string(ParseSimConfig("host_threads = 300").status().message()),
      HasSubstr("host_threads at most 256"));
  EXPECT_EQ(ParseSimConfig("host_threads = 2")->host_threads, 2);
  auto file =
      LoadSimConfig(joule::testing::Runfile("device/riscv/sim/occamy.cfg"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->clusters(), 24);
}

}  // namespace
}  // namespace joule::riscv
