#ifndef JOULE_TESTS_FAKE_DEVICE_H_
#define JOULE_TESTS_FAKE_DEVICE_H_

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "device/device.h"

namespace joule::testing {

// Wraps a real device and misbehaves on command: slow steps, failing steps,
// forced tokens. Counts releases so tests can see resources freed.
class FakeDevice : public device::Device {
 public:
  FakeDevice(std::unique_ptr<device::Device> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}

  void set_step_delay(absl::Duration d) {
    absl::MutexLock l(&mu_);
    delay_ = d;
  }
  // The next `n` steps fail with `status` without running.
  void FailNextSteps(int n, absl::Status status) {
    absl::MutexLock l(&mu_);
    fail_steps_ = n;
    fail_status_ = std::move(status);
  }
  // Steps run again (the failure status stays: a step may still be
  // reading it).
  void StopFailing() {
    absl::MutexLock l(&mu_);
    fail_steps_ = 0;
  }
  // The `n`th step with decodes from now (0: the next one) makes `token`
  // the most likely for every decode in it.
  void ForceTokenAtDecode(int n, int token) {
    absl::MutexLock l(&mu_);
    force_step_ = decode_steps_ + n;
    force_token_ = token;
  }
  // The next step blocks until Unhang() (a device that stops answering).
  void HangNextStep() {
    absl::MutexLock l(&mu_);
    hang_ = true;
  }
  void Unhang() {
    absl::MutexLock l(&mu_);
    hang_ = false;
    hanging_ = false;
  }
  bool hanging() {
    absl::MutexLock l(&mu_);
    return hanging_;
  }
  // Report a per-step token limit, as devices with fixed buffers do.
  void set_max_step_tokens(int n) { max_step_tokens_ = n; }
  int releases() const { return releases_.load(); }
  int steps() const { return steps_.load(); }
  // Most decodes in one step, and the prompt tokens of every step that had
  // any.
  int max_decode_batch() {
    absl::MutexLock l(&mu_);
    return max_decode_batch_;
  }
  std::vector<int> prefill_tokens_per_call() {
    absl::MutexLock l(&mu_);
    return prefill_tokens_;
  }
  // One letter per step: 'P' prompt chunks only, 'D' decodes only, 'M'
  // both.
  std::string calls() {
    absl::MutexLock l(&mu_);
    return calls_;
  }

  device::Capabilities capabilities() const override {
    device::Capabilities c = inner_->capabilities();
    c.name = name_;
    c.description = "test device wrapping " + c.name;
    if (max_step_tokens_ > 0) c.max_step_tokens = max_step_tokens_;
    return c;
  }
  absl::Status LoadModel(const model::Checkpoint& ckpt) override {
    return inner_->LoadModel(ckpt);
  }
  absl::Status Step(absl::Span<const device::SequenceChunk> batch,
                    device::StepOutput* out) override {
    if (absl::Status s = Before(); !s.ok()) return s;
    // A decode feeds one token after cached ones; anything else is a prompt
    // chunk.
    int prefill_tokens = 0, decodes = 0;
    for (const auto& c : batch) {
      const bool decode = c.tokens.size() == 1 && c.start_pos > 0;
      decodes += decode;
      if (!decode) prefill_tokens += c.tokens.size();
    }
    absl::Status s = inner_->Step(batch, out);
    absl::MutexLock l(&mu_);
    if (prefill_tokens > 0) prefill_tokens_.push_back(prefill_tokens);
    max_decode_batch_ = std::max(max_decode_batch_, decodes);
    calls_ += prefill_tokens == 0 ? 'D' : decodes == 0 ? 'P' : 'M';
    if (s.ok() && decodes > 0 && decode_steps_++ == force_step_) {
      for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].tokens.size() == 1 && batch[i].start_pos > 0)
          out->row(i)[force_token_] = 1e9f;
      }
    }
    return s;
  }
  void Release(device::SequenceId seq) override {
    releases_++;
    inner_->Release(seq);
  }
  int64_t kv_used_tokens() const override { return inner_->kv_used_tokens(); }

 private:
  absl::Status Before() {
    steps_++;
    absl::Duration delay;
    {
      absl::MutexLock l(&mu_);
      if (hang_) {
        hanging_ = true;
        auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !hanging_;
        };
        mu_.Await(absl::Condition(&released));
      }
      delay = delay_;
      if (fail_steps_ > 0) {
        --fail_steps_;
        return fail_status_;
      }
    }
    absl::SleepFor(delay);
    return absl::OkStatus();
  }

  std::unique_ptr<device::Device> inner_;
  std::string name_;
  absl::Mutex mu_;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int fail_steps_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_status_ ABSL_GUARDED_BY(mu_);
  int force_step_ ABSL_GUARDED_BY(mu_) = -1;
  int force_token_ ABSL_GUARDED_BY(mu_) = 0;
  int decode_steps_ ABSL_GUARDED_BY(mu_) = 0;
  bool hang_ ABSL_GUARDED_BY(mu_) = false;
  bool hanging_ ABSL_GUARDED_BY(mu_) = false;
  int max_decode_batch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> prefill_tokens_ ABSL_GUARDED_BY(mu_);
  std::string calls_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> releases_{0};
  int max_step_tokens_ = 0;
  std::atomic<int> steps_{0};
};

}  // namespace joule::testing

#endif  // JOULE_TESTS_FAKE_DEVICE_H_
