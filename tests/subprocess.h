#ifndef JOULE_TESTS_SUBPROCESS_H_
#define JOULE_TESTS_SUBPROCESS_H_

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
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
  // True once the process has ended (it is reaped then; Wait returns its
  // code).
  bool Exited() {
    if (exited_ || pid_ <= 0) return true;
    int status;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exited_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return true;
  }
  // Exit code, or -signal. -1000 on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      if (Exited()) return code_;
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
  int code_ = -1;
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

// "pid (comm) state ppid ..." from /proc/<pid>/stat; false if it is gone.
// comm may hold spaces and parentheses, so it ends at the last ')'.
inline bool ReadStat(pid_t pid, std::string* comm, char* state, pid_t* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return false;
  *comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  rest >> *state >> *ppid;
  return !rest.fail();
}

// True while `pid` runs (a zombie has ended).
inline bool Running(pid_t pid) {
  std::string comm;
  char state = 0;
  pid_t ppid = 0;
  return ReadStat(pid, &comm, &state, &ppid) && state != 'Z' && state != 'X';
}

// Children of `parent` whose command name is `comm`.
inline std::vector<pid_t> ChildrenNamed(pid_t parent, const std::string& comm) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string c;
    char state = 0;
    pid_t ppid = 0;
    if (ReadStat(pid, &c, &state, &ppid) && ppid == parent && c == comm)
      out.push_back(pid);
  }
  closedir(d);
  return out;
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_SUBPROCESS_H_
