#include "core/table.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/crash_point.h"
#include "core/slot.h"
#include "core/words.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {

// ---------------------------------------------------------------------------------
// Small helpers

namespace {

// The status of a lookup miss. Built without a message or payload so that it needs
// no allocation (absl::Status keeps such a status inline): a miss is a hot path, and
// GetInto promises not to allocate. ErrorCodeOf maps it to kNotFound by its code.
absl::Status MissStatus() { return absl::Status(absl::StatusCode::kNotFound, ""); }

uint64_t MulHi(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

// A writer that finds its bucket locked spins (pause, then sched_yield) for this many
// rounds, then sleeps between checks, from kLockSleepMinNs doubling to kLockSleepMaxNs.
constexpr uint64_t kLockSpinRounds = 512;
constexpr uint64_t kLockSleepMinNs = 50 * 1000;
constexpr uint64_t kLockSleepMaxNs = 4 * 1000 * 1000;

std::atomic<uint64_t> g_lock_sleeps{0};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

// ---------------------------------------------------------------------------------
// Private types

struct Table::Location {
  uint64_t bucket = 0;
  int slot = -1;        // -1: absent (then both candidate buckets are locked)
  bool locked = true;   // false: no lock could be taken (LockBucket), nothing held
};

// Holds up to two bucket locks, released (in reverse order) on destruction.
class Table::BucketLock {
 public:
  explicit BucketLock(Table* t) : t_(t) {}
  ~BucketLock() { UnlockAll(); }
  BucketLock(const BucketLock&) = delete;
  BucketLock& operator=(const BucketLock&) = delete;

  // False (nothing locked) when the table's descriptor was lost (see LockBucket).
  [[nodiscard]] bool Lock(uint64_t b) {
    if (ABSL_PREDICT_FALSE(!t_->LockBucket(b))) return false;
    held_[n_++] = b;
    return true;
  }
  void UnlockAll() {
    if (n_ == 0) return;
    SHMDICT_CRASH_POINT(kBeforeUnlock);
    while (n_ > 0) t_->UnlockBucket(held_[--n_]);
  }

 private:
  Table* t_;
  uint64_t held_[2] = {0, 0};
  int n_ = 0;
};

// ---------------------------------------------------------------------------------
// Where a key lives

Table::Probe Table::ProbeFor(std::string_view key) const {
  const uint64_t h = XXH3_64bits_withSeed(key.data(), key.size(), seed_);
  const uint64_t half = layout_.bucket_count / 2;
  Probe p;
  p.b1 = MulHi(h, half);
  p.b2 = half + MulHi(((h << 32) | (h >> 32)) * 0x9E3779B97F4A7C15ull, half);
  p.tag = static_cast<uint8_t>(h) == 0 ? 1 : static_cast<uint8_t>(h);
  // An insert puts the key in this slot of the chosen bucket when it is free (else in
  // the next free one, cyclically), so a lookup can read it before the tags arrive.
  p.home = static_cast<uint8_t>((h >> 8) & (kSlotsPerBucket - 1));
  return p;
}

void Table::BucketsOf(std::string_view key, uint64_t* b1, uint64_t* b2) const {
  const Probe p = ProbeFor(key);
  *b1 = p.b1;
  *b2 = p.b2;
}

uint32_t Table::HomeSlotOf(std::string_view key) const { return ProbeFor(key).home; }

// ---------------------------------------------------------------------------------
// The read path

namespace {

// Sinks receive a validated-later snapshot of a matching slot. Reset() is called when
// the snapshot turned out torn and the read is retried.
struct VersionSink {
  uint64_t version = 0;
  uint64_t expires = 0;
  void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v, uint64_t e) {
    version = v;
    expires = e;
  }
  void Reset() {}
};

struct StringSink {
  std::string* out;
  uint64_t version = 0;
  void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v, uint64_t) {
    version = v;
    if (out == nullptr) return;
    out->resize(vlen);
    CopyFromWords(out->data(), value_words, vlen);
  }
  void Reset() {}
};

}  // namespace

// Declared in the class (LookupPrefetched takes one).
struct Table::BufferSink {
  char* buf;
  size_t cap;
  size_t needed = 0;
  uint64_t version = 0;
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v,
                                         uint64_t) {
    version = v;
    needed = vlen;
    if (vlen <= cap && vlen > 0) CopyFromWords(buf, value_words, vlen);
  }
  void Reset() {}
};

namespace {
thread_local uint64_t t_read_retries = 0;
}  // namespace

void NoteReadRetry() { ++t_read_retries; }

// Returns 1 (found: the sink holds a snapshot), 0 (absent) or -1 (the matching slot's
// snapshot holds an impossible length: the file is corrupt).
template <typename Sink>
int Table::Lookup(std::string_view key, Sink& sink) const {
  if (key.size() > layout_.max_key_size) return 0;
  return LookupProbed(key, ProbeFor(key), sink, /*prefetch=*/true);
}

// The key's home slot in bucket b (sequence word at `seq`), read without waiting for
// a tag scan: 1 if the slot's tag is the key's and a validated snapshot holds the key
// (the sink has it), -1 if that snapshot has an impossible value length, 0 otherwise:
// the slot does not seem to hold the key, which needs no validation because the
// caller's tag scan then decides. The tag check changes nothing in a sound file (a
// slot holding a key carries its tag); in a damaged one it makes the home read find
// exactly what the tag scan would, so every lookup path gives the same answer.
template <typename Sink>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Table::ReadHome(std::string_view key, uint64_t b,
                                                        const Probe& p, uint64_t* seq,
                                                        Sink& sink) const {
  if (TagHint(meta(b), p.home) != p.tag) return 0;
  for (;;) {
    const uint64_t s1 = SlotReadBegin(seq);
    const int result = TakeIfHolds(CopyAt(seq, s1, copy_stride_words()), key, sink);
    if (result == 0) return 0;  // not the key's: the tag scan decides
    if (SlotReadValid(seq, s1)) return result;
    NoteReadRetry();
    sink.Reset();
  }
}

// One snapshot's content, for the lookups: 1 if the copy at `c` holds `key` unexpired
// (the sink has its value, version and expiry), -1 if it holds it with an impossible
// value length, else 0 (another key, empty, or `key` expired: absent). The clock is
// read only for an entry that has an expiry.
template <typename Sink>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Table::TakeIfHolds(const uint64_t* c,
                                                           std::string_view key,
                                                           Sink& sink) const {
  const uint64_t w1 = LoadWord(c + 1);
  if (!CopyKeyIs(c, w1, key)) return 0;
  const uint64_t expires = LoadWord(c + kCopyExpiryWord);
  if (ExpiredNow(expires)) return 0;
  const uint32_t vlen = CopyValueLength(w1);
  if (vlen > layout_.max_value_size) return -1;
  sink.Take(c + kCopyHeaderWords + layout_.key_words, vlen, LoadWord(c), expires);
  return 1;
}

template <typename Sink>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Table::LookupProbed(std::string_view key, const Probe& p,
                                                            Sink& sink, bool prefetch) const {
  // Most keys sit in their home slot (about 63% at 80% load; see ProbeFor), which
  // depends on the hash alone: fetch both home slots and both buckets' tag lines at
  // once, so a key at home costs one memory latency. The slots after the homes come
  // too (16% more keys, which the tag scan then finds in the cache); any other key
  // costs two latencies.
  uint64_t* const home1 = slot_seq(p.b1, p.home);
  uint64_t* const home2 = slot_seq(p.b2, p.home);
  if (prefetch) {
    PrefetchSlot(home1);
    PrefetchSlot(home2);
    __builtin_prefetch(&meta(p.b1));
    __builtin_prefetch(&meta(p.b2));
    const uint32_t next = (p.home + 1) % kSlotsPerBucket;
    PrefetchSlot(slot_seq(p.b1, next));
    PrefetchSlot(slot_seq(p.b2, next));
  }
  if (const int r = ReadHome(key, p.b1, p, home1, sink); r != 0) return r;
  if (const int r = ReadHome(key, p.b2, p, home2, sink); r != 0) return r;
  // The complete lookup, which alone decides "absent": every slot of b1 and b2 whose
  // tag matches (the home slots again if their tag matches: a key inserted there
  // since is found).
  for (const uint64_t b : {p.b1, p.b2}) {
    uint32_t mask = LoadTags(meta(b)).Match(p.tag);
    while (mask != 0) {
      const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
      mask &= mask - 1;
      const uint64_t* const seq = slot_seq(b, i);
      // Fetch the slot's lines (sequence, both copies) together: which copy to read
      // depends on the sequence, and waiting for it before touching the copy would
      // put two memory latencies in a row.
      PrefetchSlot(seq);
      const int result = ReadSlot(seq, copy_stride_words(),
                                  [&](const uint64_t* c) ABSL_ATTRIBUTE_ALWAYS_INLINE {
        sink.Reset();
        return TakeIfHolds(c, key, sink);
      });
      if (result != 0) return result;
    }
  }
  return 0;
}

absl::Status Table::Get(std::string_view key, std::string* value,
                        uint64_t* version) const {
  StringSink sink{value};
  const int r = Lookup(key, sink);
  if (r == 0) return MissStatus();
  if (r < 0) return Err(ErrorCode::kBadFile, "corrupt slot: value length over the maximum");
  if (version != nullptr) *version = sink.version;
  return absl::OkStatus();
}

uint64_t ReadRetriesOfThisThread() { return t_read_retries; }

// Relaxed: a statistic.
uint64_t LockSleepsForTesting() { return g_lock_sleeps.load(std::memory_order_relaxed); }

namespace {

// GetInto's and GetMany's check of the caller's buffer.
absl::Status CheckBuffer(const char* buf, size_t cap) {
  if (buf == nullptr && cap != 0) {
    return Err(ErrorCode::kInvalid, "null buffer with nonzero capacity");
  }
  return absl::OkStatus();
}

// The status of a read into a buffer of `cap` bytes for which Lookup returned `r`
// and the value is `needed` bytes long.
absl::Status ReadIntoStatus(int r, size_t needed, size_t cap) {
  if (r == 0) return MissStatus();
  if (r < 0) return Err(ErrorCode::kBadFile, "corrupt slot: value length over the maximum");
  if (needed > cap) {
    return Err(ErrorCode::kBuffer, absl::StrCat("value of ", needed,
                                                " bytes does not fit a buffer of ", cap,
                                                " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

// LookupProbed for GetMany, whose stages fetched the lines: one out-of-line copy, so
// GetMany's loops stay small.
ABSL_ATTRIBUTE_NOINLINE int Table::LookupPrefetched(std::string_view key, const Probe& p,
                                                    BufferSink& sink) const {
  return LookupProbed(key, p, sink, /*prefetch=*/false);
}

size_t Table::GetMany(const std::string_view* keys, size_t n, const absl::Span<char>* bufs,
                      GetManyResult* results) const {
  // The keys go in blocks of kBlock, and each block passes four stages, each stage
  // over the whole block before the next begins, so each stage's fetches have a
  // block's worth of work to arrive behind. Each stage fetches only what the next one
  // reads, so a key costs about 4-5 line fetches (a single get fetches 10 at once to
  // save latency; here bandwidth is what counts):
  //   1. hash; prefetch both buckets' tag lines;
  //   2. (tags in the cache) prefetch the sequence line of each slot whose tag matches;
  //   3. (sequences in the cache) prefetch the lines of the copy each one selects;
  //   4. the read proper, a full seqlock-validated lookup that finds its lines in the
  //      cache (the home-slot reads check the tag first, so they too read only
  //      tag-matching slots).
  // kBlock = 16 was chosen by measurement against other block sizes and a pipeline
  // (docs/design.md, "GetMany").
  constexpr size_t kBlock = 16;
  struct Flight {
    Probe p;
    bool probed;      // false: a key over the maximum size, absent without a lookup
    uint32_t m1, m2;  // stage 2's tag matches in b1 and b2 (hints for stage 3)
  };
  Flight flights[kBlock];
  size_t found = 0;
  // The slots of bucket b whose tag matches, from the cached tag line. Relaxed: a hint
  // for prefetching only; stage 4 reads the tags again (acquire).
  auto matching = [&](uint64_t b, uint8_t tag) {
    return LoadTagsHint(meta(b)).Match(tag);
  };
  auto prefetch_seqs = [&](uint64_t b, uint32_t mask) {
    for (; mask != 0; mask &= mask - 1) {
      __builtin_prefetch(slot_seq(b, static_cast<uint32_t>(__builtin_ctz(mask))));
    }
  };
  auto prefetch_copies = [&](uint64_t b, uint32_t mask) {
    for (; mask != 0; mask &= mask - 1) {
      const uint32_t slot = static_cast<uint32_t>(__builtin_ctz(mask));
      // Relaxed: a hint for prefetching only; stage 4 reads the sequence again.
      const uint64_t* const seq = slot_seq(b, slot);
      PrefetchCopy(CopyAt(seq, SeqWord(seq).load(std::memory_order_relaxed),
                          copy_stride_words()));
    }
  };
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    const std::string_view* const ks = keys + start;
    for (size_t j = 0; j < m; ++j) {  // stage 1
      Flight& f = flights[j];
      f.probed = ks[j].size() <= layout_.max_key_size;
      if (f.probed) {
        f.p = ProbeFor(ks[j]);
        __builtin_prefetch(&meta(f.p.b1));
        __builtin_prefetch(&meta(f.p.b2));
      }
    }
    for (size_t j = 0; j < m; ++j) {  // stage 2
      Flight& f = flights[j];
      if (!f.probed) continue;
      f.m1 = matching(f.p.b1, f.p.tag);
      f.m2 = matching(f.p.b2, f.p.tag);
      prefetch_seqs(f.p.b1, f.m1);
      prefetch_seqs(f.p.b2, f.m2);
    }
    for (size_t j = 0; j < m; ++j) {  // stage 3
      const Flight& f = flights[j];
      if (!f.probed) continue;
      prefetch_copies(f.p.b1, f.m1);
      prefetch_copies(f.p.b2, f.m2);
    }
    for (size_t j = 0; j < m; ++j) {  // stage 4
      const size_t k = start + j;
      GetManyResult& r = results[k];
      char* const buf = bufs[k].data();
      const size_t cap = bufs[k].size();
      r.value_len = 0;
      r.version = 0;
      if (ABSL_PREDICT_FALSE(buf == nullptr && cap != 0)) {
        r.status = CheckBuffer(buf, cap);
        continue;
      }
      BufferSink sink{buf, cap};
      // An oversized key is absent (as in Lookup); it was not probed.
      const Flight& f = flights[j];
      const int res = f.probed ? LookupPrefetched(keys[k], f.p, sink) : 0;
      if (res > 0) {
        ++found;
        r.value_len = sink.needed;
        r.version = sink.version;
      }
      r.status = ABSL_PREDICT_TRUE(res > 0 && sink.needed <= cap)
                     ? absl::OkStatus()
                     : ReadIntoStatus(res, sink.needed, cap);
    }
  }
  return found;
}

absl::Status Table::GetInto(std::string_view key, char* buf, size_t cap,
                            size_t* value_len, uint64_t* version) const {
  if (ABSL_PREDICT_FALSE(buf == nullptr && cap != 0)) return CheckBuffer(buf, cap);
  BufferSink sink{buf, cap};
  const int r = Lookup(key, sink);
  if (r > 0) {
    if (value_len != nullptr) *value_len = sink.needed;
    if (version != nullptr) *version = sink.version;
    // The common case, without a call: found, and the value fit.
    if (ABSL_PREDICT_TRUE(sink.needed <= cap)) return absl::OkStatus();
  }
  return ReadIntoStatus(r, sink.needed, cap);
}

int Table::LookupExpiry(std::string_view key, uint64_t* expires) const {
  VersionSink sink;
  const int r = Lookup(key, sink);
  *expires = sink.expires;
  return r;
}

uint64_t Table::Version(std::string_view key) const {
  VersionSink sink;
  return Lookup(key, sink) == 1 ? sink.version : 0;
}

// ---------------------------------------------------------------------------------
// Change notification

namespace {

// Shared futexes (no FUTEX_PRIVATE_FLAG): the word lives in a shared file mapping.
long FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) {
  timespec ts{time_t(timeout_ns / 1000000000u), long(timeout_ns % 1000000000u)};
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts,
                 nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr,
          nullptr, 0);
}

constexpr uint32_t kWaiterBit = 1;
// A writable waiter re-checks at least this often even if no writer wakes it (a
// writer may die between its commit and its wake).
constexpr uint64_t kWaitSliceNs = 1000000000;
// A read-only waiter cannot set kWaiterBit, so writers never wake it: it polls.
constexpr uint64_t kReadOnlyPollNs = 1000000;

}  // namespace

void Table::NotifyChange(uint64_t left_bucket) {
  std::atomic<uint32_t>& word = meta(left_bucket).change_seq;
  // Acq_rel RMW (not a plain store: a writer of a key in its right bucket does not hold
  // this bucket's lock): release orders it after our commit, so a waiter that acquires
  // the new count and re-reads the version sees the write; adding 2 never touches the
  // waiter bit. No system call unless a waiter announced itself.
  const uint32_t old = word.fetch_add(2, std::memory_order_acq_rel);
  if ((old & kWaiterBit) != 0) {
    // Relaxed: the wake below is what the sleepers wait for; a waiter that sets the bit
    // again after this sleeps on a value that includes our increment.
    word.fetch_and(~kWaiterBit, std::memory_order_relaxed);
    FutexWakeAll(&word);
  }
}

absl::Status Table::WaitForChange(std::string_view key, uint64_t version,
                                  int64_t timeout_ms) const {
  if (key.size() > layout_.max_key_size) {
    return Err(ErrorCode::kTooBig,
               absl::StrCat("key of ", key.size(), " bytes is over the table's maximum of ",
                            layout_.max_key_size));
  }
  const Probe p = ProbeFor(key);
  std::atomic<uint32_t>& word = meta(p.b1).change_seq;
  const uint64_t start = MonotonicNs();
  // Saturates: a timeout too long to represent (about 584 years) waits forever.
  const uint64_t deadline =
      timeout_ms < 0 || uint64_t(timeout_ms) > (UINT64_MAX - start) / 1000000u
          ? UINT64_MAX
          : start + uint64_t(timeout_ms) * 1000000u;
  for (;;) {
    // Acquire: pairs with NotifyChange's release RMW. Loaded before the version check,
    // so a write committed after the check changes the word from `c` and the futex
    // wait below returns at once.
    uint32_t c = word.load(std::memory_order_acquire);
    VersionSink seen;
    if ((Lookup(key, seen) == 1 ? seen.version : 0) != version) return absl::OkStatus();
    const uint64_t now = MonotonicNs();
    if (now >= deadline) {
      return Err(ErrorCode::kTimeout,
                 absl::StrCat("the key did not change within ", timeout_ms, " ms"));
    }
    uint64_t slice = read_only_ ? kReadOnlyPollNs : kWaitSliceNs;
    if (!read_only_ && (c & kWaiterBit) == 0) {
      // Announce a sleeper. Acq_rel: if the word moved meanwhile (a write), retry from
      // the top instead of sleeping.
      if (!word.compare_exchange_strong(c, c | kWaiterBit, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        continue;
      }
      c |= kWaiterBit;
    }
    slice = std::min(slice, deadline - now);
    if (seen.expires != 0) {
      // An expiry wakes no one: sleep at most until the entry expires, then poll each
      // millisecond until the coarse clock (core/clock.h) says so.
      const uint64_t now_ms = CoarseNowMs();
      const uint64_t left_ms = seen.expires > now_ms ? seen.expires - now_ms : 0;
      slice = std::min(slice, std::max<uint64_t>(left_ms, 1) * 1000000u);
    }
    FutexWait(&word, c, slice);  // returns at a wake, a change of the word, or the slice
  }
}


ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Table::LockBucket(uint64_t b) {
  std::atomic<uint64_t>& lock = meta(b).lock;
  uint64_t cur = 0;
  // Acquire-release CAS: acquire pairs with the previous holder's release store in
  // UnlockBucket, making its slot, tag and clock writes visible; release lets a
  // later repairer that takes the lock from us (CAS on our word) see what we saw.
  if (lock.compare_exchange_strong(cur, lock_word_, std::memory_order_acq_rel,
                                   std::memory_order_relaxed)) {
    SHMDICT_CRASH_POINT(kLockTaken);
    return true;
  }
  return LockBucketSlow(b);
}

// The contended path: spin a little, yield, then sleep with a growing pause (a stopped
// holder costs a waiter a few hundred wake-ups a second, not thousands), checking the
// holder's liveness every 64 spins and at every sleep.
ABSL_ATTRIBUTE_NOINLINE bool Table::LockBucketSlow(uint64_t b) {
  std::atomic<uint64_t>& lock = meta(b).lock;
  uint64_t sleep_ns = kLockSleepMinNs;
  for (uint64_t iter = 1;; ++iter) {
    // Relaxed: only a hint for the CAS below, which does the synchronizing.
    uint64_t cur = lock.load(std::memory_order_relaxed);
    if (cur == 0) {
      // Acq_rel, failure relaxed: as the first CAS in LockBucket.
      if (lock.compare_exchange_weak(cur, lock_word_, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
        SHMDICT_CRASH_POINT(kLockTaken);
        return true;
      }
      continue;
    }
    const bool sleeping = iter >= kLockSpinRounds;
    if ((sleeping || iter % 64 == 0) && HolderIsDead(cur)) {
      // Succeeds only if the dead holder's word is still there. The dead holder never
      // released the lock, so this acquire pairs with nothing of its: what makes its
      // stores visible to us is its death: the kernel removed the holder's OFD lock
      // when the process exited, after its last store, and our F_OFD_GETLK in
      // HolderIsDead observed that removal under the same file-lock spinlock, which
      // orders the holder's stores before our later loads. (The model check,
      // tests/model, confirms that weakening this CAS to acquire-only is harmless.)
      // Release: a repairer that later takes the lock from us sees what we saw.
      if (lock.compare_exchange_strong(cur, lock_word_, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        SHMDICT_CRASH_POINT(kRecoveryLockTaken);
        RecoverBucket(b);
        return true;
      }
      continue;
    }
    // Relaxed: a flag of this handle (NoteDescriptorLost); nothing is read through it.
    if (ABSL_PREDICT_FALSE(descriptor_lost_.load(std::memory_order_relaxed))) return false;
    if (iter < 32) {
      CpuRelax();
    } else if (!sleeping) {
      sched_yield();
    } else {
      // Relaxed: a statistic for tests (LockSleepsForTesting).
      g_lock_sleeps.fetch_add(1, std::memory_order_relaxed);
      const timespec ts{0, static_cast<long>(sleep_ns)};
      nanosleep(&ts, nullptr);
      sleep_ns = std::min(sleep_ns * 2, kLockSleepMaxNs);
    }
  }
}

void Table::UnlockBucket(uint64_t b) {
  // Release: publishes every slot, tag and clock store made under the lock to the next
  // holder's acquire CAS.
  meta(b).lock.store(0, std::memory_order_release);
}

// ---------------------------------------------------------------------------------
// Writes (all under the bucket lock)

void Table::SetTag(uint64_t b, uint32_t i, uint8_t tag) { StoreTag(meta(b), i, tag); }

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Table::WriteCopy(uint64_t b, uint32_t i,
                                                          std::string_view key,
                                                          std::string_view value,
                                                          uint64_t version,
                                                          uint64_t expires,
                                                          uint64_t must_outlive) {
  uint64_t* seq = slot_seq(b, i);
  const uint64_t s = SlotWriteBegin(seq);
  SHMDICT_CRASH_POINT(kWriteBegun);
  uint64_t* c = SpareCopyAt(seq, s, copy_stride_words());
  StoreWord(c + 1, CopyLengths(key.size(), value.size()));
  StoreWord(c, version);
  StoreWord(c + kCopyExpiryWord, expires);
  CopyToWords(c + kCopyHeaderWords, key.data(), key.size());
  SHMDICT_CRASH_POINT(kPayloadHalfWritten);
  CopyToWords(c + kCopyHeaderWords + layout_.key_words, value.data(), value.size());
  SHMDICT_CRASH_POINT(kPayloadWritten);
  if (ExpiredNow(must_outlive)) {
    // The entry this write depends on (see WriteLocked) expired while it was written:
    // readers may already have seen it expired, so committing would bring it back.
    // Undo as a repair does: the old copy stays current, the new one is the spare.
    RollForwardSlot(seq, s + 1);
    return false;
  }
  SlotWriteCommit(seq, s);
  SHMDICT_CRASH_POINT(kWriteCommitted);
  return true;
}

// The same protocol as WriteCopy, with a copy that holds no key.
void Table::WriteEmptyCopy(uint64_t b, uint32_t i) {
  uint64_t* seq = slot_seq(b, i);
  const uint64_t s = SlotWriteBegin(seq);
  SHMDICT_CRASH_POINT(kWriteBegun);
  uint64_t* c = SpareCopyAt(seq, s, copy_stride_words());
  StoreWord(c + 1, 0);
  StoreWord(c, 0);
  StoreWord(c + kCopyExpiryWord, 0);
  SHMDICT_CRASH_POINT(kPayloadWritten);
  SlotWriteCommit(seq, s);
  SHMDICT_CRASH_POINT(kWriteCommitted);
}

// Under the lock of `b`: whether slot i of `b` carries `tag` and holds `key`: what
// FindLocked would say of that slot. (The tag check matters in a damaged file only, where
// a slot may hold a key under another tag: readers, who go by the tags, would not find
// a write made there.)
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Table::HoldsKeyLocked(uint64_t b, uint32_t i,
                                                               std::string_view key,
                                                               uint8_t tag) const {
  if (TagLocked(meta(b), i) != tag) return false;
  return CopyHoldsKey(current_copy_locked(b, i), key);
}

// Under the lock of `b`: the slot of `b` holding `key` (whose tag is `tag`), or -1.
// Under the lock every occupied slot carries its key's tag, so only matching slots
// are read.
int Table::FindLocked(uint64_t b, std::string_view key, uint8_t tag) const {
  for (uint32_t mask = LoadTagsLocked(meta(b)).Match(tag); mask != 0; mask &= mask - 1) {
    const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
    if (CopyHoldsKey(current_copy_locked(b, i), key)) return static_cast<int>(i);
  }
  return -1;
}

absl::Status Table::CheckWritable(std::string_view key, std::string_view value) {
  // The common case first, without a call: a registered writable handle and sizes
  // within the limits (a read-only handle never registers).
  // Acquire: as in EnsureRegistered (pairs with its release store).
  if (ABSL_PREDICT_TRUE(registered_.load(std::memory_order_acquire) &&
                        key.size() <= layout_.max_key_size &&
                        value.size() <= layout_.max_value_size)) {
    return absl::OkStatus();
  }
  return CheckWritableSlow(key, value);
}

absl::Status Table::CheckWritableSlow(std::string_view key, std::string_view value) {
  if (read_only_) {
    return Err(ErrorCode::kPermission, "table was opened read-only");
  }
  if (key.size() > layout_.max_key_size) {
    return Err(ErrorCode::kTooBig,
               absl::StrCat("key of ", key.size(), " bytes is over the table's maximum of ",
                            layout_.max_key_size));
  }
  if (value.size() > layout_.max_value_size) {
    return Err(ErrorCode::kTooBig,
               absl::StrCat("value of ", value.size(),
                            " bytes is over the table's maximum of ",
                            layout_.max_value_size));
  }
  return EnsureRegistered();
}

// Finds `key` and locks what a write of it needs: the bucket holding it, or, when it
// is absent, both candidate buckets (left then right: every writer locks in ascending
// bucket order, so writers cannot deadlock). where.locked is false (and nothing is
// locked) when a lock could not be taken (LockBucket).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Table::Location Table::LocateAndLock(const Probe& p,
                                                                         std::string_view key,
                                                                         BucketLock& locks) {
  // Optimistic: where is the key now? (No lock; rechecked under the lock.)
  uint64_t hint_bucket = 0;
  int hint_slot = -1;
  LookupWhere(key, p, &hint_bucket, &hint_slot);
  if (hint_slot >= 0) {
    if (!locks.Lock(hint_bucket)) return {.locked = false};
    // Keys are unique in a bucket, so checking the hinted slot alone is enough.
    if (HoldsKeyLocked(hint_bucket, static_cast<uint32_t>(hint_slot), key, p.tag)) {
      return {hint_bucket, hint_slot};
    }
    locks.UnlockAll();
  }
  if (!locks.Lock(p.b1) || !locks.Lock(p.b2)) {
    locks.UnlockAll();
    return {.locked = false};
  }
  for (const uint64_t b : {p.b1, p.b2}) {
    const int i = FindLocked(b, key, p.tag);
    if (i >= 0) return {b, i};
  }
  return {};
}

// Lock-free: the bucket and slot that hold `key` now, or *slot = -1.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Table::LookupWhere(std::string_view key, const Probe& p,
                                                            uint64_t* bucket, int* slot) const {
  *slot = -1;
  // A hint only: a torn read here costs a retry under the lock, never a wrong answer,
  // so no sequence validation.
  auto holds_key = [&](const uint64_t* seq) ABSL_ATTRIBUTE_ALWAYS_INLINE {
    return CopyHoldsKey(CopyAt(seq, SlotReadBegin(seq), copy_stride_words()), key);
  };
  // As in LookupProbed: the home slots and both buckets' tags in one memory latency,
  // and, since this is one write, not a stream of reads, the slots after the homes
  // too: an insert whose home slot was taken took the next free one, so 79% of the
  // keys of a table filled to 80% sit at home or just after it (63% and 16%). The
  // home slots' lines and the tag lines (which hold the lock) are fetched for writing:
  // the write most likely goes there (the key is at home, or an insert takes its free
  // home). The slots after them are fetched shared: they most likely hold other keys,
  // and taking their lines away from the caches of processes reading those keys would
  // cost those readers a miss for nothing.
  const uint32_t next = (p.home + 1) % kSlotsPerBucket;
  const uint64_t* const home1 = slot_seq(p.b1, p.home);
  const uint64_t* const home2 = slot_seq(p.b2, p.home);
  const uint64_t* const next1 = slot_seq(p.b1, next);
  const uint64_t* const next2 = slot_seq(p.b2, next);
  PrefetchSlotForWrite(home1);
  PrefetchSlotForWrite(home2);
  PrefetchSlot(next1);
  PrefetchSlot(next2);
  __builtin_prefetch(&meta(p.b1), /*rw=*/1);
  __builtin_prefetch(&meta(p.b2), /*rw=*/1);
  // Written out, not looped, so the checks stay inline.
  if (holds_key(home1)) {
    *bucket = p.b1;
    *slot = p.home;
    return;
  }
  if (holds_key(home2)) {
    *bucket = p.b2;
    *slot = p.home;
    return;
  }
  if (holds_key(next1)) {
    *bucket = p.b1;
    *slot = static_cast<int>(next);
    return;
  }
  if (holds_key(next2)) {
    *bucket = p.b2;
    *slot = static_cast<int>(next);
    return;
  }
  const uint32_t done = (uint32_t{1} << p.home) | (uint32_t{1} << next);
  for (const uint64_t b : {p.b1, p.b2}) {
    uint32_t mask = LoadTags(meta(b)).Match(p.tag) & ~done;
    while (mask != 0) {
      const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
      mask &= mask - 1;
      const uint64_t* const seq = slot_seq(b, i);
      // For writing: its tag matches, so it most likely holds the key and is the slot
      // the write goes to.
      PrefetchSlotForWrite(seq);
      if (holds_key(seq)) {
        *bucket = b;
        *slot = static_cast<int>(i);
        return;
      }
    }
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline Table::WriteOutcome Table::WriteLocked(
    const Probe& p, Location& where, WriteMode mode, std::string_view key,
    std::string_view value, uint64_t expected_version, uint64_t expires) {
  // Under the lock: decide and write, nothing else. Failures are returned as codes and
  // turned into statuses (which allocate) after the locks are released.
  // The key's slot, if it has one, holds it unexpired (present) or expired: then the
  // key is absent to every mode, and the write reuses the slot.
  bool present = false;
  uint64_t current = 0;
  uint64_t current_expires = 0;
  if (where.slot >= 0) {
    const uint64_t* c = current_copy_locked(where.bucket, static_cast<uint32_t>(where.slot));
    current_expires = LoadWord(c + kCopyExpiryWord);
    present = !ExpiredNow(current_expires);
    if (present) current = LoadWord(c);
  }
  switch (mode) {
    case WriteMode::kPut:
      break;
    case WriteMode::kInsert:
      if (present) return {ErrorCode::kExists};
      break;
    case WriteMode::kReplace:
      if (!present) return {ErrorCode::kNotFound};
      break;
    case WriteMode::kCompareAndSwap:
      if (current != expected_version) return {ErrorCode::kVersion, current};
      break;
  }
  if (where.slot >= 0) {
    BucketMeta& m = meta(where.bucket);
    // Relaxed: the clock is read and written only under the bucket lock. The store
    // precedes the slot's begin store (a release store) in program order, so a crash
    // never leaves a published version above the clock.
    uint64_t clock = m.clock.load(std::memory_order_relaxed);
    // Relaxed, without that bucket's lock: the other candidate bucket's clock, only to
    // raise ours to it, so that versions order the writes to a key's two buckets (the
    // order kEvictLrs goes by). A stale value only gives a lower version, still above
    // every version of this bucket.
    const uint64_t other = where.bucket == p.b1 ? p.b2 : p.b1;
    clock = std::max(clock, meta(other).clock.load(std::memory_order_relaxed));
    // An exhausted clock (only damage makes one) would give version 0 next: refuse.
    if (ABSL_PREDICT_FALSE(clock == UINT64_MAX)) return {ErrorCode::kBadFile, where.bucket};
    const uint64_t v = clock + 1;
    m.clock.store(v, std::memory_order_relaxed);
    SHMDICT_CRASH_POINT(kClockBumped);
    // A write that depends on the entry being present (replace, touch, a version check,
    // fetch-add's sum) must commit before the entry expires: readers decide expiry by
    // the clock alone, without the lock, and may see it expired while we write.
    const bool depends = present && (mode == WriteMode::kReplace ||
                                     (mode == WriteMode::kCompareAndSwap && expected_version != 0));
    if (!WriteCopy(where.bucket, static_cast<uint32_t>(where.slot), key, value, v, expires,
                   depends ? current_expires : 0)) {
      return {ErrorCode::kOk, 0, kNoBucket, /*retry=*/true};
    }
    return {ErrorCode::kOk, v};
  }
  // Absent: both buckets are locked. Take the one with more free slots, the left one
  // on a tie, and in it the key's home slot if it is free, else the next free slot
  // after it (cyclically).
  uint32_t free_masks[2];
  const uint64_t buckets[2] = {p.b1, p.b2};
  for (int k = 0; k < 2; ++k) {
    free_masks[k] = LoadTagsLocked(meta(buckets[k])).FreeMask();
  }
  const int free0 = __builtin_popcount(free_masks[0]);
  const int free1 = __builtin_popcount(free_masks[1]);
  uint64_t b;
  uint32_t i;
  WriteOutcome outcome{ErrorCode::kOk};
  if (ABSL_PREDICT_FALSE(free0 == 0 && free1 == 0)) {
    // Both full: reuse an expired entry's slot, else evict (kEvictLrs) or fail.
    if (!MakeRoomLocked(p, &b, &i, &outcome.evicted_left)) return {ErrorCode::kFull};
  } else {
    const int k = free0 >= free1 ? 0 : 1;
    b = buckets[k];
    i = FirstFreeFrom(free_masks[k], p.home);
  }
  // Relaxed: the clocks are read and written only under the bucket locks (see above).
  // The new version is above every version the key ever had: those were given out
  // from these two clocks, which never go back.
  const uint64_t clock = std::max(meta(p.b1).clock.load(std::memory_order_relaxed),
                                  meta(p.b2).clock.load(std::memory_order_relaxed));
  if (ABSL_PREDICT_FALSE(clock == UINT64_MAX)) return {ErrorCode::kBadFile, b};
  const uint64_t v = clock + 1;
  meta(b).clock.store(v, std::memory_order_relaxed);
  SHMDICT_CRASH_POINT(kClockBumped);
  SetTag(b, i, p.tag);  // the slot is still empty: readers find "absent"
  SHMDICT_CRASH_POINT(kTagPublished);
  WriteCopy(b, i, key, value, v, expires);  // the commit point
  where.bucket = b;
  where.slot = static_cast<int>(i);
  outcome.value = v;
  return outcome;
}

absl::Status Table::WriteError(const WriteOutcome& o, uint64_t expected_version) const {
  switch (o.code) {
    case ErrorCode::kExists:
      return Err(ErrorCode::kExists, "key already exists");
    case ErrorCode::kNotFound:
      return Err(ErrorCode::kNotFound, "key not found");
    case ErrorCode::kVersion:
      return Err(ErrorCode::kVersion,
                 absl::StrCat("version is ", o.value, ", expected ", expected_version));
    case ErrorCode::kFull:
      return Err(ErrorCode::kFull,
                 absl::StrCat("table full: both candidate buckets of the key are full "
                              "(capacity ",
                              layout_.capacity, ")"));
    case ErrorCode::kBadFile:
      return Err(ErrorCode::kBadFile,
                 absl::StrCat("bucket ", o.value, "'s version clock is exhausted (2^64-1): "
                              "the file is damaged; the write is refused"));
    default:
      return Err(o.code, "write failed");
  }
}

absl::Status Table::DescriptorLostError() const {
  return Err(ErrorCode::kBadFile,
             absl::StrCat("the descriptor shmdict opened for ", path_,
                          " was closed or replaced by the application (descriptors a "
                          "shmdict handle opened are its own); reopen the table"));
}

absl::StatusOr<uint64_t> Table::Write(WriteMode mode, std::string_view key,
                                      std::string_view value, uint64_t expected_version,
                                      uint64_t ttl_ms) {
  if (absl::Status s = CheckWritable(key, value); !s.ok()) return s;
  const absl::StatusOr<uint64_t> expires = ExpiryAfter(ttl_ms);
  if (!expires.ok()) return expires.status();
  const Probe p = ProbeFor(key);
  WriteOutcome o;
  do {
    BucketLock locks(this);
    Location where = LocateAndLock(p, key, locks);
    if (ABSL_PREDICT_FALSE(!where.locked)) return DescriptorLostError();
    o = WriteLocked(p, where, mode, key, value, expected_version, *expires);
  } while (ABSL_PREDICT_FALSE(o.retry));  // unlocked here: the wake and any error
                                           // status come after
  if (ABSL_PREDICT_TRUE(o.code == ErrorCode::kOk)) {
    NotifyChange(p.b1);
    if (ABSL_PREDICT_FALSE(o.evicted_left != kNoBucket)) NotifyChange(o.evicted_left);
    return o.value;
  }
  return WriteError(o, expected_version);
}

absl::Status Table::Erase(std::string_view key) {
  if (absl::Status s = CheckWritable(key, {}); !s.ok()) return s;
  const Probe p = ProbeFor(key);
  {
    BucketLock locks(this);
    Location where = LocateAndLock(p, key, locks);
    if (ABSL_PREDICT_FALSE(!where.locked)) return DescriptorLostError();
    if (where.slot < 0) {
      locks.UnlockAll();
      return Err(ErrorCode::kNotFound, "key not found");
    }
    const uint32_t i = static_cast<uint32_t>(where.slot);
    const uint64_t* c = current_copy_locked(where.bucket, i);
    const bool expired = ExpiredNow(LoadWord(c + kCopyExpiryWord));
    EraseSlotLocked(where.bucket, i);
    if (expired) {
      // Absent already to every reader: erased for its slot's sake, no wake needed.
      // Relaxed: a statistic only this entry's claimant adds to.
      own_entry().expired_erased.fetch_add(1, std::memory_order_relaxed);
      locks.UnlockAll();
      return Err(ErrorCode::kNotFound, "key not found (expired)");
    }
  }
  NotifyChange(p.b1);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Table::Touch(std::string_view key, uint64_t ttl_ms) {
  if (absl::Status s = CheckWritable(key, {}); !s.ok()) return s;
  const absl::StatusOr<uint64_t> expires = ExpiryAfter(ttl_ms);
  if (!expires.ok()) return expires.status();
  const Probe p = ProbeFor(key);
  WriteOutcome o;
  do {  // again if the entry expired while being written (WriteOutcome::retry)
    BucketLock locks(this);
    Location where = LocateAndLock(p, key, locks);
    if (ABSL_PREDICT_FALSE(!where.locked)) return DescriptorLostError();
    const uint64_t* c =
        where.slot >= 0 ? current_copy_locked(where.bucket, static_cast<uint32_t>(where.slot))
                        : nullptr;
    if (c == nullptr || ExpiredNow(LoadWord(c + kCopyExpiryWord))) {
      locks.UnlockAll();
      return Err(ErrorCode::kNotFound, "key not found");
    }
    // The value is rewritten from the current copy into the spare one: under the lock
    // nothing else writes either copy, and WriteCopy reads the current one only.
    const uint32_t vlen = CopyValueLength(LoadWord(c + 1));
    if (vlen > layout_.max_value_size) {
      locks.UnlockAll();
      return Err(ErrorCode::kBadFile, "corrupt slot: value length over the maximum");
    }
    const std::string_view value(
        reinterpret_cast<const char*>(c + kCopyHeaderWords + layout_.key_words), vlen);
    o = WriteLocked(p, where, WriteMode::kReplace, key, value, 0, *expires);
  } while (ABSL_PREDICT_FALSE(o.retry));
  if (o.code != ErrorCode::kOk) return WriteError(o, 0);
  NotifyChange(p.b1);
  return o.value;
}

void Table::EraseSlotLocked(uint64_t b, uint32_t i) {
  WriteEmptyCopy(b, i);  // the commit point
  SetTag(b, i, 0);
  SHMDICT_CRASH_POINT(kTagCleared);
}

absl::StatusOr<int64_t> Table::FetchAdd(std::string_view key, int64_t delta,
                                        uint64_t* version, bool if_present) {
  if (absl::Status s = CheckWritable(key, {}); !s.ok()) return s;
  if (layout_.max_value_size < 8) {
    return Err(ErrorCode::kTooBig, "values of this table are shorter than 8 bytes");
  }
  const Probe p = ProbeFor(key);
  WriteOutcome o;
  uint64_t new_value = 0;
  for (;;) {
    BucketLock locks(this);
    Location where = LocateAndLock(p, key, locks);
    if (ABSL_PREDICT_FALSE(!where.locked)) return DescriptorLostError();
    uint64_t old_value = 0;
    uint64_t expires = 0;  // an absent or expired counter starts anew, with no expiry
    bool present = false;
    if (where.slot >= 0) {
      const uint64_t* c = current_copy_locked(where.bucket, static_cast<uint32_t>(where.slot));
      const uint64_t e = LoadWord(c + kCopyExpiryWord);
      if (!ExpiredNow(e)) {
        const uint32_t vlen = CopyValueLength(LoadWord(c + 1));
        if (vlen != 8) {
          locks.UnlockAll();
          return Err(ErrorCode::kType,
                     absl::StrCat("value is ", vlen, " bytes long, not an 8-byte integer"));
        }
        CopyFromWords(reinterpret_cast<char*>(&old_value),
                      c + kCopyHeaderWords + layout_.key_words, 8);
        expires = e;
        present = true;
      } else if (if_present) {
        where.slot = -1;
      }
    }
    if (if_present && where.slot < 0) {
      locks.UnlockAll();
      return Err(ErrorCode::kNotFound, "key not found");
    }
    // Values are little-endian; this build runs only where that is native (the
    // header's endianness mark is checked at open).
    new_value = old_value + static_cast<uint64_t>(delta);
    char bytes[8];
    std::memcpy(bytes, &new_value, 8);
    // The sum depends on the entry being present: as a replace, it is not committed
    // if the entry expires meanwhile (then, or if it expired since the check above,
    // start again: it is absent now).
    o = WriteLocked(p, where, present ? WriteMode::kReplace : WriteMode::kPut, key,
                    std::string_view(bytes, 8), 0, expires);
    if (ABSL_PREDICT_TRUE(!o.retry && !(present && o.code == ErrorCode::kNotFound))) break;
  }
  if (o.code != ErrorCode::kOk) return WriteError(o, 0);
  NotifyChange(p.b1);
  if (ABSL_PREDICT_FALSE(o.evicted_left != kNoBucket)) NotifyChange(o.evicted_left);
  if (version != nullptr) *version = o.value;
  return static_cast<int64_t>(new_value);
}

}  // namespace shmdict::internal
