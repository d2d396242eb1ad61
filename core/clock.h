// The clocks of expiry. An entry's expiry is an absolute time, in milliseconds since
// the Unix epoch, so that a table on a disk path keeps its meaning across reboots (and
// across processes, which share no monotonic origin).
//
// Writers compute an expiry from the precise clock (NowMs: now + ttl). Every decision
// "is this entry expired" (readers, writers, sweeps) uses the coarse clock
// (CoarseNowMs: CLOCK_REALTIME_COARSE, a few ns through the vDSO against ~40 for the
// precise one, updated at the kernel's tick, 4 ms here). The coarse clock lags the
// precise one, so an entry never expires before its time and lives a little after
// it: by the lag, measured on a 2-vCPU KVM guest at 3-8 ms most of the time, 16 ms at
// most over 5 s of sampling when idle and 20 ms with the vCPUs overloaded (the tick is
// late when the hypervisor deschedules the guest). Readers read a clock only for
// entries that have an expiry.
//
// Why writers decide with the coarse clock too: it is one kernel-wide value that only
// moves forward, so once any process (reader or writer) has seen an entry expired,
// every later operation anywhere sees it expired. A writer that decided with the
// precise clock could find an entry expired (and, say, refuse to touch it) while a
// reader a moment later, through the lagging coarse clock, still returns it: an entry
// that comes back.
//
// Both clocks follow the system's real time: setting the clock forward expires
// entries early, setting it back keeps them longer.
#ifndef SHMDICT_CORE_CLOCK_H_
#define SHMDICT_CORE_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"

namespace shmdict::internal {

// Added to both clocks: tests move time forward without sleeping. Relaxed: a test
// sets it while no other thread of its process reads a clock, or accepts either value.
inline std::atomic<int64_t> g_clock_offset_ms{0};

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t ClockMs(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return uint64_t(ts.tv_sec) * 1000u + uint64_t(ts.tv_nsec) / 1000000u +
         uint64_t(g_clock_offset_ms.load(std::memory_order_relaxed));
}

// The precise real-time clock, for computing expiries.
inline uint64_t NowMs() { return ClockMs(CLOCK_REALTIME); }

// The coarse real-time clock, for deciding whether an entry has expired.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t CoarseNowMs() {
  return ClockMs(CLOCK_REALTIME_COARSE);
}

// Whether an entry whose copy holds expiry `expires` (0: never) has expired at `now`.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool ExpiredAt(uint64_t expires, uint64_t now) {
  return expires != 0 && expires <= now;
}

// Whether an entry whose copy holds expiry `expires` has expired now, by the coarse
// clock, read only for an entry that has an expiry (most writes and reads have none,
// and the clock's page costs a TLB miss on a large table).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool ExpiredNow(uint64_t expires) {
  return ABSL_PREDICT_FALSE(expires != 0) && expires <= CoarseNowMs();
}

// The longest time to live a write accepts: 2^42 ms, about 139 years, so that
// now + ttl stays far from overflowing and from the value 0 ("never").
inline constexpr uint64_t kMaxTtlMs = uint64_t{1} << 42;

// Moves this process's clocks by `ms` (tests only).
inline void AdvanceClockForTesting(int64_t ms) {
  g_clock_offset_ms.fetch_add(ms, std::memory_order_relaxed);
}

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_CLOCK_H_
