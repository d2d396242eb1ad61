// Single-threaded cost of shmdict's hot paths, next to the machine's floor.
//
//   tools/bazel run -c opt //bench:hot_path_bench -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// Each benchmark runs at 1K and 1M keys of 16 bytes with 64-byte values (the keys and
// values of bench/workload.h). The table of each size lives in /dev/shm under a name
// unique to this process, is created once (capacity = number of keys, max_key_size
// 16, max_value_size 64), filled before any timing, shared by all benchmarks of that
// size, and removed at exit (also on SIGINT and SIGTERM).
//
// Keys are drawn uniformly at random, with replacement, from the inserted keys (or,
// for misses, from as many keys that were never inserted). The draws are made before
// timing and stored as a stream of key bytes that the timed loop walks with a fixed
// 16-byte stride, so neither the RNG nor a random access to the key array is timed:
// the only random accesses in the loop are the table's own.
//
// Most benchmarks measure throughput: independent operations, which the CPU overlaps.
// The *Latency ones walk the same stream as a dependent chain (bench/workload.h): each
// get's key waits for the previous get's value, so nothing overlaps; these compare
// with the floor.
//
//   BM_GetHit          Dict::Get of a present key (allocates the returned string)
//   BM_GetMiss         Dict::Get of an absent key (returns a kNotFound status)
//   BM_ContainsMiss    Dict::Contains of an absent key: the same probe as BM_GetMiss
//                      without building a status, to separate the two costs
//   BM_Put             Dict::Put of a present key (an update: lock, seqlock write)
//   BM_GetInto         Dict::GetInto of a present key into a stack buffer (no
//                      allocation)
//   BM_GetMany16       Dict::GetMany in batches of 16 present keys (time per key)
//   BM_GetIntoLatency  BM_GetInto as a dependent chain
//   BM_GetMissLatency  Dict::GetInto of absent keys as a dependent chain
//   BM_SoGet, BM_SoGetLatency
//                      shmdict_get of a present key through libshmdict.so (loaded with
//                      dlopen, as FFI users load it; bench/libshmdict_so.h) on the same
//                      table: throughput and dependent chain. Skipped if the library
//                      built with this binary is not found.
//   BM_DependentRandomAccess
//                      one dependent load per iteration, chasing pointers through a
//                      random cyclic permutation of 64-byte lines over a working set as
//                      large as the table's file (bench/floor.h): the latency floor a
//                      lookup that misses the caches cannot beat.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
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
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/shmdict.h"
#include "bench/floor.h"
#include "bench/libshmdict_so.h"
#include "bench/workload.h"
#include "benchmark/benchmark.h"
#include "core/layout.h"

namespace shmdict {
namespace {

using bench::KeyStream;
using bench::kKeySize;

constexpr uint32_t kValueSize = 64;
constexpr int64_t kSmallKeys = int64_t{1} << 10;
constexpr int64_t kLargeKeys = int64_t{1} << 20;
constexpr uint64_t kRngSeed = 20240601;

// One filled table of a given number of keys, with its key streams (8 draws per key,
// a power of two in [8K, 1M]: small enough that the 1K streams, 128 KiB each, leave
// the table in L2; the 1M streams, 16 MiB, are walked sequentially, which the
// hardware prefetcher hides).
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
  const std::string& path() const { return path_; }
  uint64_t keys() const { return keys_; }
  const KeyStream& hits() const { return hits_; }
  const KeyStream& misses() const { return misses_; }
  const std::string& label() const { return label_; }

 private:
  BenchTable(Dict dict, std::string path, uint64_t keys, KeyStream hits, KeyStream misses,
             std::string label)
      : dict_(std::move(dict)),
        path_(std::move(path)),
        keys_(keys),
        hits_(std::move(hits)),
        misses_(std::move(misses)),
        label_(std::move(label)) {}

  static absl::StatusOr<std::unique_ptr<BenchTable>> Create(uint64_t keys) {
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
    // Ours now (exclusive create): removed at exit, whatever happens below.
    bench::RegisterForRemoval(path);

    // Insert keys [0, keys) in a random order.
    std::mt19937_64 rng(kRngSeed ^ keys);
    std::vector<uint64_t> order(keys);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    bench::ValueMaker values(kValueSize);
    char key[kKeySize];
    for (uint64_t i : order) {
      bench::MakeKey(i, key);
      absl::StatusOr<uint64_t> v =
          dict->Insert(std::string_view(key, kKeySize), values.Make(i, 0));
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
    const size_t length = bench::StreamLength(keys);
    KeyStream hits = KeyStream::Uniform(0, keys, length, rng());
    KeyStream misses = KeyStream::Uniform(keys, keys, length, rng());
    std::string label = absl::StrFormat("keys=%d key=%dB value=%dB load=%.2f", keys,
                                        kKeySize, kValueSize, stats.load_factor);
    return std::unique_ptr<BenchTable>(new BenchTable(std::move(*dict), path, keys,
                                                      std::move(hits), std::move(misses),
                                                      std::move(label)));
  }

  Dict dict_;
  std::string path_;
  uint64_t keys_;
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

// The timed loop of a throughput benchmark: `op(key)` returns whether it did what it
// should; the stream position never depends on it.
template <class Op>
void Throughput(benchmark::State& state, const BenchTable& t, const KeyStream& keys, Op op,
                const char* failure) {
  size_t pos = 0;
  for (auto _ : state) {
    const bool ok = op(keys.key(pos));
    pos = keys.Next(pos);
    if (ABSL_PREDICT_FALSE(!ok)) {
      state.SkipWithError(failure);
      break;
    }
  }
  Finish(state, t);
}

// The timed loop of a latency benchmark: `op(key)` returns the dependency of its
// result (bench/workload.h; 0 when the operation did what it should), from which the
// next key's position is computed.
template <class Op>
void Latency(benchmark::State& state, const BenchTable& t, const KeyStream& keys, Op op,
             const char* failure) {
  size_t pos = 0;
  for (auto _ : state) {
    const uint64_t dependency = op(keys.key(pos));
    pos = keys.After(pos, dependency);
    if (ABSL_PREDICT_FALSE(dependency != 0)) {
      state.SkipWithError(failure);
      break;
    }
  }
  Finish(state, t);
}

// Dict::Get over the hits (kHit) or the misses, as a throughput benchmark.
template <bool kHit>
void GetThroughput(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  Throughput(
      state, *t, kHit ? t->hits() : t->misses(),
      [&](std::string_view key) {
        absl::StatusOr<std::string> v = d.Get(key);
        benchmark::DoNotOptimize(v);
        return v.ok() == kHit;
      },
      kHit ? "Get of an inserted key failed" : "Get of a key never inserted succeeded");
}

void BM_GetHit(benchmark::State& state) { GetThroughput<true>(state); }

void BM_GetMiss(benchmark::State& state) { GetThroughput<false>(state); }

void BM_ContainsMiss(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const Dict& d = t->dict();
  Throughput(
      state, *t, t->misses(),
      [&](std::string_view key) {
        const bool found = d.Contains(key);
        benchmark::DoNotOptimize(found);
        return !found;
      },
      "a key never inserted is present");
}

void BM_Put(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  Dict& d = t->dict();
  char value[kValueSize];
  std::memset(value, 'v', sizeof(value));
  uint64_t n = 0;
  Throughput(
      state, *t, t->hits(),
      [&](std::string_view key) {
        // A different value each time, its first and last word alike (a value the
        // dependent chains accept).
        std::memcpy(value, &n, sizeof(n));
        std::memcpy(value + kValueSize - sizeof(n), &n, sizeof(n));
        ++n;
        absl::StatusOr<uint64_t> v = d.Put(key, std::string_view(value, kValueSize));
        benchmark::DoNotOptimize(v);
        return v.ok();
      },
      "Put of an inserted key failed");
}

// A get of a key's value into a caller's buffer of kValueSize bytes, through the C++ API
// (Dict::GetInto) or through libshmdict.so (SoGetInto, below): the status or return
// code, which Found() reads.
struct DictGetInto {
  const Dict& d;
  absl::Status operator()(std::string_view key, char* buf, size_t* len) const {
    return d.GetInto(key, buf, kValueSize, len);
  }
};

bool Found(const absl::Status& s) { return s.ok(); }
bool Found(int rc) { return rc == shmdict_bench_so::kOk; }

// `get` (DictGetInto or SoGetInto) of the hits, as a throughput benchmark.
template <class GetInto>
void GetIntoThroughput(benchmark::State& state, const BenchTable& t, GetInto get,
                       const char* failure) {
  Throughput(
      state, t, t.hits(),
      [&](std::string_view key) {
        char buf[kValueSize];
        size_t len = 0;
        auto result = get(key, buf, &len);
        benchmark::DoNotOptimize(result);
        benchmark::DoNotOptimize(len);
        benchmark::DoNotOptimize(buf);
        return Found(result);
      },
      failure);
}

// `get` of the hits as a dependent chain: each key waits for the value read before.
template <class GetInto>
void GetIntoLatency(benchmark::State& state, const BenchTable& t, GetInto get,
                    const char* failure) {
  Latency(
      state, t, t.hits(),
      [&](std::string_view key) -> uint64_t {
        char buf[kValueSize];
        size_t len = 0;
        const auto result = get(key, buf, &len);
        return bench::ValueDependency(buf, len) | (Found(result) ? 0 : 1);
      },
      failure);
}

void BM_GetInto(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  GetIntoThroughput(state, *t, DictGetInto{t->dict()}, "GetInto of an inserted key failed");
}

void BM_GetIntoLatency(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  GetIntoLatency(state, *t, DictGetInto{t->dict()},
                 "GetInto of an inserted key failed, or read a value that is not well formed");
}

void BM_GetMissLatency(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const DictGetInto get{t->dict()};
  Latency(
      state, *t, t->misses(),
      [&](std::string_view key) -> uint64_t {
        char buf[kValueSize];
        size_t len = 0;
        const absl::Status s = get(key, buf, &len);
        // A miss has no value: its status, and a load fence (bench/workload.h).
        const uint64_t dependency = absl::IsNotFound(s) ? 0 : 1;
        bench::LoadFence();
        return dependency;
      },
      "GetInto of a key never inserted did not return kNotFound");
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

// libshmdict.so (loaded once) and a handle of it on a benchmark table.
struct SoHandle {
  const shmdict_bench_so::Library* lib = nullptr;
  shmdict_bench_so::Handle* handle = nullptr;
};

// The .so and its handle on `t`'s table, opened on first use and warmed up (every key
// read once, which also faults in the new mapping's pages). Null (the benchmark
// skipped with the reason) if the library is not found or not loaded, or the table
// does not open or read through it.
const SoHandle* SoHandleOrSkip(benchmark::State& state, const BenchTable& t) {
  static auto* handles = new std::map<std::string, SoHandle>();
  auto it = handles->find(t.path());
  if (it != handles->end()) return &it->second;
  std::string tried;
  const std::string path = shmdict_bench_so::FindBuiltLibrary(&tried);
  if (path.empty()) {
    state.SkipWithError(("libshmdict.so not found; looked at " + tried).c_str());
    return nullptr;
  }
  std::string error;
  SoHandle h;
  h.lib = shmdict_bench_so::Load(path, &error);
  if (h.lib == nullptr) {
    state.SkipWithError(error.c_str());
    return nullptr;
  }
  const int rc = h.lib->open(t.path().c_str(), 0, nullptr, &h.handle);
  if (rc != shmdict_bench_so::kOk) {
    state.SkipWithError(
        absl::StrCat("shmdict_open ", t.path(), ": ", h.lib->last_error()).c_str());
    return nullptr;
  }
  char key[kKeySize];
  char value[kValueSize];
  for (uint64_t i = 0; i < t.keys(); ++i) {
    bench::MakeKey(i, key);
    size_t len = 0;
    if (h.lib->get(h.handle, key, kKeySize, value, sizeof(value), &len, nullptr) !=
        shmdict_bench_so::kOk) {
      state.SkipWithError(absl::StrCat("shmdict_get of key number ", i, " failed: ",
                                       h.lib->last_error())
                              .c_str());
      return nullptr;
    }
  }
  return &handles->emplace(t.path(), h).first->second;
}

// shmdict_get through libshmdict.so, as GetIntoThroughput and GetIntoLatency call it.
struct SoGetInto {
  const SoHandle& so;
  int operator()(std::string_view key, char* buf, size_t* len) const {
    return so.lib->get(so.handle, key.data(), key.size(), buf, kValueSize, len, nullptr);
  }
};

void BM_SoGet(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const SoHandle* so = SoHandleOrSkip(state, *t);
  if (so == nullptr) return;
  GetIntoThroughput(state, *t, SoGetInto{*so}, "shmdict_get of an inserted key failed");
}

void BM_SoGetLatency(benchmark::State& state) {
  BenchTable* t = TableOrSkip(state);
  if (t == nullptr) return;
  const SoHandle* so = SoHandleOrSkip(state, *t);
  if (so == nullptr) return;
  GetIntoLatency(state, *t, SoGetInto{*so},
                 "shmdict_get of an inserted key failed, or read a value that is not well formed");
}

void BM_DependentRandomAccess(benchmark::State& state) {
  const uint64_t keys = static_cast<uint64_t>(state.range(0));
  absl::StatusOr<internal::Layout> layout =
      internal::ComputeLayout(keys, kKeySize, kValueSize);
  if (!layout.ok()) {
    state.SkipWithError(std::string(layout.status().ToString()).c_str());
    return;
  }
  static auto* chases = new std::map<uint64_t, std::unique_ptr<bench::PointerChase>>();
  std::unique_ptr<bench::PointerChase>& chase = (*chases)[layout->file_size];
  if (chase == nullptr) {
    std::string error;
    chase = bench::PointerChase::Make(layout->file_size, kRngSeed ^ layout->file_size, &error);
    if (chase == nullptr) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const bench::ChaseLine* p = chase->start();
  for (auto _ : state) {
    p = p->next;
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(absl::StrFormat(
      "working_set=%dB (file of keys=%d key=%dB value=%dB) lines=%d shmem", chase->bytes(),
      keys, kKeySize, kValueSize, chase->lines()));
}

BENCHMARK(BM_GetHit)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetMiss)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_ContainsMiss)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_Put)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetInto)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetMany16)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetIntoLatency)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_GetMissLatency)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_SoGet)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_SoGetLatency)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);
BENCHMARK(BM_DependentRandomAccess)->ArgName("keys")->Arg(kSmallKeys)->Arg(kLargeKeys);

}  // namespace
}  // namespace shmdict

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  shmdict::bench::RemoveRegistered();
  return 0;
}
