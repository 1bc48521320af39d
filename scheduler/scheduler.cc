#include "scheduler/scheduler.h"

#include <pthread.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "telemetry/attribution.h"

namespace joule::scheduler {
namespace {

int64_t NowNanos() { return absl::ToUnixNanos(absl::Now()); }

bool Expired(const Sequence& s, absl::Time now) {
  return s.handle->cancelled() || now > s.request.deadline;
}

}  // namespace

struct Scheduler::Loop {
  Loop(int index, std::unique_ptr<device::Device> dev,
       std::unique_ptr<telemetry::EnergyMeter> m, const SchedulerOptions& o)
      : index(index),
        device(std::move(dev)),
        caps(device->capabilities()),
        meter(std::move(m)),
        source(meter ? meter->source() : device::EnergySource::kNone),
        kv(caps.kv_capacity_tokens, o.kv_block_size) {
    limits.max_batch_size =
        std::max(1, std::min(o.max_batch_size, caps.max_batch_size));
    limits.max_step_tokens = std::max(1, o.max_step_tokens);
    if (caps.max_step_tokens > 0) {
      // A step carries at most max(budget, batch) tokens: keep both within
      // what the device's buffers hold.
      limits.max_step_tokens =
          std::min(limits.max_step_tokens, caps.max_step_tokens);
      limits.max_batch_size =
          std::min(limits.max_batch_size, caps.max_step_tokens);
    }
  }

  const int index;
  std::unique_ptr<device::Device> device;
  const device::Capabilities caps;
  // Loop thread only (TotalJoules is thread-safe).
  const std::unique_ptr<telemetry::EnergyMeter> meter;
  const device::EnergySource source;
  bool meter_warned = false;
  StepLimits limits;

  // Guarded by Scheduler::mu_.
  RequestQueue queue;
  bool healthy = true;
  std::string last_error;
  absl::Duration backoff;

  // Held by the loop thread except inside device calls, so the watchdog can
  // take the sequences of a hung step.
  absl::Mutex step_mu;
  KvBlockManager kv ABSL_GUARDED_BY(step_mu);
  std::vector<std::shared_ptr<Sequence>> running ABSL_GUARDED_BY(step_mu);
  // Bumped when the watchdog takes the running sequences: the step in
  // flight then discards its results.
  uint64_t epoch ABSL_GUARDED_BY(step_mu) = 0;
  // Placements whose cache a failed device may still hold.
  std::vector<device::SequenceId> orphans ABSL_GUARDED_BY(step_mu);

  // Read without locks by Devices(), the router and the watchdog.
  std::atomic<int64_t> step_started_ns{0};  // 0: no step in flight.
  std::atomic<bool> in_device_call{false};
  std::atomic<bool> abandoned{false};  // Left hung at shutdown.
  std::atomic<int> running_count{0};
  std::atomic<double> kv_usage{0};
  std::atomic<int64_t> steps{0};
  std::atomic<int64_t> device_ns{0};
  std::atomic<int64_t> overhead_ns{0};
  std::atomic<double> seconds_per_step{-1};

  // Loop thread only: reused step buffers.
  std::vector<int> token_buf;
  std::vector<device::SequenceChunk> prefill_in, decode_in;
  device::StepOutput prefill_out, decode_out;

  std::thread thread;
};

Scheduler::Scheduler(std::vector<std::unique_ptr<device::Device>> devices,
                     SchedulerOptions options)
    : Scheduler(std::move(devices), {}, std::move(options)) {}

Scheduler::Scheduler(
    std::vector<std::unique_ptr<device::Device>> devices,
    std::vector<std::unique_ptr<telemetry::EnergyMeter>> meters,
    SchedulerOptions options)
    : options_(std::move(options)), router_(options_.routing) {
  meters.resize(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    loops_.push_back(std::make_unique<Loop>(static_cast<int>(i),
                                            std::move(devices[i]),
                                            std::move(meters[i]), options_));
    const int ctx = loops_.back()->caps.max_context;
    max_context_ = max_context_ == 0 ? ctx : std::min(max_context_, ctx);
  }
  for (auto& l : loops_) {
    Loop* loop = l.get();
    loop->backoff = options_.probe_backoff;
    loop->thread = std::thread([this, loop] { Run(loop); });
  }
  watchdog_ = std::thread([this] { Watchdog(); });
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::SetHealthListener(
    std::function<void(const std::string&, bool)> listener) {
  health_listener_ = std::move(listener);
}

void Scheduler::NotifyHealth(const std::string& device, bool healthy) {
  if (healthy) {
    spdlog::info("device {} is healthy", device);
  }
  if (health_listener_) health_listener_(device, healthy);
}

std::vector<DeviceLoad> Scheduler::LoadsLocked() const {
  std::vector<DeviceLoad> loads;
  for (const auto& l : loops_) {
    DeviceLoad d;
    d.name = l->caps.name;
    d.healthy = l->healthy;
    d.queued = static_cast<int>(l->queue.size());
    d.running = l->running_count.load();
    d.max_batch_size = l->limits.max_batch_size;
    d.seconds_per_step = l->seconds_per_step.load();
    loads.push_back(std::move(d));
  }
  return loads;
}

absl::StatusOr<std::shared_ptr<Generation>> Scheduler::Submit(
    GenerationRequest request, std::shared_ptr<GenerationObserver> observer) {
  const int prompt_len = static_cast<int>(request.prompt.size());
  if (prompt_len == 0) {
    return absl::InvalidArgumentError("a generation needs at least one token");
  }
  if (prompt_len > max_context_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("prompt of %d tokens exceeds the context of %d",
                        prompt_len, max_context_));
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the server is shutting down");
  int64_t kv_max = 0;
  bool known = request.device.empty();
  for (const auto& l : loops_) {
    if (l->caps.name == request.device) known = true;
    if (!request.pin_device || l->caps.name == request.device) {
      kv_max = std::max(kv_max, l->kv.total_blocks() * l->kv.block_size());
    }
  }
  if (!known) {
    return absl::NotFoundError(
        absl::StrCat("no device named '", request.device, "'"));
  }
  // The last generated token is never fed back, so a full context of
  // max_context positions yields max_context - prompt + 1 tokens; a device
  // whose whole KV cache is smaller bounds it further.
  int64_t max_gen =
      std::min<int64_t>(request.max_tokens, max_context_ - prompt_len + 1);
  max_gen = std::min<int64_t>(max_gen, kv_max - prompt_len);
  if (max_gen < 1) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "a prompt of %d tokens does not fit the largest KV cache (%d "
        "positions); shorten the prompt",
        prompt_len, kv_max));
  }
  int queued = static_cast<int>(parked_.size());
  int64_t queued_tokens = parked_.pending_tokens();
  for (const auto& l : loops_) {
    queued += static_cast<int>(l->queue.size());
    queued_tokens += l->queue.pending_tokens();
  }
  if (queued >= options_.max_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the server is full: %d requests are already waiting; retry later",
        queued));
  }
  if (queued_tokens + prompt_len > options_.max_queued_tokens) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the server is full: %d prompt tokens are already waiting; retry "
        "later",
        queued_tokens));
  }
  auto seq = std::make_shared<Sequence>(std::move(request), std::move(observer),
                                        static_cast<int>(max_gen));
  seq->rank_time =
      seq->request.arrival - seq->request.priority * options_.priority_step;
  seq->order = next_id_++;
  seq->stats.prompt_tokens = prompt_len;
  std::vector<Done> done;
  RouteLocked(seq, &done);
  if (!done.empty()) {
    return absl::UnavailableError(
        absl::StrCat("device ", seq->request.device,
                     " is unavailable and the request is pinned to it"));
  }
  return seq->handle;
}

void Scheduler::RouteLocked(std::shared_ptr<Sequence> seq,
                            std::vector<Done>* done) {
  const int i =
      router_.Pick(LoadsLocked(), seq->request.device, seq->request.pin_device);
  if (i >= 0) {
    loops_[i]->queue.Push(std::move(seq));
  } else if (seq->request.pin_device) {
    const std::string name = seq->request.device;
    std::string why;
    for (const auto& l : loops_) {
      if (l->caps.name == name) why = l->last_error;
    }
    done->push_back({std::move(seq), FinishReason::kFailed,
                     absl::UnavailableError(
                         absl::StrCat("device ", name, " is unavailable (", why,
                                      ") and the request is pinned to it"))});
  } else {
    parked_.Push(std::move(seq));
  }
}

std::vector<DeviceStatus> Scheduler::Devices() const {
  absl::MutexLock lock(&mu_);
  std::vector<DeviceStatus> out;
  for (const auto& l : loops_) {
    DeviceStatus s;
    s.capabilities = l->caps;
    s.healthy = l->healthy;
    s.last_error = l->last_error;
    s.queued = static_cast<int>(l->queue.size());
    s.running = l->running_count.load();
    s.kv_usage = l->kv_usage.load();
    s.steps = l->steps.load();
    s.device_seconds = l->device_ns.load() * 1e-9;
    s.scheduler_seconds = l->overhead_ns.load() * 1e-9;
    s.seconds_per_step = l->seconds_per_step.load();
    s.energy_source = l->source;
    if (l->meter != nullptr) {
      s.energy_description = l->meter->Describe();
      s.total_joules = l->meter->TotalJoules();
    }
    out.push_back(std::move(s));
  }
  return out;
}

void Scheduler::Run(Loop* loop) {
  // Named so that top -H and perf tell the step loops apart (15 bytes max).
  pthread_setname_np(pthread_self(),
                     ("step " + loop->caps.name).substr(0, 15).c_str());
  while (true) {
    bool healthy;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, loop]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || !loop->healthy || !loop->queue.empty() ||
               loop->running_count.load() > 0;
      };
      mu_.Await(absl::Condition(&ready));
      if (shutdown_) break;
      healthy = loop->healthy;
    }
    if (healthy) {
      Iterate(loop);
    } else {
      Probe(loop);
    }
    if (loop->abandoned) return;  // The scheduler is gone; touch nothing.
  }
  std::vector<Done> done;
  {
    absl::MutexLock sl(&loop->step_mu);
    for (auto& s : loop->running) {
      loop->kv.Free(s->id);
      loop->device->Release(s->id);
      done.push_back(
          {s, FinishReason::kCancelled,
           absl::UnavailableError("the server shut down during generation")});
    }
    loop->running.clear();
    loop->running_count = 0;
  }
  Finish(done);
}

void Scheduler::Iterate(Loop* loop) {
  const absl::Time t0 = absl::Now();
  std::vector<Done> done;
  StepPlan plan;
  uint64_t epoch = 0;
  bool idle = false;
  {
    absl::MutexLock sl(&loop->step_mu);
    // Retire what was cancelled or ran out of time since the last step.
    auto& running = loop->running;
    for (auto it = running.begin(); it != running.end();) {
      Sequence& s = **it;
      if (Expired(s, t0)) {
        loop->kv.Free(s.id);
        loop->device->Release(s.id);
        const bool cancelled = s.handle->cancelled();
        done.push_back(
            {*it,
             cancelled ? FinishReason::kCancelled : FinishReason::kDeadline,
             cancelled ? absl::CancelledError("generation cancelled")
                       : absl::DeadlineExceededError("deadline exceeded")});
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      while (!loop->queue.empty()) {
        Sequence& s = *loop->queue.front();
        s.id = next_id_++;
        if (!TryAdmit(s, loop->kv, static_cast<int>(running.size()),
                      loop->limits))
          break;
        std::shared_ptr<Sequence> seq = loop->queue.PopFront();
        seq->admitted_at = seq->id;
        seq->stats.device = loop->caps.name;
        if (!seq->scheduled_once) {
          seq->scheduled_once = true;
          seq->stats.queue_time = t0 - seq->request.arrival;
        }
        running.push_back(std::move(seq));
      }
    }
    plan = PlanStep(running, loop->kv, loop->limits);
    if (!plan.preempted.empty()) {
      for (auto& p : plan.preempted) {
        loop->device->Release(p->id);
        p->cached = 0;
        p->stats.preemptions++;
        spdlog::debug("preempted request {} on {} for KV space", p->request.id,
                      loop->caps.name);
      }
      absl::MutexLock lock(&mu_);
      for (auto& p : plan.preempted) loop->queue.Push(p);
    }
    loop->running_count = static_cast<int>(running.size());
    loop->kv_usage = loop->kv.usage();
    idle = plan.empty();
    // Inputs are copied so that a sequence the watchdog moves elsewhere can
    // change while a hung device still reads them.
    loop->token_buf.clear();
    size_t total = plan.decode.size();
    for (const auto& c : plan.prefill) total += c.tokens;
    loop->token_buf.reserve(total);
    loop->prefill_in.clear();
    loop->decode_in.clear();
    for (const auto& c : plan.prefill) {
      const size_t at = loop->token_buf.size();
      loop->token_buf.insert(loop->token_buf.end(),
                             c.seq->context.begin() + c.seq->cached,
                             c.seq->context.begin() + c.seq->cached + c.tokens);
      loop->prefill_in.push_back(
          {c.seq->id, c.seq->cached,
           absl::MakeConstSpan(loop->token_buf).subspan(at, c.tokens)});
    }
    for (Sequence* s : plan.decode) {
      const size_t at = loop->token_buf.size();
      loop->token_buf.push_back(s->context[s->cached]);
      loop->decode_in.push_back(
          {s->id, s->cached,
           absl::MakeConstSpan(loop->token_buf).subspan(at, 1)});
    }
    epoch = loop->epoch;
    if (!idle) loop->step_started_ns = NowNanos();
  }
  if (idle) {
    Finish(done);
    return;
  }

  loop->in_device_call = true;
  const absl::Time d0 = absl::Now();
  absl::Status status;
  std::optional<double> prefill_joules, decode_joules;
  if (!loop->prefill_in.empty()) {
    prefill_joules = Metered(loop, /*prefill=*/true, &status);
  }
  if (status.ok() && !loop->decode_in.empty()) {
    decode_joules = Metered(loop, /*prefill=*/false, &status);
  }
  const absl::Duration device_wall = absl::Now() - d0;
  loop->in_device_call = false;
  if (loop->abandoned) return;

  {
    absl::MutexLock sl(&loop->step_mu);
    loop->step_started_ns = 0;
    if (loop->epoch != epoch) return;  // The watchdog moved this step's work.
    if (!status.ok()) {
      FailLoop(loop, status, &done);
    } else {
      telemetry::Metrics* m = options_.metrics;
      auto flops = [this](int pos) {
        return options_.flops_at ? options_.flops_at(pos) : 1.0;
      };
      if (!plan.prefill.empty()) {
        std::vector<Sequence*> seqs;
        std::vector<double> work;
        for (const auto& c : plan.prefill) {
          seqs.push_back(c.seq);
          double w = 0;
          for (int p = c.seq->cached; p < c.seq->cached + c.tokens; ++p)
            w += flops(p);
          work.push_back(w);
        }
        Attribute(prefill_joules, seqs, work);
        if (m)
          m->Step(loop->caps.name, loop->source, "prefill",
                  loop->prefill_out.device_time, prefill_joules);
      }
      if (!plan.decode.empty()) {
        std::vector<double> work;
        for (Sequence* s : plan.decode) work.push_back(flops(s->cached));
        Attribute(decode_joules, plan.decode, work);
        if (m)
          m->Step(loop->caps.name, loop->source, "decode",
                  loop->decode_out.device_time, decode_joules);
      }
      for (size_t i = 0; i < plan.prefill.size(); ++i) {
        Sequence& s = *plan.prefill[i].seq;
        s.cached += plan.prefill[i].tokens;
        s.stats.prefill_time += loop->prefill_out.device_time;
        if (s.uncached() == 0) Emit(loop, s, loop->prefill_out.row(i), &done);
      }
      for (size_t i = 0; i < plan.decode.size(); ++i) {
        Sequence& s = *plan.decode[i];
        s.cached += 1;
        s.stats.decode_time += loop->decode_out.device_time;
        Emit(loop, s, loop->decode_out.row(i), &done);
      }
      // Emit queued finished sequences in `done`; drop them from running.
      auto& running = loop->running;
      running.erase(std::remove_if(running.begin(), running.end(),
                                   [&](const std::shared_ptr<Sequence>& s) {
                                     for (const Done& d : done) {
                                       if (d.seq == s) return true;
                                     }
                                     return false;
                                   }),
                    running.end());
      loop->running_count = static_cast<int>(running.size());
      loop->kv_usage = loop->kv.usage();
      const double step_s = absl::ToDoubleSeconds(device_wall);
      const double avg = loop->seconds_per_step.load();
      loop->seconds_per_step = avg < 0 ? step_s : 0.9 * avg + 0.1 * step_s;
      loop->steps++;
      loop->device_ns += absl::ToInt64Nanoseconds(device_wall);
    }
  }
  loop->overhead_ns += absl::ToInt64Nanoseconds(absl::Now() - t0 - device_wall);
  Finish(done);
}

std::optional<double> Scheduler::Metered(Loop* loop, bool prefill,
                                         absl::Status* status) {
  device::StepOutput& out = prefill ? loop->prefill_out : loop->decode_out;
  out.energy_joules.reset();
  if (loop->meter) loop->meter->BeginStep();
  *status = prefill ? loop->device->Prefill(loop->prefill_in, &out)
                    : loop->device->Decode(loop->decode_in, &out);
  if (!status->ok() || loop->meter == nullptr) return std::nullopt;
  absl::StatusOr<double> joules =
      loop->meter->EndStep(out.device_time, out.energy_joules);
  if (!joules.ok()) {
    if (!loop->meter_warned) {
      spdlog::warn("device {}: no energy for a step: {}", loop->caps.name,
                   joules.status().ToString());
      loop->meter_warned = true;
    }
    return std::nullopt;
  }
  return *joules;
}

void Scheduler::Attribute(std::optional<double> joules,
                          const std::vector<Sequence*>& seqs,
                          const std::vector<double>& work) {
  if (!joules.has_value()) {
    for (Sequence* s : seqs) s->pending_known = false;
    return;
  }
  const std::vector<double> shares = telemetry::AttributeEnergy(*joules, work);
  for (size_t i = 0; i < seqs.size(); ++i) seqs[i]->pending_joules += shares[i];
}

bool Scheduler::Emit(Loop* loop, Sequence& s, absl::Span<float> logits,
                     std::vector<Done>* done) {
  TokenEvent ev;
  ev.token = s.sampler.Sample(logits);
  ev.index = s.generated();
  s.context.push_back(ev.token);
  const auto& ends = s.request.end_tokens;
  ev.special = std::find(ends.begin(), ends.end(), ev.token) != ends.end();
  const bool eos = ev.special && !s.request.ignore_eos;
  const bool full = s.generated() >= s.max_generated;
  ev.last = eos || full;
  ev.time = absl::Now();
  ev.device = loop->caps.name;
  ev.energy_source = loop->source;
  if (s.pending_known && loop->meter != nullptr) {
    ev.energy_joules = s.pending_joules;
    s.stats.energy_joules =
        s.stats.energy_joules.value_or(0) + s.pending_joules;
  } else {
    s.energy_known = false;
  }
  s.stats.energy_source = loop->source;
  s.pending_joules = 0;
  s.pending_known = true;
  if (ev.index == 0) s.stats.first_token_time = ev.time;
  if (telemetry::Metrics* m = options_.metrics) {
    if (ev.index == 0) m->PromptTokens(loop->caps.name, s.prompt_len);
    m->Token(loop->caps.name, loop->source, ev.energy_joules);
  }
  const bool keep_going = s.observer->OnToken(ev);
  FinishReason reason;
  if (eos) {
    reason = FinishReason::kEndOfSequence;
  } else if (!keep_going) {
    reason = FinishReason::kStopped;
  } else if (full) {
    reason = FinishReason::kLength;
  } else {
    return false;
  }
  loop->kv.Free(s.id);
  loop->device->Release(s.id);
  // Find the owning pointer among running to keep the sequence alive.
  for (const auto& r : loop->running) {
    if (r.get() == &s) done->push_back({r, reason, absl::OkStatus()});
  }
  return true;
}

void Scheduler::FailLoop(Loop* loop, const absl::Status& why,
                         std::vector<Done>* done) {
  spdlog::warn("device {} failed: {}; moving {} running sequences",
               loop->caps.name, why.ToString(), loop->running.size());
  std::vector<std::shared_ptr<Sequence>> moved;
  moved.swap(loop->running);
  loop->running_count = 0;
  loop->epoch++;
  for (auto& s : moved) {
    loop->kv.Free(s->id);
    loop->orphans.push_back(s->id);
    s->cached = 0;
    s->stats.failovers++;
  }
  loop->kv_usage = loop->kv.usage();
  {
    absl::MutexLock lock(&mu_);
    const bool was_healthy = loop->healthy;
    loop->healthy = false;
    loop->last_error = std::string(why.message());
    loop->backoff = options_.probe_backoff;
    auto queued = loop->queue.RemoveIf([](const Sequence&) { return true; });
    moved.insert(moved.end(), queued.begin(), queued.end());
    for (auto& s : moved) RouteLocked(std::move(s), done);
    if (!was_healthy) return;
  }
  NotifyHealth(loop->caps.name, false);
}

void Scheduler::Probe(Loop* loop) {
  {
    absl::MutexLock lock(&mu_);
    auto stop = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), loop->backoff);
    if (shutdown_) return;
  }
  std::vector<device::SequenceId> orphans;
  {
    absl::MutexLock sl(&loop->step_mu);
    orphans.swap(loop->orphans);
  }
  device::SequenceId probe_id;
  {
    absl::MutexLock lock(&mu_);
    probe_id = next_id_++;
  }
  loop->in_device_call = true;
  loop->step_started_ns = NowNanos();
  for (device::SequenceId id : orphans) loop->device->Release(id);
  const int token[1] = {1};
  device::StepOutput out;
  absl::Status status = loop->device->Prefill({{probe_id, 0, token}}, &out);
  loop->device->Release(probe_id);
  loop->step_started_ns = 0;
  loop->in_device_call = false;
  if (loop->abandoned) return;
  std::vector<Done> done;
  bool recovered = false;
  {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      loop->healthy = true;
      loop->last_error.clear();
      loop->backoff = options_.probe_backoff;
      recovered = true;
      auto parked = parked_.RemoveIf([](const Sequence&) { return true; });
      for (auto& s : parked) RouteLocked(std::move(s), &done);
    } else {
      loop->last_error = std::string(status.message());
      loop->backoff = std::min(loop->backoff * 2, options_.max_probe_backoff);
      spdlog::warn("device {} still unhealthy: {}; next probe in {}",
                   loop->caps.name, status.ToString(),
                   absl::FormatDuration(loop->backoff));
    }
  }
  if (recovered) NotifyHealth(loop->caps.name, true);
  Finish(done);
}

void Scheduler::Watchdog() {
  while (true) {
    std::vector<Done> done;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(10));
      if (shutdown_) return;
      // Waiting requests that were cancelled or ran out of time end now,
      // not when they reach a device.
      const absl::Time now = absl::Now();
      auto expired = [now](const Sequence& s) { return Expired(s, now); };
      std::vector<std::shared_ptr<Sequence>> gone = parked_.RemoveIf(expired);
      for (auto& l : loops_) {
        auto g = l->queue.RemoveIf(expired);
        gone.insert(gone.end(), g.begin(), g.end());
      }
      for (auto& s : gone) {
        const bool cancelled = s->handle->cancelled();
        done.push_back(
            {s, cancelled ? FinishReason::kCancelled : FinishReason::kDeadline,
             cancelled ? absl::CancelledError("generation cancelled")
                       : absl::DeadlineExceededError(
                             "deadline exceeded while queued")});
      }
    }
    const int64_t now_ns = NowNanos();
    for (auto& l : loops_) {
      const int64_t started = l->step_started_ns.load();
      if (started == 0 ||
          now_ns - started < absl::ToInt64Nanoseconds(options_.step_timeout)) {
        continue;
      }
      absl::MutexLock sl(&l->step_mu);
      if (l->step_started_ns.load() != started) continue;  // It just finished.
      l->step_started_ns = 0;  // Report a hang once.
      FailLoop(l.get(),
               absl::DeadlineExceededError(
                   absl::StrCat("a step ran longer than ",
                                absl::FormatDuration(options_.step_timeout))),
               &done);
    }
    Finish(done);
  }
}

void Scheduler::Finish(std::vector<Done>& done) {
  for (Done& d : done) {
    Sequence& s = *d.seq;
    s.stats.reason = d.reason;
    s.stats.status = d.status;
    s.stats.completion_tokens = s.generated();
    s.stats.finish_time = absl::Now();
    if (!s.energy_known) s.stats.energy_joules.reset();
    if (!d.status.ok() && d.reason == FinishReason::kFailed) {
      spdlog::warn("request {} failed: {}", s.request.id, d.status.ToString());
    }
    s.observer->OnFinish(s.stats);
  }
  done.clear();
}

void Scheduler::Shutdown() {
  std::vector<Done> done;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    std::vector<std::shared_ptr<Sequence>> waiting =
        parked_.RemoveIf([](const Sequence&) { return true; });
    for (auto& l : loops_) {
      auto q = l->queue.RemoveIf([](const Sequence&) { return true; });
      waiting.insert(waiting.end(), q.begin(), q.end());
    }
    for (auto& s : waiting) {
      done.push_back({s, FinishReason::kCancelled,
                      absl::UnavailableError("the server shut down before this "
                                             "request reached a device")});
    }
  }
  Finish(done);
  if (watchdog_.joinable()) watchdog_.join();
  for (auto& l : loops_) {
    if (!l->thread.joinable()) continue;
    const int64_t started = l->step_started_ns.load();
    const bool hung =
        l->in_device_call.load() &&
        (started == 0 || NowNanos() - started >=
                             absl::ToInt64Nanoseconds(options_.step_timeout));
    if (hung) {
      // A device call that never returns cannot be joined: the thread is
      // left with its loop and device, which are never freed, and exits
      // without touching the scheduler if the call ever returns.
      spdlog::warn("device {} is hung; abandoning its step loop", l->caps.name);
      l->abandoned = true;
      l->thread.detach();
      l.release();
      continue;
    }
    l->thread.join();
  }
}

}  // namespace joule::scheduler
