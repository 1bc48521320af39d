#include "scheduler/device_loop.h"

#include <pthread.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "telemetry/attribution.h"

namespace joule::scheduler {
namespace {

int64_t NowNanos() { return absl::ToUnixNanos(absl::Now()); }

bool Expired(const Sequence& s, absl::Time now) {
  return s.handle->cancelled() || now > s.request.deadline;
}

Done Ended(std::shared_ptr<Sequence> s, absl::string_view where) {
  const bool cancelled = s->handle->cancelled();
  return {std::move(s),
          cancelled ? FinishReason::kCancelled : FinishReason::kDeadline,
          cancelled ? absl::CancelledError("generation cancelled")
                    : absl::DeadlineExceededError(
                          absl::StrCat("deadline exceeded", where))};
}

// The step's kind, as the step-duration metric labels it.
const char* StepKind(const StepPlan& plan) {
  if (plan.decode.empty()) return "prefill";
  return plan.prefill.empty() ? "decode" : "mixed";
}

StepLimits LimitsFor(const SchedulerOptions& o,
                     const device::Capabilities& caps) {
  StepLimits limits;
  limits.max_batch_size =
      std::max(1, std::min(o.max_batch_size, caps.max_batch_size));
  limits.max_step_tokens = std::max(1, o.max_step_tokens);
  if (caps.max_step_tokens > 0) {
    // A step carries at most max(budget, batch) tokens: keep both within
    // what the device's buffers hold.
    limits.max_step_tokens =
        std::min(limits.max_step_tokens, caps.max_step_tokens);
    limits.max_batch_size = std::min(limits.max_batch_size, caps.max_step_tokens);
  }
  return limits;
}

}  // namespace

DeviceLoop::DeviceLoop(std::unique_ptr<device::Device> device,
                       std::unique_ptr<telemetry::EnergyMeter> meter,
                       const SchedulerOptions& options, Callbacks callbacks)
    : device_(std::move(device)),
      caps_(device_->capabilities()),
      meter_(std::move(meter)),
      options_(options),
      callbacks_(std::move(callbacks)),
      site_{caps_.name,
            meter_ ? meter_->source() : device::EnergySource::kNone,
            meter_ != nullptr, options.metrics},
      limits_(LimitsFor(options, caps_)),
      backoff_(options.probe_backoff),
      kv_(caps_.kv_capacity_tokens, options.kv_block_size) {
  kv_capacity_ = kv_.total_blocks() * kv_.block_size();
}

DeviceLoop::~DeviceLoop() {
  if (thread_.joinable()) {
    Stop();
    thread_.join();
  }
}

void DeviceLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DeviceLoop::WaitUntilProbed(absl::Duration timeout) {
  probed_.WaitForNotificationWithTimeout(timeout);
}

// --- The front desk's side. --------------------------------------------------

void DeviceLoop::Enqueue(std::shared_ptr<Sequence> seq) {
  absl::MutexLock lock(&mu_);
  queue_.Push(std::move(seq));
}

DeviceLoad DeviceLoop::Load() const {
  DeviceLoad d;
  d.name = caps_.name;
  {
    absl::MutexLock lock(&mu_);
    d.healthy = healthy_;
    d.queued = static_cast<int>(queue_.size());
  }
  d.running = running_count_.load();
  d.max_batch_size = limits_.max_batch_size;
  d.seconds_per_step = seconds_per_step_.load();
  d.prefill = costs_.prefill();
  d.decode = costs_.decode();
  return d;
}

DeviceStatus DeviceLoop::Status() const {
  const DeviceLoad load = Load();
  DeviceStatus s;
  s.capabilities = caps_;
  s.healthy = load.healthy;
  s.last_error = last_error();
  s.queued = load.queued;
  s.running = load.running;
  s.kv_usage = kv_usage_.load();
  s.steps = steps_.load();
  s.device_seconds = device_ns_.load() * 1e-9;
  s.scheduler_seconds = overhead_ns_.load() * 1e-9;
  s.seconds_per_step = load.seconds_per_step;
  s.prefill = load.prefill;
  s.decode = load.decode;
  s.energy_source = site_.source;
  if (meter_ != nullptr) {
    s.energy_description = meter_->Describe();
    s.total_joules = meter_->TotalJoules();
  }
  return s;
}

int64_t DeviceLoop::queued_tokens() const {
  absl::MutexLock lock(&mu_);
  return queue_.pending_tokens();
}

bool DeviceLoop::healthy() const {
  absl::MutexLock lock(&mu_);
  return healthy_;
}

std::string DeviceLoop::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

std::vector<std::shared_ptr<Sequence>> DeviceLoop::TakeExpired(
    absl::Time now) {
  absl::MutexLock lock(&mu_);
  return queue_.RemoveIf([now](const Sequence& s) { return Expired(s, now); });
}

void DeviceLoop::FailIfHung(absl::Duration timeout) {
  const int64_t started = step_started_ns_.load();
  if (started == 0 || NowNanos() - started < absl::ToInt64Nanoseconds(timeout))
    return;
  std::vector<std::shared_ptr<Sequence>> moved;
  bool was_healthy = false;
  {
    absl::MutexLock sl(&step_mu_);
    if (step_started_ns_.load() != started) return;  // It just finished.
    step_started_ns_ = 0;                            // Report a hang once.
    moved = FailLocked(
        absl::DeadlineExceededError(absl::StrCat(
            "a step ran longer than ", absl::FormatDuration(timeout))),
        &was_healthy);
  }
  HandOff(std::move(moved), was_healthy);
}

std::vector<std::shared_ptr<Sequence>> DeviceLoop::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  return queue_.RemoveIf([](const Sequence&) { return true; });
}

bool DeviceLoop::JoinOrAbandon(absl::Duration timeout) {
  if (!thread_.joinable()) return true;
  const int64_t started = step_started_ns_.load();
  const bool hung =
      in_device_call_.load() &&
      (started == 0 || NowNanos() - started >= absl::ToInt64Nanoseconds(timeout));
  if (hung) {
    // A device call that never returns cannot be joined: the thread keeps
    // this loop and its device, and exits without touching anything else if
    // the call ever returns.
    spdlog::warn("device {} is hung; abandoning its step loop", caps_.name);
    abandoned_ = true;
    thread_.detach();
    return false;
  }
  thread_.join();
  return true;
}

// --- The loop. ---------------------------------------------------------------

void DeviceLoop::Run() {
  // Named so that top -H and perf tell the step loops apart (15 bytes max).
  pthread_setname_np(pthread_self(),
                     ("step " + caps_.name).substr(0, 15).c_str());
  if (options_.probe_at_start) {
    const absl::Status s = Probe();
    if (abandoned_) return;
    if (!s.ok()) {
      bool was_healthy = false;
      std::vector<std::shared_ptr<Sequence>> moved;
      {
        absl::MutexLock sl(&step_mu_);
        moved = FailLocked(s, &was_healthy);
      }
      HandOff(std::move(moved), was_healthy);
    }
  }
  probed_.Notify();
  while (WaitForWork()) {
    if (healthy()) {
      Iterate();
    } else {
      Reprobe();
    }
    if (abandoned_) return;  // The scheduler is gone; touch nothing.
  }
  EndRunning();
}

bool DeviceLoop::WaitForWork() {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !healthy_ || !queue_.empty() ||
           running_count_.load() > 0;
  };
  mu_.Await(absl::Condition(&ready));
  return !stopping_;
}

void DeviceLoop::Iterate() {
  const absl::Time t0 = absl::Now();
  std::vector<Done> done;
  StepPlan plan;
  uint64_t epoch = 0;
  {
    absl::MutexLock sl(&step_mu_);
    Retire(t0, &done);
    Admit(t0);
    plan = Plan();
    if (!plan.empty()) BuildInputs(plan);
    epoch = epoch_;
  }
  if (plan.empty()) {
    FinishAll(done);
    return;
  }
  const StepResult result = RunDevice(batch_);
  if (abandoned_) return;
  std::vector<std::shared_ptr<Sequence>> moved;
  bool failed = false, was_healthy = false;
  {
    absl::MutexLock sl(&step_mu_);
    step_started_ns_ = 0;
    // A changed epoch: the watchdog already moved this step's work.
    if (epoch_ == epoch) {
      if (result.status.ok()) {
        Commit(plan, result, &done);
      } else {
        failed = true;
        moved = FailLocked(result.status, &was_healthy);
      }
    }
  }
  overhead_ns_ += absl::ToInt64Nanoseconds(absl::Now() - t0 - result.wall);
  FinishAll(done);
  if (failed) HandOff(std::move(moved), was_healthy);
}

void DeviceLoop::Retire(absl::Time now, std::vector<Done>* done) {
  for (auto it = running_.begin(); it != running_.end();) {
    if (!Expired(**it, now)) {
      ++it;
      continue;
    }
    kv_.Free((*it)->id);
    device_->Release((*it)->id);
    done->push_back(Ended(std::move(*it), ""));
    it = running_.erase(it);
  }
}

void DeviceLoop::Admit(absl::Time now) {
  absl::MutexLock lock(&mu_);
  while (!queue_.empty()) {
    Sequence& s = *queue_.front();
    s.id = next_seq_id_;  // Taken only if admitted.
    if (!TryAdmit(s, kv_, static_cast<int>(running_.size()), limits_)) break;
    ++next_seq_id_;
    std::shared_ptr<Sequence> seq = queue_.PopFront();
    seq->stats.device = caps_.name;
    if (!seq->scheduled_once) {
      seq->scheduled_once = true;
      seq->stats.queue_time = now - seq->request.arrival;
    }
    running_.push_back(std::move(seq));
  }
}

StepPlan DeviceLoop::Plan() {
  StepPlan plan = PlanStep(running_, kv_, limits_);
  if (!plan.preempted.empty()) {
    for (auto& p : plan.preempted) {
      device_->Release(p->id);
      p->cached = 0;
      p->stats.preemptions++;
      spdlog::debug("preempted request {} on {} for KV space", p->request.id,
                    caps_.name);
    }
    absl::MutexLock lock(&mu_);
    for (auto& p : plan.preempted) queue_.Push(p);
  }
  running_count_ = static_cast<int>(running_.size());
  kv_usage_ = kv_.usage();
  return plan;
}

void DeviceLoop::BuildInputs(const StepPlan& plan) {
  // Inputs are copied so that a sequence the watchdog moves elsewhere can
  // change while a hung device still reads them. Prompt chunks come first,
  // then decodes: output row i belongs to batch_[i].
  size_t total = plan.decode.size();
  for (const auto& c : plan.prefill) total += c.tokens;
  token_buf_.clear();
  token_buf_.reserve(total);  // No reallocation: the spans stay valid.
  batch_.clear();
  auto add = [this](const Sequence& s, int tokens) {
    const size_t at = token_buf_.size();
    token_buf_.insert(token_buf_.end(), s.context.begin() + s.cached,
                      s.context.begin() + s.cached + tokens);
    batch_.push_back({s.id, s.cached,
                      absl::MakeConstSpan(token_buf_).subspan(at, tokens)});
  };
  for (const auto& c : plan.prefill) add(*c.seq, c.tokens);
  for (const Sequence* s : plan.decode) add(*s, 1);
}

DeviceLoop::StepResult DeviceLoop::RunDevice(
    absl::Span<const device::SequenceChunk> batch) {
  StepResult r;
  step_started_ns_ = NowNanos();
  in_device_call_ = true;
  const absl::Time start = absl::Now();
  out_.energy_joules.reset();
  if (meter_) meter_->BeginStep();
  r.status = device_->Step(batch, &out_);
  r.wall = absl::Now() - start;
  in_device_call_ = false;
  if (!r.status.ok() || meter_ == nullptr) return r;
  absl::StatusOr<double> joules =
      meter_->EndStep(out_.device_time, out_.energy_joules);
  if (joules.ok()) {
    r.joules = *joules;
  } else if (!meter_warned_) {
    spdlog::warn("device {}: no energy for a step: {}", caps_.name,
                 joules.status().ToString());
    meter_warned_ = true;
  }
  return r;
}

void DeviceLoop::Commit(const StepPlan& plan, const StepResult& result,
                        std::vector<Done>* done) {
  Attribute(plan, result);
  Emit(plan, done);
  RecordStep(result);
}

DeviceLoop::StepWork DeviceLoop::WorkOf(const StepPlan& plan) const {
  auto flops = [this](int pos) {
    return options_.flops_at ? options_.flops_at(pos) : 1.0;
  };
  StepWork w;
  for (const auto& c : plan.prefill) {
    double f = 0;
    for (int p = c.seq->cached; p < c.seq->cached + c.tokens; ++p) f += flops(p);
    w.seqs.push_back(c.seq);
    w.work.push_back(f);
    w.phase[0].tokens += c.tokens;
    w.phase[0].work += f;
  }
  for (Sequence* s : plan.decode) {
    w.seqs.push_back(s);
    w.work.push_back(flops(s->cached));
    w.phase[1].tokens += 1;
    w.phase[1].work += w.work.back();
  }
  return w;
}

void DeviceLoop::Attribute(const StepPlan& plan, const StepResult& result) {
  StepWork w = WorkOf(plan);
  const size_t n_prefill = plan.prefill.size();
  if (result.joules.has_value()) {
    const std::vector<double> shares =
        telemetry::AttributeEnergy(*result.joules, w.work);
    w.phase[0].joules = w.phase[1].joules = 0.0;
    for (size_t i = 0; i < w.seqs.size(); ++i) {
      w.seqs[i]->pending_joules += shares[i];
      *w.phase[i < n_prefill ? 0 : 1].joules += shares[i];
    }
  } else {
    for (Sequence* s : w.seqs) s->pending_known = false;
  }
  RecordCosts(plan, w);
}

void DeviceLoop::RecordCosts(const StepPlan& plan, const StepWork& w) {
  // The step's device time splits between its phases as its work does.
  const double seconds = absl::ToDoubleSeconds(out_.device_time);
  const double total = w.phase[0].work + w.phase[1].work;
  const double prefill_share = total > 0 ? w.phase[0].work / total
                               : w.phase[0].tokens > 0 ? 1.0
                                                       : 0.0;
  costs_.Record(Phase::kPrefill, w.phase[0].tokens, seconds * prefill_share,
                w.phase[0].joules);
  costs_.Record(Phase::kDecode, w.phase[1].tokens,
                seconds * (1 - prefill_share), w.phase[1].joules);
  telemetry::Metrics* m = options_.metrics;
  if (m == nullptr) return;
  m->Step(caps_.name, StepKind(plan), out_.device_time);
  if (w.phase[0].tokens > 0)
    m->StepEnergy(caps_.name, site_.source, "prefill", w.phase[0].joules);
  if (w.phase[1].tokens > 0)
    m->StepEnergy(caps_.name, site_.source, "decode", w.phase[1].joules);
}

void DeviceLoop::Emit(const StepPlan& plan, std::vector<Done>* done) {
  absl::flat_hash_set<const Sequence*> ended;
  auto emit = [&](Sequence& s, int row) {
    const std::optional<FinishReason> end =
        EmitToken(s, out_.row(row), site_);
    if (!end.has_value()) return;
    kv_.Free(s.id);
    device_->Release(s.id);
    for (const auto& r : running_) {
      if (r.get() == &s) done->push_back({r, *end, absl::OkStatus()});
    }
    ended.insert(&s);
  };
  int row = 0;
  for (const auto& c : plan.prefill) {
    Sequence& s = *c.seq;
    s.cached += c.tokens;
    s.stats.prefill_time += out_.device_time;
    if (s.uncached() == 0) emit(s, row);
    ++row;
  }
  for (Sequence* s : plan.decode) {
    s->cached += 1;
    s->stats.decode_time += out_.device_time;
    emit(*s, row++);
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [&](const std::shared_ptr<Sequence>& s) {
                                  return ended.contains(s.get());
                                }),
                 running_.end());
}

void DeviceLoop::RecordStep(const StepResult& result) {
  running_count_ = static_cast<int>(running_.size());
  kv_usage_ = kv_.usage();
  const double step_s = absl::ToDoubleSeconds(result.wall);
  const double avg = seconds_per_step_.load();
  seconds_per_step_ = avg < 0 ? step_s : 0.9 * avg + 0.1 * step_s;
  steps_++;
  device_ns_ += absl::ToInt64Nanoseconds(result.wall);
}

// --- Failure, probes and shutdown. --------------------------------------------

std::vector<std::shared_ptr<Sequence>> DeviceLoop::FailLocked(
    const absl::Status& why, bool* was_healthy) {
  spdlog::warn("device {} failed: {}; moving {} running sequences",
               caps_.name, why.ToString(), running_.size());
  std::vector<std::shared_ptr<Sequence>> moved;
  moved.swap(running_);
  running_count_ = 0;
  epoch_++;
  for (auto& s : moved) {
    kv_.Free(s->id);
    orphans_.push_back(s->id);
    s->cached = 0;
    s->stats.failovers++;
  }
  kv_usage_ = kv_.usage();
  absl::MutexLock lock(&mu_);
  *was_healthy = healthy_;
  healthy_ = false;
  last_error_ = std::string(why.message());
  backoff_ = options_.probe_backoff;
  auto queued = queue_.RemoveIf([](const Sequence&) { return true; });
  moved.insert(moved.end(), queued.begin(), queued.end());
  return moved;
}

void DeviceLoop::HandOff(std::vector<std::shared_ptr<Sequence>> moved,
                         bool was_healthy) {
  if (!moved.empty()) callbacks_.reroute(std::move(moved));
  if (was_healthy) callbacks_.health_changed(false);
}

void DeviceLoop::Reprobe() {
  {
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff_);
    if (stopping_) return;
  }
  const absl::Status status = Probe();
  if (abandoned_) return;
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok()) {
      last_error_ = std::string(status.message());
      backoff_ = std::min(backoff_ * 2, options_.max_probe_backoff);
      spdlog::warn("device {} still unhealthy: {}; next probe in {}",
                   caps_.name, status.ToString(),
                   absl::FormatDuration(backoff_));
      return;
    }
    healthy_ = true;
    last_error_.clear();
    backoff_ = options_.probe_backoff;
  }
  callbacks_.health_changed(true);
}

absl::Status DeviceLoop::Probe() {
  std::vector<device::SequenceId> orphans;
  device::SequenceId id;
  {
    absl::MutexLock sl(&step_mu_);
    orphans.swap(orphans_);
    id = next_seq_id_++;
  }
  for (device::SequenceId o : orphans) device_->Release(o);
  // Eight prompt tokens (BOS, a valid id in every vocabulary), within the
  // step budget and leaving room for the decode.
  const int n = std::max(
      1, std::min({8, limits_.max_step_tokens, caps_.max_context - 1}));
  const std::vector<int> prompt(n, 1);
  absl::Status s = ProbeStep({{id, 0, prompt}}, Phase::kPrefill);
  if (s.ok() && n < caps_.max_context) {
    const int one[1] = {1};
    s = ProbeStep({{id, n, one}}, Phase::kDecode);
  }
  device_->Release(id);
  return s;
}

absl::Status DeviceLoop::ProbeStep(
    absl::Span<const device::SequenceChunk> batch, Phase phase) {
  const StepResult r = RunDevice(batch);
  step_started_ns_ = 0;
  if (!r.status.ok()) return r.status;
  int64_t tokens = 0;
  for (const auto& c : batch) tokens += c.tokens.size();
  costs_.Record(phase, tokens, absl::ToDoubleSeconds(out_.device_time),
                r.joules);
  // A lone decode is a step's time at the lightest load: the latency
  // router's first figure for this device.
  if (phase == Phase::kDecode && seconds_per_step_.load() < 0) {
    seconds_per_step_ = absl::ToDoubleSeconds(r.wall);
  }
  return absl::OkStatus();
}

void DeviceLoop::EndRunning() {
  std::vector<Done> done;
  {
    absl::MutexLock sl(&step_mu_);
    for (auto& s : running_) {
      kv_.Free(s->id);
      device_->Release(s->id);
      done.push_back(
          {s, FinishReason::kCancelled,
           absl::UnavailableError("the server shut down during generation")});
    }
    running_.clear();
    running_count_ = 0;
  }
  FinishAll(done);
}

}  // namespace joule::scheduler
