// Helpers shared by shmdict's tests.
#ifndef SHMDICT_TESTS_TEST_UTIL_H_
#define SHMDICT_TESTS_TEST_UTIL_H_

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

#include "api/options.h"
#include "gtest/gtest.h"

namespace shmdict::testing {

// A unique table path under /dev/shm that is removed when this object goes away (a
// file, or an empty directory made there).
class TempTable {
 public:
  explicit TempTable(const std::string& tag = "t") {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info != nullptr ? std::string(info->name()) : "none";
    for (char& c : test) {
      if (c == '/') c = '_';
    }
    // A random component too: tests in different sandboxes (PID namespaces) can share
    // a pid and /dev/shm.
    static const uint64_t salt = [] {
      uint64_t v = 0;
      if (getrandom(&v, sizeof(v), 0) != sizeof(v)) v = uint64_t(time(nullptr));
      return v;
    }();
    path_ = "/dev/shm/shmdict-test-" + std::to_string(getpid()) + "-" +
            std::to_string(salt % 1000000007u) + "-" + std::to_string(counter.fetch_add(1)) +
            "-" + test + "-" + tag;
    unlink(path_.c_str());
  }
  ~TempTable() {
    unlink(path_.c_str());
    rmdir(path_.c_str());
  }
  TempTable(const TempTable&) = delete;
  TempTable& operator=(const TempTable&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Options that create a table sized for `capacity` keys of up to `max_key_size` bytes
// with values of up to `max_value_size` bytes, or open the table already there if it
// was created with the same sizes.
inline OpenOptions CreateOptions(uint64_t capacity = 1000, uint32_t max_key_size = 32,
                                 uint32_t max_value_size = 64) {
  return {.create = true,
          .capacity = capacity,
          .max_key_size = max_key_size,
          .max_value_size = max_value_size};
}

// Creates (replacing) a regular file at `path` holding `bytes`, with mode `mode`
// whatever the umask.
inline ::testing::AssertionResult WriteFile(const std::string& path, std::string_view bytes,
                                            mode_t mode = 0600) {
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
  if (fd < 0) return ::testing::AssertionFailure() << "create " << path << ": " << errno;
  bool ok = fchmod(fd, mode) == 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) ok = false;
    done += n > 0 ? static_cast<size_t>(n) : 0;
  }
  close(fd);
  if (!ok) return ::testing::AssertionFailure() << "writing " << path << ": " << errno;
  return ::testing::AssertionSuccess();
}

// The whole content of the file at `path` (empty if it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::string bytes;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bytes;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return bytes;
}

// Sets the process's umask for as long as this object lives.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : old_(umask(mask)) {}
  ~UmaskGuard() { umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

// The seed of a randomized test: SHMDICT_TEST_SEED if set, else time-based. Logged so
// that a failure can be replayed.
inline uint64_t TestSeed() {
  uint64_t seed;
  if (const char* env = getenv("SHMDICT_TEST_SEED")) {
    seed = strtoull(env, nullptr, 10);
  } else {
    seed = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::fprintf(stderr, "[seed] SHMDICT_TEST_SEED=%llu\n",
               static_cast<unsigned long long>(seed));
  return seed;
}

// True under a sanitizer run (set by .bazelrc): concurrency tests shrink their load.
inline bool Sanitized() { return getenv("SHMDICT_SANITIZED") != nullptr; }

// Waits for a child; returns its raw wait status.
inline int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return status;
}

// Runs fn in a forked child that exits with fn's return value (0 = success); the
// child never returns into the test framework.
template <typename Fn>
pid_t ForkChild(Fn fn) {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    rc = fn();
    _exit(rc);
  }
  return pid;
}

}  // namespace shmdict::testing

#endif  // SHMDICT_TESTS_TEST_UTIL_H_
