#include "device/riscv/riscv_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/chunk_check.h"
#include "device/riscv/sim/token.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace joule::device {

using riscv::Reader;
using riscv::Writer;

namespace {

uint64_t Align(uint64_t x) { return (x + 63) & ~uint64_t{63}; }

absl::StatusOr<int> ConnectTo(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = address.substr(5);
    if (path.size() >= sizeof(addr.sun_path))
      return absl::InvalidArgumentError("socket path too long");
    std::strcpy(addr.sun_path, path.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("cannot connect to ", address,
                                                 ": ", std::strerror(errno)));
    }
    return fd;
  }
  if (absl::StartsWith(address, "tcp:")) {
    const std::string rest = address.substr(4);
    const size_t colon = rest.rfind(':');
    int port = 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &port) ||
        inet_pton(AF_INET, rest.substr(0, colon).c_str(), &addr.sin_addr) !=
            1) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", address, "': use tcp:IPv4:port"));
    }
    addr.sin_port = htons(port);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("cannot connect to ", address,
                                                 ": ", std::strerror(errno)));
    }
    return fd;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("RISC-V simulator address '", address,
                   "' must start with unix: or tcp:"));
}

}  // namespace

// Where everything lives in simulated HBM (byte addresses).
struct RiscvDevice::Layout {
  struct LayerAddrs {
    uint64_t rms_att, w_qkv, wo, rms_ffn, w13, w2;
  };
  model::Config c;
  int rows = 0, slots = 0;
  std::vector<LayerAddrs> layers;
  uint64_t rms_final = 0, wcls = 0;
  uint64_t x = 0, xb = 0, qkv = 0, att = 0, h13 = 0, hb = 0, last = 0,
           last_norm = 0, logits = 0;
  uint64_t positions = 0, attn_desc = 0, copy_desc = 0, last_desc = 0, kv = 0,
           end = 0;
  int qkv_stride() const { return c.dim + 2 * c.kv_dim(); }
  uint64_t slot_bytes() const {
    return uint64_t{4} * c.n_layers * c.seq_len * c.kv_dim();
  }
  uint64_t k_base(int slot, int layer) const {
    return kv + slot * 2 * slot_bytes() +
           uint64_t{4} * layer * c.seq_len * c.kv_dim();
  }
  uint64_t v_base(int slot, int layer) const {
    return k_base(slot, layer) + slot_bytes();
  }

  Layout(const model::Config& config, int max_rows, int max_slots)
      : c(config), rows(max_rows), slots(max_slots) {
    uint64_t at = 4096;  // Page 0 stays unused: a stray zero address faults.
    auto take = [&](uint64_t floats) {
      const uint64_t a = at;
      at = Align(at + 4 * floats);
      return a;
    };
    const uint64_t d = c.dim, h = c.hidden_dim, kv_d = c.kv_dim();
    for (int l = 0; l < c.n_layers; ++l) {
      LayerAddrs a;
      a.rms_att = take(d);
      a.w_qkv = take((d + 2 * kv_d) * d);
      a.wo = take(d * d);
      a.rms_ffn = take(d);
      a.w13 = take(2 * h * d);
      a.w2 = take(d * h);
      layers.push_back(a);
    }
    rms_final = take(d);
    wcls = take(uint64_t{c.vocab_size} * d);
    const uint64_t r = rows;
    x = take(r * d);
    xb = take(r * d);
    qkv = take(r * qkv_stride());
    att = take(r * d);
    h13 = take(r * 2 * h);
    hb = take(r * h);
    last = take(slots * d);
    last_norm = take(slots * d);
    logits = take(uint64_t{slots} * c.vocab_size);
    positions = take(r);
    attn_desc = take(uint64_t{c.n_layers} * r * 6);      // 3 u64 per row
    copy_desc = take(uint64_t{c.n_layers} * r * 2 * 6);  // K and V rows
    last_desc = take(slots * 6);
    kv = at;
    end = kv + slots * 2 * slot_bytes();
  }
};

RiscvDevice::RiscvDevice(RiscvOptions options) : options_(std::move(options)) {}

RiscvDevice::~RiscvDevice() {
  absl::MutexLock l(&mu_);
  Disconnect();
}

riscv::Counters RiscvDevice::last_step_counters() const {
  absl::MutexLock l(&mu_);
  return last_step_;
}

pid_t RiscvDevice::daemon_pid() const {
  absl::MutexLock l(&mu_);
  return pid_;
}

Capabilities RiscvDevice::capabilities() const {
  absl::MutexLock l(&mu_);
  Capabilities c;
  c.name = options_.name;
  c.kind = DeviceKind::kRiscvSim;
  c.description = description_.empty()
                      ? "simulated RISC-V many-core (not connected)"
                      : absl::StrCat(description_, " (simulated)");
  c.max_batch_size = options_.max_batch_size;
  c.max_step_tokens = options_.max_step_tokens;
  c.max_context = ckpt_ ? ckpt_->config().seq_len : 0;
  c.kv_capacity_tokens =
      ckpt_ ? int64_t{options_.max_batch_size} * ckpt_->config().seq_len : 0;
  c.precision = "fp32 (simulated)";
  c.energy_source = EnergySource::kSimulated;
  c.reports_energy = true;
  return c;
}

void RiscvDevice::Disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status;
    for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
      absl::SleepFor(absl::Milliseconds(10));
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = 0;
  }
  if (!socket_path_.empty()) {
    const std::string dir = socket_path_.substr(0, socket_path_.rfind('/'));
    ::unlink(socket_path_.c_str());
    ::unlink((dir + "/token").c_str());
    ::rmdir(dir.c_str());
    socket_path_.clear();
  }
  token_.clear();
  // Whatever the daemon held is gone with it.
  slots_.clear();
  free_slots_.clear();
}

absl::Status RiscvDevice::StartDaemon() {
  if (options_.daemon_binary.empty() ||
      access(options_.daemon_binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start the RISC-V simulator: '", options_.daemon_binary,
        "' is not executable; pass --riscv_sim_address of a running riscv_simd "
        "or "
        "--riscv_sim_binary"));
  }
  // A private directory: PIDs repeat across containers and sandboxes, and
  // the path must stay short for sun_path.
  char dir[] = "/tmp/joule-riscv-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create a socket directory: ", std::strerror(errno)));
  }
  socket_path_ = absl::StrCat(dir, "/sim.sock");
  // A fresh token for this daemon, in a 0600 file inside the 0700
  // directory; the daemon reads it at start-up, and it is deleted once the
  // daemon listens.
  absl::StatusOr<std::string> token = riscv::NewToken();
  if (!token.ok()) return token.status();
  const std::string token_path = absl::StrCat(dir, "/token");
  if (absl::Status s = riscv::WriteTokenFile(token_path, *token); !s.ok())
    return s;
  token_ = *std::move(token);
  std::vector<std::string> argv = {
      options_.daemon_binary, "--listen=unix:" + socket_path_,
      "--token_file=" + token_path, absl::StrCat("--parent_pid=", getpid())};
  if (!options_.daemon_config.empty())
    argv.push_back("--config=" + options_.daemon_config);
  if (!options_.engine.empty())
    argv.push_back("--riscv_engine=" + options_.engine);
  argv.insert(argv.end(), options_.daemon_flags.begin(),
              options_.daemon_flags.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) !=
      0) {
    pid_ = 0;
    return absl::UnavailableError(
        absl::StrCat("cannot start ", options_.daemon_binary));
  }
  for (int i = 0; i < 500; ++i) {
    auto fd = ConnectTo("unix:" + socket_path_);
    if (fd.ok()) {
      fd_ = *fd;
      ::unlink(token_path.c_str());
      return absl::OkStatus();
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return absl::UnavailableError("the RISC-V simulator exited at start-up");
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::UnavailableError(
      "the RISC-V simulator did not start listening within 5 s");
}

absl::Status RiscvDevice::Call(uint16_t opcode, const std::string& payload,
                               std::string* data) {
  const uint32_t id = next_request_++;
  if (absl::Status s = riscv::SendFrame(fd_, opcode, id, payload); !s.ok())
    return s;
  riscv::Header h;
  std::string reply;
  if (absl::Status s = riscv::RecvFrame(fd_, &h, &reply); !s.ok()) return s;
  if (h.opcode != (opcode | riscv::kReplyBit) || h.request_id != id) {
    return absl::DataLossError(
        "the simulator's reply does not match the request");
  }
  Reader r(reply);
  absl::Status s = riscv::DecodeStatus(r);
  if (s.ok() && data != nullptr) *data = std::string(r.Rest());
  return s;
}

absl::Status RiscvDevice::VersionMismatch(absl::string_view detail) const {
  return absl::FailedPreconditionError(absl::StrCat(
      "it speaks another bridge protocol than this joule_server (", detail,
      "): run the riscv_simd built with this joule_server"));
}

absl::Status RiscvDevice::CheckHello(absl::string_view data) {
  absl::StatusOr<riscv::HelloReply> h = riscv::DecodeHelloReply(data);
  if (!h.ok()) return h.status();
  if (h->version != riscv::kProtocolVersion) {
    return VersionMismatch(absl::StrFormat(
        "it answered version %d, not %d", h->version, riscv::kProtocolVersion));
  }
  if (h->hbm_bytes < layout_->end) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the model, activations and KV slots need %d bytes of simulated HBM; "
        "the simulator has %d",
        layout_->end, h->hbm_bytes));
  }
  if (!options_.engine.empty() &&
      !absl::StrContains(h->description, "engine " + options_.engine + " ")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--riscv_engine=", options_.engine,
        " was asked for, but the "
        "simulator runs another (",
        h->description, "): start it with --riscv_engine=", options_.engine));
  }
  frequency_hz_ = h->frequency_hz;
  description_ = h->description;
  return absl::OkStatus();
}

absl::Status RiscvDevice::EnsureConnected() {
  if (fd_ >= 0) return absl::OkStatus();
  absl::Status s;
  if (options_.address.empty()) {
    s = StartDaemon();
  } else if (options_.token_file.empty()) {
    s = absl::FailedPreconditionError(
        "a running RISC-V simulator needs its token: pass "
        "--riscv_sim_token_file (the daemon's --token_file)");
  } else {
    // Read at each connection, so a daemon restarted with a new token is
    // picked up.
    absl::StatusOr<std::string> token =
        riscv::ReadTokenFile(options_.token_file);
    s = token.status();
    if (s.ok()) {
      token_ = *std::move(token);
      auto fd = ConnectTo(options_.address);
      s = fd.status();
      if (fd.ok()) fd_ = *fd;
    }
  }
  if (!s.ok()) {
    Disconnect();  // A daemon that started but never listened, its files.
    return s;
  }
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(options_.io_timeout)), 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  Writer hello;
  hello.U16(riscv::kProtocolVersion).Str(token_);
  std::string data;
  s = Call(riscv::kHello, hello.str(), &data);
  if (s.ok()) s = CheckHello(data);
  if (absl::IsFailedPrecondition(s) &&
      absl::StrContains(s.message(), "protocol version")) {
    s = VersionMismatch(s.message());
  }
  if (s.ok()) s = Call(riscv::kReset, "", nullptr);
  if (s.ok()) s = UploadWeights();
  if (s.ok()) s = Call(riscv::kReadCounters, "", &data);
  if (s.ok()) {
    Reader r(data);
    last_counters_ = riscv::DecodeCounters(r);
  }
  if (!s.ok()) {
    Disconnect();
    return absl::UnavailableError(
        absl::StrCat("RISC-V simulator: ", s.message()));
  }
  free_slots_.clear();
  for (int i = layout_->slots - 1; i >= 0; --i) free_slots_.push_back(i);
  spdlog::info("device {}: connected to {}", options_.name, description_);
  return absl::OkStatus();
}

absl::Status RiscvDevice::UploadWeights() {
  const model::Config& c = ckpt_->config();
  // Weights go up in pieces below the payload limit.
  auto upload = [&](uint64_t addr, const float* data,
                    uint64_t floats) -> absl::Status {
    const uint64_t chunk = riscv::kMaxDataBytes / 4;
    for (uint64_t off = 0; off < floats; off += chunk) {
      const uint64_t n = std::min(chunk, floats - off);
      Writer w;
      w.U64(addr + 4 * off).Raw(data + off, 4 * n);
      if (absl::Status s = Call(riscv::kLoadWeights, w.str(), nullptr); !s.ok())
        return s;
    }
    return absl::OkStatus();
  };
  auto rows_of = [](const model::Matrix& m, std::vector<float>* out) {
    const size_t at = out->size();
    out->resize(at + m.size());
    for (int r = 0; r < m.rows; ++r)
      m.DequantizeRow(r, out->data() + at + int64_t{r} * m.cols);
  };
  std::vector<float> buf;
  for (int l = 0; l < c.n_layers; ++l) {
    const model::LayerWeights& w = ckpt_->layer(l);
    const Layout::LayerAddrs& a = layout_->layers[l];
    for (auto [addr, norm] :
         {std::pair{a.rms_att, w.rms_att}, {a.rms_ffn, w.rms_ffn}}) {
      if (absl::Status s = upload(addr, norm, c.dim); !s.ok()) return s;
    }
    buf.clear();
    rows_of(w.wq, &buf);
    rows_of(w.wk, &buf);
    rows_of(w.wv, &buf);
    if (absl::Status s = upload(a.w_qkv, buf.data(), buf.size()); !s.ok())
      return s;
    buf.clear();
    rows_of(w.wo, &buf);
    if (absl::Status s = upload(a.wo, buf.data(), buf.size()); !s.ok())
      return s;
    buf.clear();
    rows_of(w.w1, &buf);
    rows_of(w.w3, &buf);
    if (absl::Status s = upload(a.w13, buf.data(), buf.size()); !s.ok())
      return s;
    buf.clear();
    rows_of(w.w2, &buf);
    if (absl::Status s = upload(a.w2, buf.data(), buf.size()); !s.ok())
      return s;
  }
  if (absl::Status s = upload(layout_->rms_final, ckpt_->rms_final(), c.dim);
      !s.ok())
    return s;
  buf.clear();
  rows_of(ckpt_->classifier(), &buf);
  return upload(layout_->wcls, buf.data(), buf.size());
}

absl::Status RiscvDevice::LoadModel(const model::Checkpoint& ckpt) {
  absl::MutexLock l(&mu_);
  const model::Config& c = ckpt.config();
  if (!c.HasLlama2cConstants()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the RISC-V simulator's engine uses RoPE base 10000 and RMS epsilon "
        "1e-5; this model has %g and %g",
        c.rope_theta, c.norm_eps));
  }
  ckpt_ = &ckpt;
  layout_ = std::make_unique<Layout>(c, options_.max_step_tokens,
                                     options_.max_batch_size);
  embedding_.clear();
  embedding_.resize(int64_t{c.vocab_size} * c.dim);
  for (int r = 0; r < c.vocab_size; ++r) {
    ckpt.token_embedding().DequantizeRow(
        r, embedding_.data() + int64_t{r} * c.dim);
  }
  Disconnect();
  return EnsureConnected();
}

absl::Status RiscvDevice::Step(absl::Span<const SequenceChunk> batch,
                               StepOutput* out) {
  absl::MutexLock l(&mu_);
  if (ckpt_ == nullptr) return absl::FailedPreconditionError("no model loaded");
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  absl::Status s = RunStep(batch, out);
  if (absl::IsUnavailable(s) || absl::IsDataLoss(s)) {
    // The connection or the daemon is gone: report it so the scheduler moves
    // the work, and start afresh when probed.
    spdlog::warn("device {}: {}", options_.name, s.ToString());
    Disconnect();
    return absl::UnavailableError(
        absl::StrCat("RISC-V simulator connection lost: ", s.message()));
  }
  return s;
}

absl::Status RiscvDevice::RunStep(absl::Span<const SequenceChunk> batch,
                                  StepOutput* out) {
  const Layout& L = *layout_;
  const model::Config& c = L.c;
  // Check everything, and find slots, before touching the device.
  const absl::StatusOr<int64_t> checked =
      CheckBatch(batch,
                 [this](SequenceId id) {
                   auto it = slots_.find(id);
                   return it == slots_.end() ? 0 : it->second.length;
                 },
                 c, {L.slots, L.rows});
  if (!checked.ok()) return checked.status();
  const int rows = static_cast<int>(*checked);
  int new_slots = 0;
  for (const SequenceChunk& ch : batch) new_slots += !slots_.contains(ch.seq);
  if (new_slots > static_cast<int>(free_slots_.size())) {
    return absl::ResourceExhaustedError("no free KV slot on the RISC-V device");
  }
  std::vector<int> slot_of(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = slots_.find(batch[i].seq);
    if (it == slots_.end()) {
      Slot s{free_slots_.back(), 0};
      free_slots_.pop_back();
      it = slots_.emplace(batch[i].seq, s).first;
    }
    slot_of[i] = it->second.index;
  }

  // Inputs: embeddings, positions, per-layer K/V scatter and attention
  // descriptors, and the gather of each sequence's last row.
  std::vector<float> x(uint64_t{rows} * c.dim);
  std::vector<int32_t> pos(rows);
  std::vector<uint64_t> attn(uint64_t{c.n_layers} * rows * 3);
  std::vector<uint64_t> copies(uint64_t{c.n_layers} * rows * 6);
  std::vector<uint64_t> last(batch.size() * 3);
  const uint64_t kv_row = uint64_t{4} * c.kv_dim();
  int r = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceChunk& ch = batch[i];
    for (size_t k = 0; k < ch.tokens.size(); ++k, ++r) {
      std::memcpy(&x[uint64_t{r} * c.dim],
                  &embedding_[int64_t{ch.tokens[k]} * c.dim], 4 * c.dim);
      const int p = ch.start_pos + static_cast<int>(k);
      pos[r] = p;
      for (int l = 0; l < c.n_layers; ++l) {
        uint64_t* a = &attn[(uint64_t{l} * rows + r) * 3];
        a[0] = L.k_base(slot_of[i], l);
        a[1] = L.v_base(slot_of[i], l);
        a[2] = p + 1;
        uint64_t* cp = &copies[(uint64_t{l} * rows + r) * 6];
        const uint64_t src = L.qkv + 4 * (uint64_t{r} * L.qkv_stride() + c.dim);
        cp[0] = src;
        cp[1] = L.k_base(slot_of[i], l) + p * kv_row;
        cp[2] = kv_row;
        cp[3] = src + kv_row;
        cp[4] = L.v_base(slot_of[i], l) + p * kv_row;
        cp[5] = kv_row;
      }
    }
    last[i * 3] = L.x + 4 * (uint64_t{r - 1} * c.dim);
    last[i * 3 + 1] = L.last + 4 * (uint64_t{i} * c.dim);
    last[i * 3 + 2] = 4 * c.dim;
  }

  // One burst: the writes, every launch, then a WAIT; replies in order.
  std::string burst;
  int requests = 0;
  auto frame = [&](uint16_t op, const std::string& payload) {
    riscv::Header h;
    h.opcode = op;
    h.request_id = next_request_++;
    h.payload_bytes = payload.size();
    burst += riscv::EncodeHeader(h);
    burst += payload;
    ++requests;
  };
  // In pieces below the frame limit (the daemon refuses bigger frames):
  // wide models and long steps have inputs of several MiB.
  auto write = [&](uint64_t addr, const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    for (size_t off = 0; off < bytes; off += riscv::kMaxDataBytes) {
      Writer w;
      w.U64(addr + off)
          .Raw(p + off, std::min<size_t>(riscv::kMaxDataBytes, bytes - off));
      frame(riscv::kWriteMem, w.str());
    }
  };
  auto launch = [&](uint32_t kernel, std::initializer_list<uint64_t> args) {
    Writer w;
    w.U32(kernel).U32(args.size() + 1);
    for (uint64_t a : args) w.U64(a);
    w.U64(0);  // No completion flag: WAIT covers it.
    frame(riscv::kLaunch, w.str());
  };
  write(L.x, x.data(), 4 * x.size());
  write(L.positions, pos.data(), 4 * pos.size());
  write(L.attn_desc, attn.data(), 8 * attn.size());
  write(L.copy_desc, copies.data(), 8 * copies.size());
  write(L.last_desc, last.data(), 8 * last.size());
  const uint64_t R = rows, D = c.dim, H = c.hidden_dim, S = L.qkv_stride();
  for (int l = 0; l < c.n_layers; ++l) {
    const Layout::LayerAddrs& a = L.layers[l];
    launch(riscv::kRmsNorm, {L.x, a.rms_att, L.xb, R, D});
    launch(riscv::kGemm, {a.w_qkv, L.xb, L.qkv, S, D, R, 0});
    launch(riscv::kRope, {L.qkv, L.positions, R, S, 0, D, D,
                          uint64_t(c.kv_dim()), uint64_t(c.head_size())});
    launch(riscv::kCopy, {L.copy_desc + 8 * (uint64_t{l} * R * 6), 2 * R});
    launch(
        riscv::kAttention,
        {L.qkv, S, L.att, L.attn_desc + 8 * (uint64_t{l} * R * 3), R,
         uint64_t(c.n_heads), uint64_t(c.n_kv_heads), uint64_t(c.head_size())});
    launch(riscv::kGemm, {a.wo, L.att, L.x, D, D, R, 1});
    launch(riscv::kRmsNorm, {L.x, a.rms_ffn, L.xb, R, D});
    launch(riscv::kGemm, {a.w13, L.xb, L.h13, 2 * H, D, R, 0});
    launch(riscv::kSwiGlu, {L.h13, L.hb, R, H});
    launch(riscv::kGemm, {a.w2, L.hb, L.x, D, H, R, 1});
  }
  const uint64_t B = batch.size();
  launch(riscv::kCopy, {L.last_desc, B});
  launch(riscv::kRmsNorm, {L.last, L.rms_final, L.last_norm, B, D});
  launch(riscv::kGemm,
         {L.wcls, L.last_norm, L.logits, uint64_t(c.vocab_size), D, B, 0});
  const uint32_t first_id = next_request_ - requests;
  // The daemon numbers launches; WAIT for the last one once its ack is read.
  if (absl::Status s = riscv::SendAll(fd_, burst); !s.ok()) return s;
  uint64_t last_launch = 0;
  for (int i = 0; i < requests; ++i) {
    riscv::Header h;
    std::string reply;
    if (absl::Status s = riscv::RecvFrame(fd_, &h, &reply); !s.ok()) return s;
    if (h.request_id != first_id + static_cast<uint32_t>(i)) {
      return absl::DataLossError("the simulator's replies are out of order");
    }
    Reader rd(reply);
    absl::Status s = riscv::DecodeStatus(rd);
    if (!s.ok())
      return absl::InternalError(
          absl::StrCat("simulator rejected a request: ", s.message()));
    if (h.opcode == (riscv::kLaunch | riscv::kReplyBit)) last_launch = rd.U64();
  }
  Writer wait;
  wait.U64(last_launch);
  if (absl::Status s = Call(riscv::kWait, wait.str(), nullptr); !s.ok()) {
    return absl::IsUnavailable(s) ? s
                                  : absl::InternalError(absl::StrCat(
                                        "kernel failed: ", s.message()));
  }
  std::string logits;
  const uint64_t logit_bytes = uint64_t{4} * B * c.vocab_size;
  for (uint64_t off = 0; off < logit_bytes; off += riscv::kMaxDataBytes) {
    Writer read;
    read.U64(L.logits + off)
        .U64(std::min<uint64_t>(riscv::kMaxDataBytes, logit_bytes - off));
    std::string part;
    if (absl::Status s = Call(riscv::kReadMem, read.str(), &part); !s.ok())
      return s;
    logits += part;
  }
  std::string counters;
  if (absl::Status s = Call(riscv::kReadCounters, "", &counters); !s.ok())
    return s;
  Reader cr(counters);
  const riscv::Counters now = riscv::DecodeCounters(cr);
  if (!cr.ok() || logits.size() != 4 * B * c.vocab_size) {
    return absl::DataLossError("short reply from the simulator");
  }
  out->vocab_size = c.vocab_size;
  out->logits.resize(B * c.vocab_size);
  std::memcpy(out->logits.data(), logits.data(), logits.size());
  out->device_time =
      absl::Seconds((now.cycles - last_counters_.cycles) / frequency_hz_);
  out->energy_joules = now.energy_joules - last_counters_.energy_joules;
  last_step_.cycles = now.cycles - last_counters_.cycles;
  for (int i = 0; i < 4; ++i)
    last_step_.flops[i] = now.flops[i] - last_counters_.flops[i];
  last_step_.dma_bytes = now.dma_bytes - last_counters_.dma_bytes;
  last_step_.tcdm_accesses = now.tcdm_accesses - last_counters_.tcdm_accesses;
  last_step_.launches = now.launches - last_counters_.launches;
  last_step_.energy_joules = now.energy_joules - last_counters_.energy_joules;
  last_counters_ = now;
  for (size_t i = 0; i < batch.size(); ++i) {
    slots_[batch[i].seq].length = batch[i].start_pos + batch[i].tokens.size();
  }
  return absl::OkStatus();
}

void RiscvDevice::Release(SequenceId seq) {
  absl::MutexLock l(&mu_);
  auto it = slots_.find(seq);
  if (it == slots_.end()) return;
  free_slots_.push_back(it->second.index);
  slots_.erase(it);
}

int64_t RiscvDevice::kv_used_tokens() const {
  absl::MutexLock l(&mu_);
  int64_t used = 0;
  for (const auto& [id, s] : slots_) used += s.length;
  return used;
}

}  // namespace joule::device
