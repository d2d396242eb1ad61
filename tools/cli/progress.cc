#include "tools/cli/progress.h"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>

namespace shmdict::cli {
namespace {

constexpr uint64_t kRedrawNs = 100'000'000;  // ten times a second at most
constexpr int kBarWidth = 30;

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Carriage return, then erase to the end of the line.
void EraseLine() {
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

}  // namespace

bool ProgressWanted() { return isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)),
      enabled_(ProgressWanted()) {
  if (enabled_) Draw(0);
}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done) {
  if (!enabled_) return;
  const uint64_t now = MonotonicNs();
  if (now - last_draw_ns_ < kRedrawNs) return;
  Draw(done);
}

void ProgressBar::Draw(uint64_t done) {
  last_draw_ns_ = MonotonicNs();
  if (total_ == 0) {
    std::fprintf(stderr, "\r%s: %" PRIu64 " %s\033[K", label_.c_str(), done, unit_.c_str());
  } else {
    if (done > total_) done = total_;  // the table may have grown meanwhile
    const int filled = int(done * kBarWidth / total_);
    std::string bar(size_t(filled), '#');
    bar.append(size_t(kBarWidth - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %3d%%  %" PRIu64 "/%" PRIu64 "\033[K", label_.c_str(),
                 bar.c_str(), int(done * 100 / total_), done, total_);
  }
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  EraseLine();
  drawn_ = false;
}

ElapsedIndicator::ElapsedIndicator(std::string label) : label_(std::move(label)) {
  if (ProgressWanted()) thread_ = std::thread([this] { Run(); });
}

ElapsedIndicator::~ElapsedIndicator() { Finish(); }

void ElapsedIndicator::Run() {
  static constexpr char kSpinner[] = "|/-\\";
  const uint64_t start = MonotonicNs();
  std::unique_lock<std::mutex> lock(mu_);
  // The first frame is drawn even when the operation has already ended, so a terminal
  // always sees what ran (and the line erased).
  for (int tick = 0;; ++tick) {
    const double seconds = double(MonotonicNs() - start) / 1e9;
    std::fprintf(stderr, "\r%s: %c %.1f s\033[K", label_.c_str(), kSpinner[tick % 4],
                 seconds);
    std::fflush(stderr);
    if (cv_.wait_for(lock, std::chrono::nanoseconds(kRedrawNs), [this] { return stop_; })) {
      break;
    }
  }
  EraseLine();
}

void ElapsedIndicator::Finish() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

}  // namespace shmdict::cli
