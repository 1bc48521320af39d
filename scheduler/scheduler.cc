#include "scheduler/scheduler.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace joule::scheduler {

Scheduler::Scheduler(std::vector<std::unique_ptr<device::Device>> devices,
                     SchedulerOptions options)
    : options_(options) {
  for (auto& d : devices) {
    auto w = std::make_unique<Worker>();
    w->caps = d->capabilities();
    w->device = std::move(d);
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->thread = std::thread([this, worker] { Loop(worker); });
  }
}

Scheduler::~Scheduler() { Shutdown(); }

absl::StatusOr<std::shared_ptr<Generation>> Scheduler::Submit(
    GenerationRequest request, std::shared_ptr<GenerationObserver> observer) {
  if (request.prompt.empty()) {
    return absl::InvalidArgumentError("a generation needs at least one token");
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the server is shutting down");
  Worker* target = nullptr;
  if (!request.device.empty()) {
    for (auto& w : workers_) {
      if (w->caps.name == request.device) target = w.get();
    }
    if (target == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("no device named '", request.device, "'"));
    }
  } else {
    // The device with the least work waiting or running.
    for (auto& w : workers_) {
      if (target == nullptr || w->queue.size() + w->running <
                                   target->queue.size() + target->running) {
        target = w.get();
      }
    }
  }
  if (target == nullptr) return absl::UnavailableError("no devices");
  if (queued_ >= options_.max_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the server is full: %d requests are already waiting; retry later",
        queued_));
  }
  auto handle = std::make_shared<Generation>();
  target->queue.push_back(
      Work{std::move(request), std::move(observer), handle});
  ++queued_;
  return handle;
}

std::vector<DeviceStatus> Scheduler::Devices() const {
  absl::MutexLock lock(&mu_);
  std::vector<DeviceStatus> out;
  for (const auto& w : workers_) {
    DeviceStatus s;
    s.capabilities = w->caps;
    s.queued = static_cast<int>(w->queue.size());
    s.running = w->running;
    s.kv_used_tokens = w->device->kv_used_tokens();
    out.push_back(std::move(s));
  }
  return out;
}

void Scheduler::Shutdown() {
  std::vector<Work> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    stopping_ = true;
    for (auto& w : workers_) {
      for (Work& work : w->queue) dropped.push_back(std::move(work));
      w->queue.clear();
      if (w->current != nullptr) w->current->Cancel();
    }
    queued_ = 0;
  }
  for (Work& work : dropped) {
    FinishEvent fin;
    fin.reason = FinishReason::kCancelled;
    fin.status = absl::UnavailableError(
        "the server shut down before this "
        "request reached a device");
    fin.prompt_tokens = static_cast<int>(work.request.prompt.size());
    fin.finish_time = absl::Now();
    work.observer->OnFinish(fin);
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void Scheduler::Loop(Worker* worker) {
  while (true) {
    Work work;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, worker]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || !worker->queue.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (shutdown_) return;
      work = std::move(worker->queue.front());
      worker->queue.pop_front();
      --queued_;
      ++worker->running;
      worker->current = work.handle;
    }
    Run(worker, work);
    absl::MutexLock lock(&mu_);
    --worker->running;
    worker->current = nullptr;
  }
}

void Scheduler::Run(Worker* worker, Work& work) {
  const GenerationRequest& req = work.request;
  device::Device& dev = *worker->device;
  device::SequenceId seq;
  {
    absl::MutexLock lock(&mu_);
    seq = next_sequence_++;
  }
  FinishEvent fin;
  fin.prompt_tokens = static_cast<int>(req.prompt.size());
  fin.device = worker->caps.name;
  fin.queue_time = absl::Now() - req.arrival;

  auto finish = [&](FinishReason reason, absl::Status status) {
    dev.Release(seq);
    fin.reason = reason;
    fin.status = std::move(status);
    fin.finish_time = absl::Now();
    if (!fin.status.ok()) {
      spdlog::warn("request {} failed on {}: {}", req.id, fin.device,
                   fin.status.ToString());
    }
    work.observer->OnFinish(fin);
  };
  auto interrupted = [&]() -> std::optional<FinishReason> {
    if (work.handle->cancelled()) return FinishReason::kCancelled;
    if (absl::Now() > req.deadline) return FinishReason::kDeadline;
    return std::nullopt;
  };
  auto interrupt_status = [this](FinishReason r) {
    if (r == FinishReason::kDeadline) {
      return absl::DeadlineExceededError("deadline exceeded");
    }
    return stopping_ ? absl::UnavailableError(
                           "the server shut down during generation")
                     : absl::CancelledError("generation cancelled");
  };

  device::StepOutput out;
  const int n = static_cast<int>(req.prompt.size());
  if (n > worker->caps.max_context) {
    return finish(FinishReason::kFailed,
                  absl::InvalidArgumentError(absl::StrFormat(
                      "prompt of %d tokens exceeds the context of %d", n,
                      worker->caps.max_context)));
  }
  for (int pos = 0; pos < n;) {
    if (auto r = interrupted()) return finish(*r, interrupt_status(*r));
    const int len = std::min(options_.max_prefill_tokens, n - pos);
    device::SequenceChunk chunk{
        seq, pos, absl::MakeConstSpan(req.prompt).subspan(pos, len)};
    absl::Status s = dev.Prefill({chunk}, &out);
    if (!s.ok()) return finish(FinishReason::kFailed, s);
    fin.prefill_time += out.device_time;
    pos += len;
  }

  model::Sampler sampler(req.sampling);
  // The last generated token is never fed back, so a full context of
  // max_context positions yields max_context - n + 1 tokens.
  const int max_gen =
      std::min(req.max_tokens, worker->caps.max_context - n + 1);
  int token_buf[1];
  for (int generated = 0;;) {
    TokenEvent ev;
    ev.token = sampler.Sample(out.row(0));
    ev.index = generated++;
    ev.special = std::find(req.end_tokens.begin(), req.end_tokens.end(),
                           ev.token) != req.end_tokens.end();
    const bool ends = ev.special && !req.ignore_eos;
    ev.last = ends || generated == max_gen;
    ev.time = absl::Now();
    ev.device = worker->caps.name;
    if (ev.index == 0) fin.first_token_time = ev.time;
    fin.completion_tokens = generated;
    const bool keep_going = work.observer->OnToken(ev);
    if (ends) return finish(FinishReason::kEndOfSequence, absl::OkStatus());
    if (!keep_going) return finish(FinishReason::kStopped, absl::OkStatus());
    if (generated == max_gen)
      return finish(FinishReason::kLength, absl::OkStatus());
    if (auto r = interrupted()) return finish(*r, interrupt_status(*r));
    token_buf[0] = ev.token;
    device::SequenceChunk chunk{seq, n + generated - 1, token_buf};
    absl::Status s = dev.Decode({chunk}, &out);
    if (!s.ok()) return finish(FinishReason::kFailed, s);
    fin.decode_time += out.device_time;
  }
}

}  // namespace joule::scheduler
