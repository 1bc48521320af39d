#ifndef JOULE_TESTS_SUBPROCESS_H_
#define JOULE_TESTS_SUBPROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"

extern char** environ;

namespace joule::testing {

// A child process whose stdout and stderr go to files.
class Subprocess {
 public:
  Subprocess(std::vector<std::string> argv, const std::string& out_path,
             const std::string& err_path)
      : out_path_(out_path), err_path_(err_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Subprocess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Signal(int sig) { kill(pid_, sig); }
  // Exit code, or -signal. -1000 on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      int status;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return -1000;
  }
  std::string Stdout() const { return Slurp(out_path_); }
  std::string Stderr() const { return Slurp(err_path_); }

 private:
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string out_path_, err_path_;
};

// Runs a command to completion.
struct RunResult {
  int code;
  std::string out, err;
};
inline RunResult Run(std::vector<std::string> argv, const std::string& tmp,
                     absl::Duration timeout = absl::Seconds(60)) {
  static int n = 0;
  const std::string base = tmp + "/run" + std::to_string(n++);
  Subprocess p(std::move(argv), base + ".out", base + ".err");
  int code = p.Wait(timeout);
  return {code, p.Stdout(), p.Stderr()};
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_SUBPROCESS_H_
