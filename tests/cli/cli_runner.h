// Runs the shmdict binary (a data dependency of the test) as a user would, with
// separate stdin, stdout and stderr, and unique table paths under /dev/shm.
#ifndef SHMDICT_TESTS_CLI_CLI_RUNNER_H_
#define SHMDICT_TESTS_CLI_CLI_RUNNER_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace shmdict::cli::testing {

inline std::string ShmdictBinary() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/" +
         (workspace != nullptr ? workspace : "shmdict") + "/tools/shmdict";
}

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal
  bool timed_out = false;  // Finish's deadline passed: the process was killed
  std::string out;
  std::string err;
};

// A running shmdict process with pipes to its stdin, stdout and stderr.
class CliProcess {
 public:
  // `child_setup`, if given, runs in the child between fork and exec (so it may make
  // only async-signal-safe calls: setrlimit, signal, ...).
  explicit CliProcess(const std::vector<std::string>& args,
                      void (*child_setup)() = nullptr) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return;
    }
    std::vector<std::string> argv_storage = {ShmdictBinary()};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    // A child that exits before reading all its input must not kill the test.
    signal(SIGPIPE, SIG_IGN);
    pid_ = fork();
    if (pid_ == 0) {
      signal(SIGPIPE, SIG_DFL);  // ignored signals would stay ignored across exec
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (child_setup != nullptr) child_setup();
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
  }
  ~CliProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
    CloseFd(&in_);
    CloseFd(&out_);
    CloseFd(&err_);
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  // Reads stdout up to and including the next '\n' (or until EOF or `timeout_ms`).
  std::string ReadLine(int timeout_ms = 20000) {
    std::string line;
    for (;;) {
      const size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        line = pending_.substr(0, nl + 1);
        pending_.erase(0, nl + 1);
        return line;
      }
      pollfd p = {out_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return "";
      char buf[4096];
      const ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) {
        line.swap(pending_);
        return line;
      }
      pending_.append(buf, size_t(n));
    }
  }

  // Writes `input` to stdin and closes it, collects stdout and stderr until both
  // close, and waits for the exit. With `timeout_ms` >= 0, a process still running
  // that long after the call is killed (SIGKILL) and the result says timed_out.
  CliResult Finish(const std::string& input = "", int timeout_ms = -1) {
    CliResult r;
    r.out.swap(pending_);
    size_t written = 0;
    if (input.empty()) CloseFd(&in_);
    timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (out_ >= 0 || err_ >= 0) {
      int wait_ms = -1;
      if (timeout_ms >= 0 && !r.timed_out) {
        timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        const long elapsed_ms =
            (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed_ms >= timeout_ms) {
          r.timed_out = true;
          kill(pid_, SIGKILL);  // its pipes close, and the loop ends
          continue;
        }
        wait_ms = int(timeout_ms - elapsed_ms);
      }
      pollfd p[3] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}, {in_, POLLOUT, 0}};
      if (poll(p, 3, wait_ms) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        char buf[65536];
        const ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n > 0) {
          (i == 0 ? r.out : r.err).append(buf, size_t(n));
        } else {
          CloseFd(i == 0 ? &out_ : &err_);
        }
      }
      if (p[2].revents != 0) {
        const ssize_t n = write(in_, input.data() + written, input.size() - written);
        if (n > 0) written += size_t(n);
        if (n <= 0 || written == input.size()) CloseFd(&in_);
      }
    }
    CloseFd(&in_);
    const int status = Wait();
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

 private:
  static void CloseFd(int* fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  int Wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string pending_;
};

// Runs shmdict with `args` and `input` on stdin; waits for it.
inline CliResult Cli(const std::vector<std::string>& args, const std::string& input = "") {
  CliProcess p(args);
  return p.Finish(input);
}

// A unique table path under /dev/shm, removed (a file or an empty directory) when this
// object goes away.
using TempPath = ::shmdict::testing::TempTable;

}  // namespace shmdict::cli::testing

#endif  // SHMDICT_TESTS_CLI_CLI_RUNNER_H_
