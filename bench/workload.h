// What the benchmarks feed every store they measure, and the tools they measure with:
// the keys and values, the precomputed key streams (uniform, hot set, Zipf), dependent
// chains, clocks, summaries, clean-up of the files a run creates, and JSON output.
// peer_bench, hot_path_bench and fill_to_full all make their keys here.
//
// Keys: key number i is the 16 lower-case hex digits of Mix(i), a bijection of 64-bit
// integers, so distinct numbers give distinct keys. A table of n keys holds the keys
// [0, n); the keys [n, 2n) are never inserted (misses). The same keys are printable,
// so memcached, Redis and Python take them as they are (bench/manager_dict_bench.py
// makes the same keys in Python).
//
// Values: a value of key i is `size` bytes whose 8-byte words carry a stamp
// (i << 32 | revision). Values of at most 64 bytes are stamped in every word, longer
// ones in their first and last word (the rest is filler). CheckValue verifies the
// length, that the stamped words agree with each other (a torn read of a 64-byte value
// shows as two stamps) and that the stamp names the key that was asked for.
#ifndef SHMDICT_BENCH_WORKLOAD_H_
#define SHMDICT_BENCH_WORKLOAD_H_

#include <x86intrin.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace shmdict::bench {

inline constexpr size_t kKeySize = 16;

// splitmix64's finalizer: a bijection of 64-bit integers.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Key number `id`: kKeySize bytes at `out` (not NUL-terminated).
void MakeKey(uint64_t id, char* out);
std::string KeyString(uint64_t id);

inline uint64_t Stamp(uint64_t id, uint64_t revision) {
  return (id << 32) | (revision & 0xFFFFFFFFull);
}

// Builds stamped values of one size in a reusable buffer. Size: a multiple of 8.
class ValueMaker {
 public:
  explicit ValueMaker(size_t size);
  // The value of key `id` at `revision`; valid until the next call.
  std::string_view Make(uint64_t id, uint64_t revision);
  size_t size() const { return buf_.size(); }

 private:
  std::vector<char> buf_;
};

// Whether value[0, len) is a well-formed value of key `id` of `size` bytes.
bool CheckValue(const char* value, size_t len, size_t size, uint64_t id);

// A precomputed sequence of key draws: the key bytes at a fixed 16-byte stride and the
// key numbers, walked in order (and cyclically) so that the timed loops make no random
// access of their own outside the store under test.
class KeyStream {
 public:
  KeyStream() = default;
  // `length` (a power of two) draws of the key numbers ids[pick()].
  static KeyStream Uniform(uint64_t first, uint64_t count, size_t length, uint64_t seed);
  static KeyStream FromIds(std::vector<uint64_t> ids);

  std::string_view key(size_t pos) const {
    return std::string_view(bytes_.data() + pos * kKeySize, kKeySize);
  }
  uint64_t id(size_t pos) const { return ids_[pos]; }
  size_t Next(size_t pos) const { return (pos + 1) & mask_; }
  // The position after `pos` in a dependent chain: Next(pos) when `dependency` is 0
  // (see ValueDependency).
  size_t After(size_t pos, uint64_t dependency) const { return (pos + 1 + dependency) & mask_; }
  size_t length() const { return ids_.size(); }

 private:
  std::vector<char> bytes_;
  std::vector<uint64_t> ids_;
  size_t mask_ = 0;
};

// Zipf's law over ranks [0, n): P(rank r) proportional to 1 / (r + 1)^s. Samples by
// binary search over the cumulative distribution (set up once, O(n) memory).
class Zipf {
 public:
  Zipf(uint64_t n, double s);
  uint64_t Sample(std::mt19937_64& rng) const;

 private:
  std::vector<double> cdf_;
};

// The stream length for a table of `keys` keys: 8 draws per key, a power of two in
// [8K, 1M].
size_t StreamLength(uint64_t keys);

// Dependent chains: how the latency loops make each lookup wait for the one before.
//
// A throughput loop walks a precomputed key stream: the next key's address is known
// before the current lookup ends, so the CPU overlaps several lookups' cache misses. A
// latency loop walks the same stream, but the position of the next key is
// KeyStream::After(pos, dependency), where `dependency` is computed from the bytes the
// lookup just returned and is 0 for every well-formed value: the next key's address,
// hence the whole next lookup, waits for this lookup's value to arrive. (CPUs predict
// branches, not loaded values: a data dependency cannot be speculated past.)
//
// A miss returns no value, only a status that the store computes with branches, which
// the CPU predicts and runs past; a miss chain therefore also waits at a load fence
// (LoadFence) after each lookup, which lets nothing after it start before every load
// before it has completed.

// 0 for a well-formed value of ValueMaker (its first and last 8 bytes are the same
// stamp) or of any value whose first and last 8 bytes agree; nonzero otherwise
// (also for a value shorter than 8 bytes).
inline uint64_t ValueDependency(const char* value, size_t len) {
  if (len < 8) return 1;
  uint64_t first, last;
  std::memcpy(&first, value, 8);
  std::memcpy(&last, value + len - 8, 8);
  return first ^ last;
}

// Lets no later instruction start before every earlier load has completed (lfence).
inline void LoadFence() { _mm_lfence(); }

// Wall-clock nanoseconds (steady clock; vDSO, no system call).
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The time-stamp counter, ordered after earlier loads (lfence).
inline uint64_t Ticks() {
  _mm_lfence();
  return __rdtsc();
}
// Time-stamp counter ticks per nanosecond, calibrated once against the steady clock.
double TicksPerNs();

// Keeps `p`'s pointee alive and "used" for the optimizer.
inline void Escape(const void* p) { asm volatile("" : : "g"(p) : "memory"); }

double Median(std::vector<double> v);
// The q-quantile (q in [0, 1]) of `samples`, by nearest rank; reorders `samples`.
uint64_t Quantile(std::vector<uint32_t>& samples, double q);

// Files and directories the run creates in /dev/shm, removed at exit, on Die, and on
// SIGINT/SIGTERM (the handler removes them with async-signal-safe calls only).
void RegisterForRemoval(const std::string& path, bool is_dir = false);
void ForgetRemoval(const std::string& path);
void RemoveRegistered();
// Call in a forked child: it must never remove its parent's files.
void MarkChildProcess();
bool IsChildProcess();

// Prints "peer_bench: <message>" to stderr, removes the run's files (parent only) and
// exits with status 1.
[[noreturn]] void Die(const std::string& message);

// One JSON object on one line.
class JsonLine {
 public:
  JsonLine& Str(std::string_view key, std::string_view value);
  JsonLine& Num(std::string_view key, double value);
  JsonLine& Int(std::string_view key, int64_t value);
  JsonLine& NumArray(std::string_view key, const std::vector<double>& values);
  // A nested object, already rendered.
  JsonLine& Raw(std::string_view key, std::string_view json);
  std::string Done() const { return "{" + body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_WORKLOAD_H_
