// The RISC-V simulator daemon over its bridge protocol: round trips,
// malformed input, kernel results and counters against analytic counts.
#include <poll.h>
#include <sys/socket.h>
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
    options.frame_timeout = absl::Milliseconds(500);
    auto s = SimServer::Start("unix:" + path_, config, options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    thread_ = std::thread([this] { server_->Serve(); });
    fd_ = Connect();
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
  // One request; the reply's status, with its data in *data.
  absl::Status Call(uint16_t op, const std::string& payload,
                    std::string* data = nullptr, int fd = -1) {
    fd = fd < 0 ? fd_ : fd;
    EXPECT_TRUE(SendFrame(fd, op, ++id_, payload).ok());
    Header h;
    std::string reply;
    absl::Status s = RecvFrame(fd, &h, &reply);
    if (!s.ok()) return s;
    EXPECT_EQ(h.opcode, op | kReplyBit);
    EXPECT_EQ(h.request_id, id_);
    Reader r(reply);
    absl::Status status = DecodeStatus(r);
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
  Writer w;
  w.U16(kProtocolVersion);
  std::string data;
  absl::Status hello = Call(kHello, w.str(), &data);
  ASSERT_TRUE(hello.ok()) << hello;
  Reader r(data);
  EXPECT_EQ(r.U16(), kProtocolVersion);
  EXPECT_EQ(r.U32(), 24u);  // clusters
  EXPECT_EQ(r.U32(), 8u);   // cores per cluster
  EXPECT_EQ(r.F64(), 1e9);
  EXPECT_EQ(r.U64(), 128u * 1024);
  EXPECT_EQ(r.U64(), 64u << 20);
  EXPECT_EQ(r.U32(), 1u);  // fp32
  EXPECT_THAT(r.Str(), HasSubstr("24 clusters x 8 cores"));
  EXPECT_TRUE(r.ok());
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

  // Oversized payload: refused without reading it.
  fd_ = Connect();
  Header big;
  big.opcode = kWriteMem;
  big.payload_bytes = kMaxPayload + 1;
  ASSERT_TRUE(SendAll(fd_, EncodeHeader(big)).ok());
  ASSERT_TRUE(RecvFrame(fd_, &h, &reply).ok());
  Reader r2(reply);
  EXPECT_EQ(DecodeStatus(r2).code(), absl::StatusCode::kResourceExhausted);
  ::close(fd_);

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
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    fd_ = Connect();
    Writer hello;
    hello.U16(kProtocolVersion);
    std::string r3;
    served = SendFrame(fd_, kHello, 1, hello.str()).ok() &&
             RecvFrame(fd_, &h, &r3).ok() && h.opcode == (kHello | kReplyBit);
    if (!served) {
      ::close(fd_);
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_TRUE(served);
  id_ = 1;
  ASSERT_TRUE(Write(4096, {4.0f}).ok());
  EXPECT_EQ(Read(4096, 1)[0], 4.0f);
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
  auto file = LoadSimConfig(std::string(std::getenv("TEST_SRCDIR")) +
                            "/joule/device/riscv/sim/occamy.cfg");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->clusters(), 24);
}

}  // namespace
}  // namespace joule::riscv
