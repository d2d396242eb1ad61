// Progress display for long operations of the shmdict tool (dump, load, verify).
//
// Drawn on stderr, and only when stderr is a terminal: in a pipe, a file or a test
// nothing at all is written, so scripts see only the command's own output. The line
// is redrawn in place (carriage return) at most ten times a second and erased when the
// operation ends.
//
// Thread safety: a ProgressBar is used by one thread. An ElapsedIndicator runs its own
// drawing thread; its methods may be called from the thread that made it.
#ifndef SHMDICT_TOOLS_CLI_PROGRESS_H_
#define SHMDICT_TOOLS_CLI_PROGRESS_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace shmdict::cli {

// Whether progress is shown: stderr is a terminal.
bool ProgressWanted();

// "dump /dev/shm/t [########............]  40%  400/1000" for a known total,
// "load /dev/shm/t: 400 entries" for an unknown one (total 0).
class ProgressBar {
 public:
  // `unit` names what is counted ("entries", "bytes"); it is shown for unknown totals.
  ProgressBar(std::string label, uint64_t total, std::string unit = "entries");
  ~ProgressBar();  // erases the line
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Reports `done` units; cheap when not drawing (one branch, or one clock read).
  void Update(uint64_t done);
  // Erases the line (idempotent).
  void Finish();

 private:
  void Draw(uint64_t done);

  const std::string label_;
  const uint64_t total_;
  const std::string unit_;
  const bool enabled_;
  bool drawn_ = false;
  uint64_t last_draw_ns_ = 0;
};

// For operations that cannot report how far they are (a single long call): shows
// "verify /dev/shm/t: 2.4 s" with a spinner, redrawn by a background thread.
class ElapsedIndicator {
 public:
  explicit ElapsedIndicator(std::string label);
  ~ElapsedIndicator();  // stops the thread and erases the line
  ElapsedIndicator(const ElapsedIndicator&) = delete;
  ElapsedIndicator& operator=(const ElapsedIndicator&) = delete;

  // Stops the thread and erases the line (idempotent).
  void Finish();

 private:
  void Run();

  const std::string label_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shmdict::cli

#endif  // SHMDICT_TOOLS_CLI_PROGRESS_H_
