// Single-threaded latency of shmdict's hot paths, next to the machine's floor.
//
//   tools/bazel run -c opt //bench:hot_path_bench -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// Each benchmark runs at 1K and 1M keys of 16 bytes with 64-byte values. The table of
// each size lives in /dev/shm under a name unique to this process, is created once
// (capacity = number of keys, max_key_size 16, max_value_size 64), filled before any
// timing, shared by all benchmarks of that size, and removed at exit (also on SIGINT
// and SIGTERM).
//
// Keys are drawn uniformly at random, with replacement, from the inserted keys (or,
// for misses, from as many keys that were never inserted). The draws are made before
// timing and stored as a stream of key bytes that the timed loop walks with a fixed
// 16-byte stride, so neither the RNG nor a random access to the key array is timed:
// the only random accesses in the loop are the table's own.
//
//   BM_GetHit        Dict::Get of a present key (allocates the returned string)
//   BM_GetMiss       Dict::Get of an absent key (returns a kNotFound status)
//   BM_ContainsMiss  Dict::Contains of an absent key: the same probe as BM_GetMiss
//                    without building a status, to separate the two costs
//   BM_Put           Dict::Put of a present key (an update: lock, seqlock write)
//   BM_GetInto       Dict::GetInto of a present key into a stack buffer (no allocation)
//   BM_DependentRandomAccess
//                    one dependent load per iteration, chasing pointers through a
//                    random cyclic permutation of 64-byte lines over a working set as
//                    large as the table's file: the latency floor a lookup that
//                    misses the caches cannot beat. The lines are shared anonymous
//                    memory (shmem, like the table's /dev/shm file, so the same page
//                    size and TLB reach).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "benchmark/benchmark.h"
#include "core/layout.h"

namespace shmdict {
namespace {

constexpr uint32_t kKeySize = 16;
constexpr uint32_t kValueSize = 64;
constexpr int64_t kSmallKeys = int64_t{1} << 10;
constexpr int64_t kLargeKeys = int64_t{1} << 20;
// Draws per key stream: 8 per key, a power of two in [8K, 1M]. Small enough that the
// 1K streams (128 KiB each) leave the table in L2; the 1M streams (16 MiB) are walked
// sequentially, which the hardware prefetcher hides.
constexpr size_t kDrawsPerKey = 8;
constexpr size_t kMinStream = size_t{1} << 13;
constexpr size_t kMaxStream = size_t{1} << 20;
constexpr uint64_t kRngSeed = 20240601;

// splitmix64's finalizer: a bijection of 64-bit integers.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Key number i: 16 pseudo-random bytes, distinct for distinct i (the first 8 bytes
// are a bijection of i). Keys [0, n) are inserted; keys [n, 2n) never are.
void MakeKey(uint64_t i, char* out) {
  const uint64_t a = Mix(i);
  const uint64_t b = Mix(i ^ 0x5A5A5A5A5A5A5A5Aull);
  std::memcpy(out, &a, 8);
  std::memcpy(out + 8, &b, 8);
}

// Precomputed key draws, walked in order with a 16-byte stride.
class KeyStream {
 public:
  // `length` draws of key numbers uniform in [first, first + count).
  KeyStream(uint64_t first, uint64_t count, size_t length, std::mt19937_64& rng)
      : bytes_(length * kKeySize), mask_(length - 1) {
    std::uniform_int_distribution<uint64_t> pick(0, count - 1);
    for (size_t j = 0; j < length; ++j) MakeKey(first + pick(rng), &bytes_[j * kKeySize]);
  }

  std::string_view key(size_t pos) const {
    return std::string_view(bytes_.data() + pos * kKeySize, kKeySize);
  }
  size_t Next(size_t pos) const { return (pos + 1) & mask_; }

 private:
  std::vector<char> bytes_;
  size_t mask_;
};

// Paths of the tables this process created, for removal at exit and from the signal
// handler (which may only call async-signal-safe functions: no allocation).
constexpr int kMaxTables = 8;
char g_paths[kMaxTables][128];
volatile sig_atomic_t g_path_count = 0;

void RemoveTableFiles() {
  for (int i = 0; i < g_path_count; ++i) {
    if (g_paths[i][0] != '\0') unlink(g_paths[i]);
    g_paths[i][0] = '\0';
  }
}

void RemoveTableFilesAndDie(int sig) {
  RemoveTableFiles();
  signal(sig, SIG_DFL);
  raise(sig);
}

// One filled table of a given number of keys, with its key streams.
class BenchTable {
 public:
  // The table of `keys` keys, created and filled on first use. Null (with *error set)
  // if it cannot be created.
  static BenchTable* Get(uint64_t keys, std::string* error) {
    static auto* tables = new std::map<uint64_t, std::unique_ptr<BenchTable>>();
    auto it = tables->find(keys);
    if (it != tables->end()) return it->second.get();
    absl::StatusOr<std::unique_ptr<BenchTable>> t = Create(keys);
    if (!t.ok()) {
      *error = std::string(t.status().ToString());
      return nullptr;
    }
    return tables->emplace(keys, std::move(*t)).first->second.get();
  }

  const Dict& dict() const { return dict_; }
  Dict& dict() { return dict_; }
  const KeyStream& hits() const { return hits_; }
  const KeyStream& misses() const { return misses_; }
  const std::string& label() const { return label_; }

 private:
  BenchTable(Dict dict, KeyStream hits, KeyStream misses, std::string label)
      : dict_(std::move(dict)),
        hits_(std::move(hits)),
        misses_(std::move(misses)),
        label_(std::move(label)) {}

  static absl::StatusOr<std::unique_ptr<BenchTable>> Create(uint64_t keys) {
    if (g_path_count >= kMaxTables) return absl::InternalError("too many tables");
    const std::string path =
        absl::StrCat("/dev/shm/shmdict-bench-", getpid(), "-", keys);
    OpenOptions options;
    options.create = true;
    options.exclusive = true;
    options.capacity = keys;
    options.max_key_size = kKeySize;
    options.max_value_size = kValueSize;
    absl::StatusOr<Dict> dict = Dict::Open(path, options);
    if (!dict.ok()) return dict.status();
    // Ours now (exclusive create): remove it at exit, whatever happens below.
    std::snprintf(g_paths[g_path_count], sizeof(g_paths[0]), "%s", path.c_str());
    if (g_path_count == 0) {
      std::atexit(RemoveTableFiles);
      signal(SIGINT, RemoveTableFilesAndDie);
      signal(SIGTERM, RemoveTableFilesAndDie);
    }
    g_path_count = g_path_count + 1;

    // Insert keys [0, keys) in a random order.
    std::mt19937_64 rng(kRngSeed ^ keys);
    std::vector<uint64_t> order(keys);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    char key[kKeySize];
    char value[kValueSize];
    for (uint64_t i : order) {
      MakeKey(i, key);
      std::memset(value, static_cast<int>('a' + i % 26), sizeof(value));
      absl::StatusOr<uint64_t> v = dict->Insert(std::string_view(key, kKeySize),
                                                std::string_view(value, kValueSize));
      if (!v.ok()) {
        return absl::Status(v.status().code(),
                            absl::StrCat("filling ", path, ": ", v.status().message()));
      }
    }
    const Stats stats = dict->GetStats();
    if (stats.count != keys) {
      return absl::InternalError(absl::StrCat(path, " holds ", stats.count,
                                              " entries after inserting ", keys));
    }
    size_t length = kMinStream;
    while (length < kDrawsPerKey * keys && length < kMaxStream) length *= 2;
    KeyStream hits(0, keys, length, rng);
    KeyStream misses(keys, keys, length, rng);
    std::string label = absl::StrFormat("keys=%d key=%dB value=%dB load=%.2f", keys,
                                        kKeySize, kValueSize, stats.load_factor);
    return std::unique_ptr<BenchTable>(
        new BenchTable(std::move(*dict), std::move(hits), std::move(misses),
                       std::move(label)));
  }

  Dict dict_;
  KeyStream hits_;
  KeyStream misses_;
  std::string label_;
};

BenchTable* TableOrSkip(benchmark::State& state) {
  std::string error;
  BenchTable* t = BenchTable::Get(static_cast<uint64_t>(state.range(0)), &error);
  if (t == nullptr) state.SkipWithError(error.c_str());
  return t;
}

void Finish(benchmark::State& state, const BenchTable& t) {
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(t.label());
}

void BM_GetHit(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  const KeyStream& keys = t->hits();
  size_t pos = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> v = d.Get(keys.key(pos));
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(!v.ok())) {
      state.SkipWithError("Get of an inserted key failed");
      break;
    }
    benchmark::DoNotOptimize(v);
  }
  Finish(state, *t);
}

void BM_GetMiss(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  const KeyStream& keys = t->misses();
  size_t pos = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> v = d.Get(keys.key(pos));
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(v.ok())) {
      state.SkipWithError("Get of a key never inserted succeeded");
      break;
    }
    benchmark::DoNotOptimize(v);
  }
  Finish(state, *t);
}

void BM_ContainsMiss(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  const KeyStream& keys = t->misses();
  size_t pos = 0;
  for (auto _ : state) {
    const bool found = d.Contains(keys.key(pos));
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(found)) {
      state.SkipWithError("a key never inserted is present");
      break;
    }
    benchmark::DoNotOptimize(found);
  }
  Finish(state, *t);
}

void BM_Put(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  Dict& d = t->dict();
  const KeyStream& keys = t->hits();
  char value[kValueSize];
  std::memset(value, 'v', sizeof(value));
  size_t pos = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    std::memcpy(value, &n, sizeof(n));  // a different value each time
    ++n;
    absl::StatusOr<uint64_t> v =
        d.Put(keys.key(pos), std::string_view(value, kValueSize));
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(!v.ok())) {
      state.SkipWithError("Put of an inserted key failed");
      break;
    }
    benchmark::DoNotOptimize(v);
  }
  Finish(state, *t);
}

void BM_GetInto(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  const KeyStream& keys = t->hits();
  size_t pos = 0;
  for (auto _ : state) {
    char buf[kValueSize];
    size_t len = 0;
    absl::Status s = d.GetInto(keys.key(pos), buf, sizeof(buf), &len);
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(!s.ok())) {
      state.SkipWithError("GetInto of an inserted key failed");
      break;
    }
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(len);
    benchmark::DoNotOptimize(buf);
  }
  Finish(state, *t);
}

// GetMany in batches of 16 keys; items are keys (time per key).
void BM_GetMany16(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  const KeyStream& keys = t->hits();
  constexpr size_t kBatch = 16;
  char bufs[kBatch][kValueSize];
  absl::Span<char> spans[kBatch];
  for (size_t i = 0; i < kBatch; ++i) spans[i] = absl::Span<char>(bufs[i], kValueSize);
  std::string_view batch[kBatch];
  GetManyResult results[kBatch];
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      batch[i] = keys.key(pos);
      pos = keys.Next(pos);
    }
    absl::StatusOr<size_t> found = d.GetMany(batch, spans, absl::MakeSpan(results));
    if (ABSL_PREDICT_FALSE(!found.ok() || *found != kBatch)) {
      state.SkipWithError("GetMany missed an inserted key");
      break;
    }
    benchmark::DoNotOptimize(bufs);
  }
  Finish(state, *t);
  state.SetItemsProcessed(state.iterations() * int64_t{kBatch});
}

// A random cyclic permutation of 64-byte lines, each holding the address of the next.
struct alignas(internal::kCacheLine) Line {
  const Line* next;
};
static_assert(sizeof(Line) == internal::kCacheLine);

class PointerChase {
 public:
  // Null (with *error set) if the memory cannot be mapped.
  static const PointerChase* Get(uint64_t bytes, std::string* error) {
    static auto* chases = new std::map<uint64_t, std::unique_ptr<PointerChase>>();
    auto it = chases->find(bytes);
    if (it != chases->end()) return it->second.get();
    const size_t count = bytes / sizeof(Line);
    void* p = mmap(nullptr, count * sizeof(Line), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      *error = absl::StrCat("mmap of ", bytes, " bytes failed: ", strerror(errno));
      return nullptr;
    }
    Line* lines = static_cast<Line*>(p);
    std::vector<uint32_t> order(count);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(kRngSeed ^ bytes);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k = 0; k < count; ++k) {
      lines[order[k]].next = &lines[order[(k + 1) % count]];
    }
    auto chase = std::unique_ptr<PointerChase>(new PointerChase(lines, count));
    return chases->emplace(bytes, std::move(chase)).first->second.get();
  }

  const Line* start() const { return lines_; }
  size_t count() const { return count_; }

 private:
  PointerChase(const Line* lines, size_t count) : lines_(lines), count_(count) {}
  const Line* lines_;
  size_t count_;
};

void BM_DependentRandomAccess(benchmark::State& state) {
  const uint64_t keys = static_cast<uint64_t>(state.range(0));
  absl::StatusOr<internal::Layout> layout =
      internal::ComputeLayout(keys, kKeySize, kValueSize);
  if (!layout.ok()) {
    state.SkipWithError(std::string(layout.status().ToString()).c_str());
    return;
  }
  std::string error;
  const PointerChase* chase = PointerChase::Get(layout->file_size, &error);
  if (chase == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const Line* p = chase->start();
  for (auto _ : state) {
    p = p->next;
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(absl::StrFormat(
      "working_set=%dB (file of keys=%d key=%dB value=%dB) lines=%d shmem",
      chase->count() * sizeof(Line), keys, kKeySize, kValueSize, chase->count()));
}

BENCHMARK(BM_GetHit)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetMiss)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_ContainsMiss)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_Put)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetInto)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetMany16)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_DependentRandomAccess)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);

}  // namespace
}  // namespace shmdict

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  shmdict::RemoveTableFiles();
  return 0;
}
