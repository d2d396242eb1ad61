// The latency floor of the benchmarks: one dependent load per step through a random
// cyclic permutation of 64-byte lines, each holding the address of the next. Over a
// working set as large as a table's file, it is the latency a lookup that misses every
// cache cannot beat. The lines are shared anonymous memory (shmem, like the tables'
// files in /dev/shm: the same page size and TLB reach).
//
// Used by hot_path_bench (BM_DependentRandomAccess) and peer_bench (the floor beside
// every latency figure).
#ifndef SHMDICT_BENCH_FLOOR_H_
#define SHMDICT_BENCH_FLOOR_H_

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/workload.h"

namespace shmdict::bench {

struct alignas(64) ChaseLine {
  const ChaseLine* next;
};
static_assert(sizeof(ChaseLine) == 64);

class PointerChase {
 public:
  // `bytes` of lines (rounded down to whole lines, at least two) linked into one random
  // cycle drawn from `seed`. Null, with *error set, if the memory cannot be mapped.
  static std::unique_ptr<PointerChase> Make(uint64_t bytes, uint64_t seed, std::string* error) {
    const size_t count = std::max<uint64_t>(bytes / sizeof(ChaseLine), 2);
    void* p = mmap(nullptr, count * sizeof(ChaseLine), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      *error = "mmap of " + std::to_string(count * sizeof(ChaseLine)) +
               " bytes failed: " + std::strerror(errno);
      return nullptr;
    }
    ChaseLine* lines = static_cast<ChaseLine*>(p);
    std::vector<uint32_t> order(count);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k = 0; k < count; ++k) {
      lines[order[k]].next = &lines[order[(k + 1) % count]];
    }
    return std::unique_ptr<PointerChase>(new PointerChase(lines, count));
  }

  ~PointerChase() { munmap(lines_, count_ * sizeof(ChaseLine)); }
  PointerChase(const PointerChase&) = delete;
  PointerChase& operator=(const PointerChase&) = delete;

  // ns per step of `steps` dependent steps, going on from where the last call stopped.
  double Time(size_t steps) {
    const ChaseLine* p = cursor_;
    const int64_t t0 = NowNs();
    for (size_t i = 0; i < steps; ++i) {
      p = p->next;
      Escape(p);
    }
    const int64_t t1 = NowNs();
    cursor_ = p;
    return static_cast<double>(t1 - t0) / static_cast<double>(steps);
  }

  const ChaseLine* start() const { return lines_; }
  size_t lines() const { return count_; }
  uint64_t bytes() const { return count_ * sizeof(ChaseLine); }

 private:
  PointerChase(ChaseLine* lines, size_t count) : lines_(lines), count_(count), cursor_(lines) {}

  ChaseLine* lines_;
  size_t count_;
  const ChaseLine* cursor_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_FLOOR_H_
