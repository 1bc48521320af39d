#ifndef JOULE_TESTS_FUZZ_MEMFD_H_
#define JOULE_TESTS_FUZZ_MEMFD_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace joule::fuzz {

// An in-memory file holding the fuzz input, so loaders that take a path
// (and map it) see exactly these bytes without touching the disk.
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size)
      : fd_(memfd_create("fuzz", MFD_CLOEXEC)) {
    size_t done = 0;
    while (fd_ >= 0 && done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  ~MemFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace joule::fuzz

#endif  // JOULE_TESTS_FUZZ_MEMFD_H_
