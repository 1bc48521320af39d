#include "scheduler/scheduler.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace joule::scheduler {
namespace {

bool Expired(const Sequence& s, absl::Time now) {
  return s.handle->cancelled() || now > s.request.deadline;
}

// What is left of a sequence's work: its whole context recomputes wherever
// it goes next.
RequestShape ShapeOf(const Sequence& s) {
  return {static_cast<int>(s.context.size()),
          s.max_generated - s.generated()};
}

std::string Prices(const std::vector<DeviceLoad>& loads,
                   const Placement& p, RoutingPolicy policy) {
  const char* unit = policy == RoutingPolicy::kEnergy ? " J" : " s";
  std::vector<std::string> parts;
  for (size_t i = 0; i < loads.size(); ++i) {
    parts.push_back(
        p.prices[i] < 0
            ? absl::StrCat(loads[i].name, " -")
            : absl::StrFormat("%s %.4g%s", loads[i].name, p.prices[i], unit));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

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
    const int index = static_cast<int>(i);
    DeviceLoop::Callbacks callbacks{
        [this, index](std::vector<std::shared_ptr<Sequence>> seqs) {
          Reroute(index, std::move(seqs));
        },
        [this, index](bool healthy) { OnHealthChanged(index, healthy); }};
    loops_.push_back(std::make_unique<DeviceLoop>(
        std::move(devices[i]), std::move(meters[i]), options_,
        std::move(callbacks)));
    const int ctx = loops_.back()->caps().max_context;
    max_context_ = max_context_ == 0 ? ctx : std::min(max_context_, ctx);
  }
  for (auto& l : loops_) l->Start();
  watchdog_ = std::thread([this] { Watchdog(); });
  // The watchdog ends a hung probe after step_timeout.
  for (auto& l : loops_) {
    l->WaitUntilProbed(options_.step_timeout + absl::Seconds(1));
  }
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::SetHealthListener(
    std::function<void(const std::string&, bool)> listener) {
  absl::MutexLock lock(&mu_);
  health_listener_ = std::move(listener);
}

absl::StatusOr<std::shared_ptr<Generation>> Scheduler::Submit(
    GenerationRequest request, std::shared_ptr<GenerationObserver> observer) {
  // The server validates requests before they get here; any other caller
  // is refused too, rather than have a bad count taken as it is.
  if (request.logprobs < -1 || request.logprobs > kMaxLogprobs) {
    return absl::InvalidArgumentError(
        absl::StrFormat("logprobs must be in -1..%d", kMaxLogprobs));
  }
  int max_gen = 0;
  if (absl::Status s = CheckFits(request, &max_gen); !s.ok()) return s;
  const int prompt_len = static_cast<int>(request.prompt.size());
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the server is shutting down");
  if (absl::Status s = CheckQueueRoom(prompt_len); !s.ok()) return s;
  auto seq = std::make_shared<Sequence>(std::move(request), std::move(observer),
                                        max_gen);
  seq->rank_time =
      seq->request.arrival - seq->request.priority * options_.priority_step;
  seq->order = next_order_++;
  seq->stats.prompt_tokens = prompt_len;
  std::vector<Done> done;
  RouteLocked(seq, /*exclude=*/-1, &done);
  if (!done.empty()) return done.front().status;  // Pinned to a down device.
  return seq->handle;
}

absl::Status Scheduler::CheckFits(const GenerationRequest& request,
                                  int* max_gen) const {
  const int prompt_len = static_cast<int>(request.prompt.size());
  if (prompt_len == 0) {
    return absl::InvalidArgumentError("a generation needs at least one token");
  }
  if (prompt_len > max_context_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("prompt of %d tokens exceeds the context of %d",
                        prompt_len, max_context_));
  }
  int64_t kv_max = 0;
  bool known = request.device.empty();
  for (const auto& l : loops_) {
    if (l->caps().name == request.device) known = true;
    if (!request.pin_device || l->caps().name == request.device) {
      kv_max = std::max(kv_max, l->kv_capacity());
    }
  }
  if (!known) {
    return absl::NotFoundError(
        absl::StrCat("no device named '", request.device, "'"));
  }
  // The last generated token is never fed back, so a full context of
  // max_context positions yields max_context - prompt + 1 tokens; a device
  // whose whole KV cache is smaller bounds it further.
  int64_t gen =
      std::min<int64_t>(request.max_tokens, max_context_ - prompt_len + 1);
  gen = std::min<int64_t>(gen, kv_max - prompt_len);
  if (gen < 1) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "a prompt of %d tokens does not fit the largest KV cache (%d "
        "positions); shorten the prompt",
        prompt_len, kv_max));
  }
  *max_gen = static_cast<int>(gen);
  return absl::OkStatus();
}

absl::Status Scheduler::CheckQueueRoom(int prompt_tokens) const {
  int queued = static_cast<int>(parked_.size());
  int64_t queued_tokens = parked_.pending_tokens();
  for (const auto& l : loops_) {
    queued += l->Load().queued;
    queued_tokens += l->queued_tokens();
  }
  if (queued >= options_.max_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the server is full: %d requests are already waiting; retry later",
        queued));
  }
  if (queued_tokens + prompt_tokens > options_.max_queued_tokens) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the server is full: %d prompt tokens are already waiting; retry "
        "later",
        queued_tokens));
  }
  return absl::OkStatus();
}

void Scheduler::RouteLocked(std::shared_ptr<Sequence> seq, int exclude,
                            std::vector<Done>* done) {
  std::vector<DeviceLoad> loads;
  for (const auto& l : loops_) loads.push_back(l->Load());
  const Placement p = router_.Pick(loads, ShapeOf(*seq), seq->request.device,
                                   seq->request.pin_device, exclude);
  const std::string policy =
      p.requested ? "requested" : PolicyName(router_.policy());
  if (p.device >= 0) {
    spdlog::debug("request {} -> {} ({}; {})", seq->request.id,
                  loads[p.device].name, policy,
                  Prices(loads, p, router_.policy()));
    if (options_.metrics != nullptr) {
      options_.metrics->Routed(loads[p.device].name, policy);
    }
    loops_[p.device]->Enqueue(std::move(seq));
  } else if (seq->request.pin_device) {
    const std::string name = seq->request.device;
    std::string why;
    for (const auto& l : loops_) {
      if (l->caps().name == name) why = l->last_error();
    }
    done->push_back({std::move(seq), FinishReason::kFailed,
                     absl::UnavailableError(
                         absl::StrCat("device ", name, " is unavailable (", why,
                                      ") and the request is pinned to it"))});
  } else {
    parked_.Push(std::move(seq));
  }
}

void Scheduler::Reroute(int from, std::vector<std::shared_ptr<Sequence>> seqs) {
  std::vector<Done> done;
  {
    absl::MutexLock lock(&mu_);
    for (auto& s : seqs) {
      if (shutdown_) {
        done.push_back({std::move(s), FinishReason::kCancelled,
                        absl::UnavailableError(
                            "the server shut down during generation")});
      } else {
        RouteLocked(std::move(s), from, &done);
      }
    }
  }
  FinishAll(done);
}

void Scheduler::OnHealthChanged(int loop, bool healthy) {
  const std::string& name = loops_[loop]->caps().name;
  std::vector<Done> done;
  std::function<void(const std::string&, bool)> listener;
  {
    absl::MutexLock lock(&mu_);
    if (healthy && !shutdown_) {
      // Parked requests get another chance on the recovered device.
      auto parked = parked_.RemoveIf([](const Sequence&) { return true; });
      for (auto& s : parked) RouteLocked(std::move(s), -1, &done);
    }
    listener = health_listener_;
  }
  if (healthy) spdlog::info("device {} is healthy", name);
  FinishAll(done);
  if (listener) listener(name, healthy);
}

std::vector<DeviceStatus> Scheduler::Devices() const {
  std::vector<DeviceStatus> out;
  for (const auto& l : loops_) out.push_back(l->Status());
  return out;
}

std::vector<Done> Scheduler::TakeExpiredWaiting() {
  const absl::Time now = absl::Now();
  std::vector<std::shared_ptr<Sequence>> gone;
  {
    absl::MutexLock lock(&mu_);
    gone = parked_.RemoveIf([now](const Sequence& s) { return Expired(s, now); });
  }
  for (auto& l : loops_) {
    auto g = l->TakeExpired(now);
    gone.insert(gone.end(), g.begin(), g.end());
  }
  std::vector<Done> done;
  for (auto& s : gone) {
    const bool cancelled = s->handle->cancelled();
    done.push_back(
        {s, cancelled ? FinishReason::kCancelled : FinishReason::kDeadline,
         cancelled ? absl::CancelledError("generation cancelled")
                   : absl::DeadlineExceededError(
                         "deadline exceeded while queued")});
  }
  return done;
}

void Scheduler::Watchdog() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(10));
      if (shutdown_) return;
    }
    // Waiting requests that were cancelled or ran out of time end now, not
    // when they reach a device.
    std::vector<Done> done = TakeExpiredWaiting();
    FinishAll(done);
    for (auto& l : loops_) l->FailIfHung(options_.step_timeout);
  }
}

void Scheduler::Shutdown() {
  std::vector<std::shared_ptr<Sequence>> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    waiting = parked_.RemoveIf([](const Sequence&) { return true; });
  }
  for (auto& l : loops_) {
    auto q = l->Stop();
    waiting.insert(waiting.end(), q.begin(), q.end());
  }
  std::vector<Done> done;
  for (auto& s : waiting) {
    done.push_back({s, FinishReason::kCancelled,
                    absl::UnavailableError("the server shut down before this "
                                           "request reached a device")});
  }
  FinishAll(done);
  if (watchdog_.joinable()) watchdog_.join();
  for (auto& l : loops_) {
    // A hung loop's thread still uses it: it is never freed.
    if (!l->JoinOrAbandon(options_.step_timeout)) l.release();
  }
}

}  // namespace joule::scheduler
