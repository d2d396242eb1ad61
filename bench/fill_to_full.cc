// Memory per entry of a shmdict table, and the load factor at which the first insert
// fails with kFull.
//
//   tools/bazel run -c opt //bench:fill_to_full -- [capacity] [trials]
//
// Defaults: capacity 1048576 (1M), 5 trials. Keys are 16 bytes, values 64 bytes (the
// table's maxima too). Each trial creates a fresh table in /dev/shm (a fresh random
// hash seed, hence a different first-full point), inserts distinct keys with Insert
// until the first kFull, prints what it found, and removes the table.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "bench/workload.h"

namespace shmdict {
namespace {

using bench::MakeKey;

constexpr uint32_t kKeySize = bench::kKeySize;
constexpr uint32_t kValueSize = 64;

char g_path[128];

void RemoveAndDie(int sig) {
  if (g_path[0] != '\0') unlink(g_path);
  signal(sig, SIG_DFL);
  raise(sig);
}

struct TrialResult {
  uint64_t keys_at_full = 0;
  double load_at_full = 0;
};

// Returns false (after printing why) on any error other than the expected kFull.
bool RunTrial(uint64_t capacity, int trial, TrialResult* result, Stats* empty_stats) {
  std::snprintf(g_path, sizeof(g_path), "/dev/shm/shmdict-fill-%d-%d",
                static_cast<int>(getpid()), trial);
  OpenOptions options;
  options.create = true;
  options.exclusive = true;
  options.capacity = capacity;
  options.max_key_size = kKeySize;
  options.max_value_size = kValueSize;
  absl::StatusOr<Dict> d = Dict::Open(g_path, options);
  if (!d.ok()) {
    std::fprintf(stderr, "creating %s: %s\n", g_path, d.status().ToString().c_str());
    return false;
  }
  *empty_stats = d->GetStats();
  char key[kKeySize];
  char value[kValueSize];
  std::memset(value, 'v', sizeof(value));
  bool ok = true;
  for (uint64_t i = 0;; ++i) {
    MakeKey(i, key);
    std::memcpy(value, &i, sizeof(i));
    absl::StatusOr<uint64_t> v =
        d->Insert(std::string_view(key, kKeySize), std::string_view(value, kValueSize));
    if (v.ok()) continue;
    if (ErrorCodeOf(v.status()) != ErrorCode::kFull) {
      std::fprintf(stderr, "insert %llu: %s\n", static_cast<unsigned long long>(i),
                   v.status().ToString().c_str());
      ok = false;
      break;
    }
    const Stats s = d->GetStats();
    if (s.count != i) {
      std::fprintf(stderr, "count %llu after %llu successful inserts\n",
                   static_cast<unsigned long long>(s.count),
                   static_cast<unsigned long long>(i));
      ok = false;
      break;
    }
    result->keys_at_full = i;
    result->load_at_full = s.load_factor;
    break;
  }
  absl::Status removed = Dict::Unlink(g_path);
  if (!removed.ok()) {
    std::fprintf(stderr, "removing %s: %s\n", g_path, removed.ToString().c_str());
  }
  g_path[0] = '\0';
  return ok;
}

int Main(int argc, char** argv) {
  const uint64_t capacity = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1u << 20;
  const int trials = argc > 2 ? std::atoi(argv[2]) : 5;
  if (capacity == 0 || trials <= 0) {
    std::fprintf(stderr, "usage: %s [capacity] [trials]\n", argv[0]);
    return 2;
  }
  signal(SIGINT, RemoveAndDie);
  signal(SIGTERM, RemoveAndDie);

  double load_sum = 0, load_min = 1, load_max = 0;
  double bytes_per_key_sum = 0;
  Stats st;
  for (int trial = 0; trial < trials; ++trial) {
    TrialResult r;
    if (!RunTrial(capacity, trial, &r, &st)) return 1;
    if (trial == 0) {
      std::printf("table: capacity=%llu key=%uB value=%uB bucket_count=%llu "
                  "slot_count=%llu file_size=%llu\n",
                  static_cast<unsigned long long>(st.capacity), kKeySize, kValueSize,
                  static_cast<unsigned long long>(st.bucket_count),
                  static_cast<unsigned long long>(st.slot_count),
                  static_cast<unsigned long long>(st.file_size));
      std::printf("file_size/capacity = %.2f B   file_size/slot_count = %.2f B   "
                  "capacity/slot_count = %.4f\n",
                  double(st.file_size) / double(st.capacity),
                  double(st.file_size) / double(st.slot_count),
                  double(st.capacity) / double(st.slot_count));
    }
    const double per_key = double(st.file_size) / double(r.keys_at_full);
    std::printf("trial %d: first kFull after %llu keys: load=%.4f (keys/slot_count) "
                "keys/capacity=%.4f file_size/keys=%.2f B\n",
                trial, static_cast<unsigned long long>(r.keys_at_full), r.load_at_full,
                double(r.keys_at_full) / double(st.capacity), per_key);
    std::fflush(stdout);
    load_sum += r.load_at_full;
    load_min = std::min(load_min, r.load_at_full);
    load_max = std::max(load_max, r.load_at_full);
    bytes_per_key_sum += per_key;
  }
  std::printf("summary over %d trials: first-full load mean=%.4f min=%.4f max=%.4f; "
              "file_size/keys at first full mean=%.2f B\n",
              trials, load_sum / trials, load_min, load_max, bytes_per_key_sum / trials);
  return 0;
}

}  // namespace
}  // namespace shmdict

int main(int argc, char** argv) { return shmdict::Main(argc, argv); }
