#include "core/table.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "core/crash_point.h"
#include "core/words.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {

// ---------------------------------------------------------------------------------
// Small helpers

namespace {

// Debian's Abseil has its own string_view type (ABSL_OPTION_USE_STD_STRING_VIEW 0).
inline absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

absl::Status Err(ErrorCode code, std::string_view message) {
  return MakeError(code, message);
}

// The status of a lookup miss. Built without a message or payload so that it needs
// no allocation (absl::Status keeps such a status inline): a miss is a hot path, and
// GetInto promises not to allocate. ErrorCodeOf maps it to kNotFound by its code.
absl::Status MissStatus() { return absl::Status(absl::StatusCode::kNotFound, ""); }

absl::Status ErrnoError(std::string_view what, int err) {
  return MakeOsError(absl::StrCat(AV(what), ": ", strerror(err)), err);
}

uint64_t NowUnixNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

uint64_t MulHi(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

uint64_t ChecksumOf(const ImmutableHeader& fixed) {
  return XXH3_64bits(&fixed, sizeof(fixed));
}

// Bit i of the result is set iff byte i of `w` equals `tag` (exact, no false
// positives: the "has zero byte" test without borrow propagation).
[[maybe_unused]] inline uint32_t MatchBytes(uint64_t w, uint8_t tag) {
  constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7Full;
  const uint64_t x = w ^ (uint64_t{tag} * 0x0101010101010101ull);
  uint64_t y = (x & kLow7) + kLow7;
  y = ~(y | x | kLow7);  // 0x80 in each byte of x that is zero
  return static_cast<uint32_t>(((y >> 7) * 0x0102040810204080ull) >> 56);
}

// Bit i of the result is set iff tag byte i of the bucket (t0: slots 0-7, t1: slots
// 8-15) equals `tag`. One SSE2 byte compare where available.
inline uint32_t MatchTags(uint64_t t0, uint64_t t1, uint8_t tag) {
#ifdef __SSE2__
  const __m128i tags = _mm_set_epi64x(static_cast<long long>(t1), static_cast<long long>(t0));
  return static_cast<uint32_t>(
      _mm_movemask_epi8(_mm_cmpeq_epi8(tags, _mm_set1_epi8(static_cast<char>(tag)))));
#else
  return MatchBytes(t0, tag) | (MatchBytes(t1, tag) << 8);
#endif
}

// The first set bit of the 16-bit `free_mask` at or after bit `from`, cyclically
// (free_mask != 0).
inline uint32_t FirstFreeFrom(uint32_t free_mask, uint32_t from) {
  const uint32_t rotated =
      ((free_mask >> from) | (free_mask << (kSlotsPerBucket - from))) & 0xFFFFu;
  return (from + static_cast<uint32_t>(__builtin_ctz(rotated))) % kSlotsPerBucket;
}

inline uint8_t TagByte(uint64_t tags0, uint64_t tags1, uint32_t i) {
  const uint64_t w = i < 8 ? tags0 : tags1;
  return static_cast<uint8_t>(w >> (8 * (i % 8)));
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The slot's sequence word, reached as an atomic (the slot's layout is computed at
// run time, so it is not a declared std::atomic member).
inline std::atomic_ref<uint64_t> Seq(uint64_t* p) { return std::atomic_ref<uint64_t>(*p); }

// ---------------------------------------------------------------------------------
// Fork handling. A child inherits its parent's file descriptors, and with them the
// parent's OFD lock on its process-table entry. The child must neither use its
// parent's entry (a lock it takes would look alive while the parent lives, and the
// parent's locks would look alive while the child lives) nor keep the parent's
// descriptor open. The atfork child handler therefore closes each table's
// entry-holding descriptor and marks the table unregistered; its next write claims a
// fresh entry.

std::mutex g_registry_mu;  // guards g_registry and every Table's registration
std::set<Table*>* g_registry = nullptr;
std::once_flag g_atfork_once;

void AtForkPrepare() { g_registry_mu.lock(); }
void AtForkParent() { g_registry_mu.unlock(); }

}  // namespace

// Friend-free hook used by the child handler; defined below.
void ForgetRegistrationInChild(Table* t);

namespace {
void AtForkChild() {
  if (g_registry != nullptr) {
    for (Table* t : *g_registry) ForgetRegistrationInChild(t);
    g_registry->clear();
  }
  g_registry_mu.unlock();
}
}  // namespace

// ---------------------------------------------------------------------------------
// Private types

struct Table::Probe {
  uint64_t b1;    // left bucket, in [0, n/2)
  uint64_t b2;    // right bucket, in [n/2, n)
  uint8_t tag;    // never 0
  uint8_t home;   // the key's home slot index, the same in both buckets
};

struct Table::Location {
  uint64_t bucket = 0;
  int slot = -1;  // -1: absent (then both candidate buckets are locked)
};

// Holds up to two bucket locks, released (in reverse order) on destruction.
class Table::BucketLock {
 public:
  explicit BucketLock(Table* t) : t_(t) {}
  ~BucketLock() { UnlockAll(); }
  BucketLock(const BucketLock&) = delete;
  BucketLock& operator=(const BucketLock&) = delete;

  void Lock(uint64_t b) {
    t_->LockBucket(b);
    held_[n_++] = b;
  }
  void UnlockAll() {
    SHMDICT_CRASH_POINT(kBeforeUnlock);
    while (n_ > 0) t_->UnlockBucket(held_[--n_]);
  }

 private:
  Table* t_;
  uint64_t held_[2] = {0, 0};
  int n_ = 0;
};

// ---------------------------------------------------------------------------------
// Layout accessors

namespace {

// The copy of the slot whose sequence word is at `seq` that sequence value `s` selects
// (copy_stride_words: the layout's copy stride in words). For callers that already hold
// the slot's address; copy_words() finds it from the bucket and index.
template <typename Word>
inline Word* CopyAt(Word* seq, uint64_t s, uint64_t copy_stride_words) {
  return seq + 1 + ((s >> 1) & 1) * copy_stride_words;
}

// Whether the copy at `c` holds `key`: its word 1 carries the key's length + 1 in its
// low half, and the key follows the header.
inline bool CopyHoldsKey(const uint64_t* c, std::string_view key) {
  return (LoadWord(c + 1) & 0xFFFFFFFFu) == uint64_t{key.size()} + 1 &&
         WordsEqual(c + 2, key.data(), key.size());
}

}  // namespace

BucketMeta& Table::meta(uint64_t b) const {
  return *reinterpret_cast<BucketMeta*>(base_ + layout_.buckets_offset +
                                        b * layout_.bucket_stride);
}

uint64_t* Table::slot_seq(uint64_t b, uint32_t i) const {
  return reinterpret_cast<uint64_t*>(base_ + layout_.buckets_offset +
                                     b * layout_.bucket_stride + sizeof(BucketMeta) +
                                     uint64_t{i} * layout_.slot_stride);
}

// The copy that sequence value `seq` selects.
uint64_t* Table::copy_words(uint64_t b, uint32_t i, uint64_t seq) const {
  return CopyAt(slot_seq(b, i), seq, layout_.copy_stride / 8);
}

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
  void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v) { version = v; }
  void Reset() {}
};

struct StringSink {
  std::string* out;
  uint64_t version = 0;
  void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v) {
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
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Take(const uint64_t* value_words, uint32_t vlen, uint64_t v) {
    version = v;
    needed = vlen;
    if (vlen <= cap && vlen > 0) CopyFromWords(buf, value_words, vlen);
  }
  void Reset() {}
};

static thread_local uint64_t t_read_retries = 0;

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
  // Relaxed: a filter only (its line was fetched with the slot's); the slot's sequence
  // is what publishes the contents, and the tag scan re-reads the tags with acquire.
  const uint64_t tags = meta(b).tags[p.home / 8].load(std::memory_order_relaxed);
  if (static_cast<uint8_t>(tags >> (8 * (p.home % 8))) != p.tag) return 0;
  const uint64_t want_word1 = uint64_t{key.size()} + 1;
  const uint64_t stride_words = layout_.copy_stride / 8;
  for (;;) {
    // Acquire: as s1 in LookupProbed (pairs with the writers' release stores of the
    // sequence), so the copy that s1 selects is fully visible.
    const uint64_t s1 = Seq(seq).load(std::memory_order_acquire);
    const uint64_t* c = CopyAt(seq, s1, stride_words);
    const uint64_t w1 = LoadWord(c + 1);
    if ((w1 & 0xFFFFFFFFu) != want_word1 || !WordsEqual(c + 2, key.data(), key.size())) {
      return 0;
    }
    const uint32_t vlen = static_cast<uint32_t>(w1 >> 32);
    int result = -1;
    if (vlen <= layout_.max_value_size) {
      sink.Take(c + kCopyHeaderWords + layout_.key_words, vlen, LoadWord(c));
      result = 1;
    }
    // Acquire fence: pairs with the writer's release fence after its begin store, as
    // in LookupProbed.
    ReaderAcquireFence();
    // Relaxed: ordered after the payload loads by the fence above.
    const uint64_t s2 = Seq(seq).load(kTsanBuild ? std::memory_order_acquire
                                                 : std::memory_order_relaxed);
    // Valid iff no write began after s1 (as in LookupProbed).
    if (s2 - s1 <= 2 - (s1 & 1)) return result;
    ++t_read_retries;
    sink.Reset();
  }
}

template <typename Sink>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int Table::LookupProbed(std::string_view key, const Probe& p,
                                                            Sink& sink, bool prefetch) const {
  const uint64_t want_word1 = uint64_t{key.size()} + 1;  // low half of word 1
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
    const BucketMeta& m = meta(b);
    // Acquire: pairs with the release store of the tags in SetTag. Tags are only hints;
    // the slot's sequence (below) is what publishes its contents.
    const uint64_t t0 = m.tags[0].load(std::memory_order_acquire);
    const uint64_t t1 = m.tags[1].load(std::memory_order_acquire);
    uint32_t mask = MatchTags(t0, t1, p.tag);
    while (mask != 0) {
      const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
      mask &= mask - 1;
      uint64_t* seq = slot_seq(b, i);
      // Fetch the slot's lines (sequence, both copies) together: which copy to read
      // depends on the sequence, and waiting for it before touching the copy would
      // put two memory latencies in a row.
      PrefetchSlot(seq);
      for (;;) {
        // Acquire: pairs with the writers' release stores of the sequence (the begin
        // store s+1 and the commit store s+2, and a repairer's s+3), so the copy that
        // s1 selects is fully visible.
        const uint64_t s1 = Seq(seq).load(std::memory_order_acquire);
        const uint64_t* c = copy_words(b, i, s1);
        const uint64_t w1 = LoadWord(c + 1);
        int result = 0;
        if ((w1 & 0xFFFFFFFFu) == want_word1 && WordsEqual(c + 2, key.data(), key.size())) {
          const uint32_t vlen = static_cast<uint32_t>(w1 >> 32);
          if (vlen > layout_.max_value_size) {
            result = -1;
          } else {
            sink.Take(c + kCopyHeaderWords + layout_.key_words, vlen, LoadWord(c));
            result = 1;
          }
        }
        // Acquire fence: pairs with the writer's release fence after its begin store.
        // If any word read above was stored by a write that began after s1, the load
        // below sees that write's begin (or later). Under TSan the payload loads are
        // acquire loads instead (core/words.h).
        ReaderAcquireFence();
        // Relaxed: ordered after the payload loads by the fence above.
        const uint64_t s2 = Seq(seq).load(kTsanBuild ? std::memory_order_acquire
                                                     : std::memory_order_relaxed);
        // Valid iff at most the write in progress at s1 finished and no later write
        // began: only a later write touches the copy s1 selects.
        // As s2 <= (s1 | 1) + 1, without wrapping at 2^64 (a hostile file's sequence
        // may sit there; (s1 | 1) + 1 would be 0 and no snapshot ever valid).
        if (s2 - s1 <= 2 - (s1 & 1)) {
          if (result != 0) return result;
          break;
        }
        // Torn: a write committed and the next began while we read. Counted for the
        // benchmarks' retry fraction (only this path pays for it).
        ++t_read_retries;
        sink.Reset();
      }
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

namespace {

// Prefetches the lines that [p, p + min(bytes, 8 lines)) touches (long values: the
// rest streams).
// kWrite: fetch them for writing (exclusive), for lines the caller is about to store to.
template <bool kWrite = false>
inline void PrefetchLines(const void* p, uint64_t bytes) {
  const char* start = static_cast<const char*>(p);
  const char* first = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(start) &
                                                    ~uintptr_t{kCacheLine - 1});
  const char* end = start + std::min<uint64_t>(bytes, 8 * kCacheLine);
  for (const char* l = first; l < end; l += kCacheLine) __builtin_prefetch(l, kWrite ? 1 : 0);
}

}  // namespace

// The slot's lines: its sequence and both copies.
void Table::PrefetchSlot(const uint64_t* seq) const { PrefetchLines(seq, layout_.slot_stride); }

// The same lines, for writing: for a slot that a writer will most likely write (its
// sequence and the spare copy). Fetching them shared and writing them afterwards cost
// a put about 9% at 1M keys (12 interleaved pairs of hot_path_bench BM_Put against the
// dependent-access floor in the same run: median 1.86 floors shared, 1.70 for writing).
void Table::PrefetchSlotForWrite(const uint64_t* seq) const {
  PrefetchLines</*kWrite=*/true>(seq, layout_.slot_stride);
}

// One copy's lines: header, key and value.
void Table::PrefetchCopy(const uint64_t* copy) const {
  PrefetchLines(copy, layout_.copy_stride);
}

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
  // kBlock = 16 was chosen by an interleaved A/B at 1M keys (peer_bench, point suite): per
  // key, blocks of 12/16/24/32 took 111/111/114/135 ns in batches of 64, and a
  // pipeline with the same stages 8 keys apart (every stage of a different key in
  // each step) took 162, at any gap from 4 to 20.
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
    const BucketMeta& m = meta(b);
    return MatchTags(m.tags[0].load(std::memory_order_relaxed),
                     m.tags[1].load(std::memory_order_relaxed), tag);
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
      const uint64_t s = Seq(slot_seq(b, slot)).load(std::memory_order_relaxed);
      PrefetchCopy(copy_words(b, slot, s));
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

uint64_t Table::Version(std::string_view key) const {
  VersionSink sink;
  return Lookup(key, sink) == 1 ? sink.version : 0;
}

// ---------------------------------------------------------------------------------
// Change notification

namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

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
    if (Version(key) != version) return absl::OkStatus();
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
    FutexWait(&word, c, slice);  // returns at a wake, a change of the word, or the slice
  }
}

// ---------------------------------------------------------------------------------
// Writer registration (process table)

namespace {

struct flock ByteLock(short type, uint64_t offset) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}

}  // namespace

absl::Status Table::EnsureRegistered() {
  // Acquire: pairs with the release store below (another thread registered).
  if (registered_.load(std::memory_order_acquire)) return absl::OkStatus();
  std::call_once(g_atfork_once,
                 [] { pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild); });
  std::lock_guard<std::mutex> guard(g_registry_mu);
  if (registered_.load(std::memory_order_relaxed)) return absl::OkStatus();

  // A descriptor of our own (its own open file description) to hold the entry lock.
  int pfd = -1;
  const std::string self = absl::StrCat("/proc/self/fd/", fd_);
  pfd = open(self.c_str(), O_RDWR | O_CLOEXEC);
  if (pfd < 0) pfd = open(path_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (pfd < 0) return ErrnoError(absl::StrCat("reopening ", path_), errno);
  struct stat st;
  if (fstat(pfd, &st) != 0 || uint64_t(st.st_dev) != file_dev_ ||
      uint64_t(st.st_ino) != file_ino_) {
    close(pfd);
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path_, " was replaced by another file since it was opened"));
  }
  auto* procs = reinterpret_cast<ProcEntry*>(base_ + layout_.proc_table_offset);
  const uint32_t start = static_cast<uint32_t>(getpid()) % kProcEntries;
  for (uint32_t k = 0; k < kProcEntries; ++k) {
    const uint32_t idx = (start + k) % kProcEntries;
    struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
    if (fcntl(pfd, F_OFD_SETLK, &fl) != 0) {
      if (errno == EAGAIN || errno == EACCES) continue;  // held by a live process
      const int err = errno;
      close(pfd);
      return ErrnoError("locking a process-table entry", err);
    }
    ProcEntry& e = procs[idx];
    // Release: publishes the new incarnation after we hold the entry's byte lock; pairs
    // with the acquire load in HolderIsDead, which must never see our incarnation
    // without our byte lock being visible to F_OFD_GETLK (the kernel orders that).
    uint32_t inc = e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (inc == 0) inc = e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1;
    // Relaxed: informational only.
    e.pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
    e.claimed_unix_ns.store(NowUnixNs(), std::memory_order_relaxed);
    proc_fd_ = pfd;
    proc_index_ = static_cast<int32_t>(idx);
    proc_incarnation_ = inc;
    lock_word_ = (uint64_t{idx} + 1) << 32 | inc;
    if (g_registry == nullptr) g_registry = new std::set<Table*>();
    g_registry->insert(this);
    // Release: pairs with the acquire load at the top; the fields above are visible
    // to any thread that sees registered_ == true.
    registered_.store(true, std::memory_order_release);
    return absl::OkStatus();
  }
  close(pfd);
  return Err(ErrorCode::kFull,
             absl::StrCat("process table full: ", kProcEntries,
                          " live processes have this table open for writing"));
}

void ForgetRegistrationInChild(Table* t) { t->ForgetRegistrationAfterFork(); }

void Table::ForgetRegistrationAfterFork() {
  // Runs in the child after fork, single-threaded; only async-signal-safe calls.
  if (proc_fd_ >= 0) close(proc_fd_);
  proc_fd_ = -1;
  proc_index_ = -1;
  proc_incarnation_ = 0;
  lock_word_ = 0;
  // Relaxed: the child is single-threaded here.
  registered_.store(false, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------
// Bucket locks

bool Table::HolderIsDead(uint64_t word) const {
  const uint64_t idx1 = word >> 32;
  const uint32_t inc = static_cast<uint32_t>(word);
  if (idx1 == 0 || idx1 > kProcEntries) return true;  // not a holder: scribbled word
  if (word == lock_word_) return false;  // another thread of this process
  const uint64_t idx = idx1 - 1;
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  // Acquire: pairs with the claimant's release fetch_add. An entry whose incarnation
  // moved on was reclaimed, which needs its byte lock, which the kernel frees only
  // when the holder is gone: the lock's holder is dead.
  if (procs[idx].incarnation.load(std::memory_order_acquire) != inc) return true;
  struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
  if (fcntl(fd_, F_OFD_GETLK, &fl) != 0) return false;  // cannot tell: assume alive
  // F_UNLCK: nobody holds the entry's byte, so the process that claimed this
  // incarnation is gone. (It held the byte from before its claim until its death.)
  return fl.l_type == F_UNLCK;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Table::LockBucket(uint64_t b) {
  std::atomic<uint64_t>& lock = meta(b).lock;
  uint64_t cur = 0;
  // Acquire-release CAS: acquire pairs with the previous holder's release store in
  // UnlockBucket, making its slot, tag and clock writes visible; release lets a
  // later repairer that takes the lock from us (CAS on our word) see what we saw.
  if (lock.compare_exchange_strong(cur, lock_word_, std::memory_order_acq_rel,
                                   std::memory_order_relaxed)) {
    SHMDICT_CRASH_POINT(kLockTaken);
    return;
  }
  for (uint64_t iter = 1;; ++iter) {
    // Relaxed: only a hint for the CAS below, which does the synchronizing.
    cur = lock.load(std::memory_order_relaxed);
    if (cur == 0) {
      if (lock.compare_exchange_weak(cur, lock_word_, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
        SHMDICT_CRASH_POINT(kLockTaken);
        return;
      }
      continue;
    }
    // Check the holder's liveness after a short spin, then every 64 rounds.
    if (iter % 64 == 0 && HolderIsDead(cur)) {
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
        return;
      }
      continue;
    }
    if (iter < 32) {
      CpuRelax();
    } else if (iter < 2048) {
      sched_yield();
    } else {
      const timespec ts{0, 100 * 1000};  // a stopped holder: do not burn the CPU
      nanosleep(&ts, nullptr);
    }
  }
}

void Table::UnlockBucket(uint64_t b) {
  // Release: publishes every slot, tag and clock store made under the lock to the next
  // holder's acquire CAS.
  meta(b).lock.store(0, std::memory_order_release);
}

void Table::RecoverBucket(uint64_t b) {
  BucketMeta& m = meta(b);
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    uint64_t* seq = slot_seq(b, i);
    // Acquire, for documentation more than need: the dead writer's stores (its begin
    // store s+1 included) are already visible, ordered before us by the kernel's
    // detection of its death (see LockBucket); tests/model shows a relaxed load here
    // is not caught. Kept acquire so the slot's contents are ordered after the
    // sequence even if death detection ever changed.
    const uint64_t s = Seq(seq).load(std::memory_order_acquire);
    if ((s & 1) != 0) {
      // Roll back the interrupted write: s + 3 is even and selects the copy that was
      // current before it. Release: a reader that acquires s + 3 sees that copy.
      Seq(seq).store(s + 3, std::memory_order_release);
      SHMDICT_CRASH_POINT(kRecoverySlotRolledBack);
    }
  }
  // Relaxed: under the lock, only lock holders store tags.
  const uint64_t t0 = m.tags[0].load(std::memory_order_relaxed);
  const uint64_t t1 = m.tags[1].load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    if (TagByte(t0, t1, i) == 0) continue;
    const uint64_t s = Seq(slot_seq(b, i)).load(std::memory_order_relaxed);
    const uint64_t w1 = LoadWord(copy_words(b, i, s) + 1);
    if ((w1 & 0xFFFFFFFFu) == 0) {
      // A tag on an empty slot: an insert that did not commit, or an erase that did
      // not clear its tag. The slot is free.
      SetTag(b, i, 0);
      SHMDICT_CRASH_POINT(kRecoveryTagFixed);
    }
  }
  // Relaxed: a statistic.
  reinterpret_cast<FileHeader*>(base_)->live.recoveries.fetch_add(
      1, std::memory_order_relaxed);
  SHMDICT_CRASH_POINT(kRecoveryDone);
}

// ---------------------------------------------------------------------------------
// Writes (all under the bucket lock)

void Table::SetTag(uint64_t b, uint32_t i, uint8_t tag) {
  std::atomic<uint64_t>& word = meta(b).tags[i / 8];
  const int shift = 8 * static_cast<int>(i % 8);
  // Relaxed load: only lock holders store tags, and we hold the lock.
  uint64_t w = word.load(std::memory_order_relaxed);
  w = (w & ~(uint64_t{0xFF} << shift)) | (uint64_t{tag} << shift);
  // Release: pairs with the readers' acquire load of the tags (Lookup).
  word.store(w, std::memory_order_release);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Table::WriteCopy(uint64_t b, uint32_t i,
                                                          std::string_view key,
                                                          std::string_view value,
                                                          uint64_t version) {
  uint64_t* seq = slot_seq(b, i);
  // Relaxed: under the lock the sequence is ours; the lock's acquire made it visible.
  const uint64_t s = Seq(seq).load(std::memory_order_relaxed);
  // Begin (odd). Release: a reader that acquires s + 1 reads copy (s >> 1) & 1, which
  // an earlier write (visible to us through the lock) filled; it must see it too.
  Seq(seq).store(s + 1, std::memory_order_release);
  // Release fence: orders the begin store before the payload stores below. Pairs with
  // the reader's acquire fence: a reader that saw any word stored below sees s + 1.
  WriterReleaseFence();
  SHMDICT_CRASH_POINT(kWriteBegun);
  uint64_t* c = CopyAt(seq, s + 2, layout_.copy_stride / 8);
  StoreWord(c + 1, (uint64_t{key.size()} + 1) | (uint64_t{value.size()} << 32));
  StoreWord(c, version);
  CopyToWords(c + kCopyHeaderWords, key.data(), key.size());
  SHMDICT_CRASH_POINT(kPayloadHalfWritten);
  CopyToWords(c + kCopyHeaderWords + layout_.key_words, value.data(), value.size());
  SHMDICT_CRASH_POINT(kPayloadWritten);
  // Commit. Release: publishes the new copy to readers that acquire s + 2.
  Seq(seq).store(s + 2, std::memory_order_release);
  SHMDICT_CRASH_POINT(kWriteCommitted);
}

void Table::WriteEmptyCopy(uint64_t b, uint32_t i) {
  uint64_t* seq = slot_seq(b, i);
  // The same protocol as WriteCopy, with a copy that holds no key.
  const uint64_t s = Seq(seq).load(std::memory_order_relaxed);  // ours under the lock
  Seq(seq).store(s + 1, std::memory_order_release);  // begin; as in WriteCopy
  WriterReleaseFence();  // as in WriteCopy
  SHMDICT_CRASH_POINT(kWriteBegun);
  uint64_t* c = copy_words(b, i, s + 2);
  StoreWord(c + 1, 0);
  StoreWord(c, 0);
  SHMDICT_CRASH_POINT(kPayloadWritten);
  Seq(seq).store(s + 2, std::memory_order_release);  // commit; as in WriteCopy
  SHMDICT_CRASH_POINT(kWriteCommitted);
}

// Under the lock of `b`: whether slot i of `b` carries `tag` and holds `key`: what
// FindLocked would say of that slot. (The tag check matters in a damaged file only, where
// a slot may hold a key under another tag: readers, who go by the tags, would not find
// a write made there.)
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Table::HoldsKeyLocked(uint64_t b, uint32_t i,
                                                               std::string_view key,
                                                               uint8_t tag) const {
  // Relaxed: only lock holders store tags, and we hold the lock.
  const uint64_t tags = meta(b).tags[i / 8].load(std::memory_order_relaxed);
  if (static_cast<uint8_t>(tags >> (8 * (i % 8))) != tag) return false;
  // Relaxed: stable under the lock.
  const uint64_t s = Seq(slot_seq(b, i)).load(std::memory_order_relaxed);
  return CopyHoldsKey(copy_words(b, i, s), key);
}

// Under the lock of `b`: the slot of `b` holding `key` (whose tag is `tag`), or -1.
// Under the lock every occupied slot carries its key's tag, so only matching slots
// are read.
int Table::FindLocked(uint64_t b, std::string_view key, uint8_t tag) const {
  const BucketMeta& m = meta(b);
  // Relaxed: only lock holders store tags, and we hold the lock.
  const uint64_t t0 = m.tags[0].load(std::memory_order_relaxed);
  const uint64_t t1 = m.tags[1].load(std::memory_order_relaxed);
  uint32_t mask = MatchTags(t0, t1, tag);
  while (mask != 0) {
    const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
    mask &= mask - 1;
    // Relaxed: stable under the lock.
    const uint64_t s = Seq(slot_seq(b, i)).load(std::memory_order_relaxed);
    if (CopyHoldsKey(copy_words(b, i, s), key)) return static_cast<int>(i);
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
// bucket order, so writers cannot deadlock).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Table::Location Table::LocateAndLock(const Probe& p,
                                                                         std::string_view key,
                                                                         BucketLock& locks) {
  // Optimistic: where is the key now? (No lock; rechecked under the lock.)
  uint64_t hint_bucket = 0;
  int hint_slot = -1;
  LookupWhere(key, p, &hint_bucket, &hint_slot);
  if (hint_slot >= 0) {
    locks.Lock(hint_bucket);
    // Keys are unique in a bucket, so checking the hinted slot alone is enough.
    if (HoldsKeyLocked(hint_bucket, static_cast<uint32_t>(hint_slot), key, p.tag)) {
      return {hint_bucket, hint_slot};
    }
    locks.UnlockAll();
  }
  locks.Lock(p.b1);
  locks.Lock(p.b2);
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
  const uint64_t stride_words = layout_.copy_stride / 8;
  auto holds_key = [&](const uint64_t* seq) ABSL_ATTRIBUTE_ALWAYS_INLINE {
    // Acquire: as s1 in LookupProbed.
    const uint64_t s = Seq(const_cast<uint64_t*>(seq)).load(std::memory_order_acquire);
    return CopyHoldsKey(CopyAt(seq, s, stride_words), key);
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
    const BucketMeta& m = meta(b);
    // Acquire: as in LookupProbed.
    const uint64_t t0 = m.tags[0].load(std::memory_order_acquire);
    const uint64_t t1 = m.tags[1].load(std::memory_order_acquire);
    uint32_t mask = MatchTags(t0, t1, p.tag) & ~done;
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

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::StatusOr<uint64_t> Table::WriteLocked(
    const Probe& p, Location& where, WriteMode mode, std::string_view key,
    std::string_view value, uint64_t expected_version) {
  const bool present = where.slot >= 0;
  uint64_t current = 0;
  if (present) {
    // Relaxed: stable under the lock.
    const uint64_t s =
        Seq(slot_seq(where.bucket, where.slot)).load(std::memory_order_relaxed);
    current = LoadWord(copy_words(where.bucket, where.slot, s));
  }
  switch (mode) {
    case WriteMode::kPut:
      break;
    case WriteMode::kInsert:
      if (present) return Err(ErrorCode::kExists, "key already exists");
      break;
    case WriteMode::kReplace:
      if (!present) return Err(ErrorCode::kNotFound, "key not found");
      break;
    case WriteMode::kCompareAndSwap:
      if (current != expected_version) {
        return Err(ErrorCode::kVersion,
                   absl::StrCat("version is ", current, ", expected ", expected_version));
      }
      break;
  }
  if (present) {
    BucketMeta& m = meta(where.bucket);
    // Relaxed: the clock is read and written only under the bucket lock. The store
    // precedes the slot's begin store (a release store) in program order, so a crash
    // never leaves a published version above the clock.
    const uint64_t v = m.clock.load(std::memory_order_relaxed) + 1;
    m.clock.store(v, std::memory_order_relaxed);
    SHMDICT_CRASH_POINT(kClockBumped);
    WriteCopy(where.bucket, static_cast<uint32_t>(where.slot), key, value, v);
    return v;
  }
  // Absent: both buckets are locked. Take the one with more free slots, the left one
  // on a tie, and in it the key's home slot if it is free, else the next free slot
  // after it (cyclically).
  uint32_t free_masks[2];
  const uint64_t buckets[2] = {p.b1, p.b2};
  for (int k = 0; k < 2; ++k) {
    const BucketMeta& m = meta(buckets[k]);
    // Relaxed: only lock holders store tags, and we hold both locks.
    const uint64_t t0 = m.tags[0].load(std::memory_order_relaxed);
    const uint64_t t1 = m.tags[1].load(std::memory_order_relaxed);
    free_masks[k] = MatchTags(t0, t1, 0);
  }
  const int free0 = __builtin_popcount(free_masks[0]);
  const int free1 = __builtin_popcount(free_masks[1]);
  if (free0 == 0 && free1 == 0) {
    return Err(ErrorCode::kFull,
               absl::StrCat("table full: both candidate buckets of the key are full "
                            "(capacity ",
                            layout_.capacity, ")"));
  }
  const int k = free0 >= free1 ? 0 : 1;
  const uint64_t b = buckets[k];
  const uint32_t i = FirstFreeFrom(free_masks[k], p.home);
  // Relaxed: the clocks are read and written only under the bucket locks (see above).
  // The new version is above every version the key ever had: those were given out
  // from these two clocks, which never go back.
  const uint64_t v = std::max(meta(p.b1).clock.load(std::memory_order_relaxed),
                              meta(p.b2).clock.load(std::memory_order_relaxed)) +
                     1;
  meta(b).clock.store(v, std::memory_order_relaxed);
  SHMDICT_CRASH_POINT(kClockBumped);
  SetTag(b, i, p.tag);  // the slot is still empty: readers find "absent"
  SHMDICT_CRASH_POINT(kTagPublished);
  WriteCopy(b, i, key, value, v);  // the commit point
  where.bucket = b;
  where.slot = static_cast<int>(i);
  return v;
}

absl::StatusOr<uint64_t> Table::Write(WriteMode mode, std::string_view key,
                                      std::string_view value, uint64_t expected_version) {
  if (absl::Status s = CheckWritable(key, value); !s.ok()) return s;
  const Probe p = ProbeFor(key);
  BucketLock locks(this);
  Location where = LocateAndLock(p, key, locks);
  absl::StatusOr<uint64_t> v = WriteLocked(p, where, mode, key, value, expected_version);
  if (v.ok()) NotifyChange(p.b1);
  return v;
}

absl::Status Table::Erase(std::string_view key) {
  if (absl::Status s = CheckWritable(key, {}); !s.ok()) return s;
  const Probe p = ProbeFor(key);
  BucketLock locks(this);
  Location where = LocateAndLock(p, key, locks);
  if (where.slot < 0) return Err(ErrorCode::kNotFound, "key not found");
  const uint32_t i = static_cast<uint32_t>(where.slot);
  WriteEmptyCopy(where.bucket, i);  // the commit point
  SetTag(where.bucket, i, 0);
  SHMDICT_CRASH_POINT(kTagCleared);
  NotifyChange(p.b1);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Table::FetchAdd(std::string_view key, int64_t delta,
                                        uint64_t* version) {
  if (absl::Status s = CheckWritable(key, {}); !s.ok()) return s;
  if (layout_.max_value_size < 8) {
    return Err(ErrorCode::kTooBig, "values of this table are shorter than 8 bytes");
  }
  const Probe p = ProbeFor(key);
  BucketLock locks(this);
  Location where = LocateAndLock(p, key, locks);
  uint64_t old_value = 0;
  if (where.slot >= 0) {
    // Relaxed: stable under the lock.
    const uint64_t s =
        Seq(slot_seq(where.bucket, where.slot)).load(std::memory_order_relaxed);
    const uint64_t* c = copy_words(where.bucket, where.slot, s);
    const uint32_t vlen = static_cast<uint32_t>(LoadWord(c + 1) >> 32);
    if (vlen != 8) {
      return Err(ErrorCode::kType,
                 absl::StrCat("value is ", vlen, " bytes long, not an 8-byte integer"));
    }
    CopyFromWords(reinterpret_cast<char*>(&old_value), c + kCopyHeaderWords + layout_.key_words,
                  8);
  }
  // Values are little-endian; this build runs only where that is native (the
  // header's endianness mark is checked at open).
  const uint64_t new_value = old_value + static_cast<uint64_t>(delta);
  char bytes[8];
  std::memcpy(bytes, &new_value, 8);
  absl::StatusOr<uint64_t> v =
      WriteLocked(p, where, WriteMode::kPut, key, std::string_view(bytes, 8), 0);
  if (!v.ok()) return v.status();
  NotifyChange(p.b1);
  if (version != nullptr) *version = *v;
  return static_cast<int64_t>(new_value);
}

// ---------------------------------------------------------------------------------
// Scans

// Reads slot (b, i) as one snapshot. Returns false if it is empty or corrupt.
bool Table::SnapshotSlot(uint64_t b, uint32_t i, std::string* key, std::string* value,
                         uint64_t* version) const {
  uint64_t* seq = slot_seq(b, i);
  for (;;) {
    // Acquire, fence and validation: exactly as in Lookup.
    const uint64_t s1 = Seq(seq).load(std::memory_order_acquire);
    const uint64_t* c = copy_words(b, i, s1);
    const uint64_t w1 = LoadWord(c + 1);
    const uint32_t klp1 = static_cast<uint32_t>(w1);
    const uint32_t vlen = static_cast<uint32_t>(w1 >> 32);
    bool ok = false;
    if (klp1 != 0 && klp1 - 1 <= layout_.max_key_size && vlen <= layout_.max_value_size) {
      if (key != nullptr) {
        key->resize(klp1 - 1);
        CopyFromWords(key->data(), c + kCopyHeaderWords, klp1 - 1);
      }
      if (value != nullptr) {
        value->resize(vlen);
        CopyFromWords(value->data(), c + kCopyHeaderWords + layout_.key_words, vlen);
      }
      if (version != nullptr) *version = LoadWord(c);
      ok = true;
    }
    ReaderAcquireFence();  // as in Lookup
    const uint64_t s2 = Seq(seq).load(kTsanBuild ? std::memory_order_acquire
                                                 : std::memory_order_relaxed);
    if (s2 - s1 <= 2 - (s1 & 1)) return ok;  // s2 <= (s1 | 1) + 1 without wrapping
  }
}

uint64_t Table::Count() const {
  uint64_t n = 0;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const BucketMeta& m = meta(b);
    // Acquire: as in Lookup.
    const uint64_t t0 = m.tags[0].load(std::memory_order_acquire);
    const uint64_t t1 = m.tags[1].load(std::memory_order_acquire);
    if ((t0 | t1) == 0) continue;
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      if (TagByte(t0, t1, i) == 0) continue;
      if (SnapshotSlot(b, i, nullptr, nullptr, nullptr)) ++n;
    }
  }
  return n;
}

void Table::ForEach(absl::FunctionRef<bool(std::string_view, std::string_view, uint64_t)> fn)
    const {
  std::string key, value;
  uint64_t version = 0;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const BucketMeta& m = meta(b);
    // Acquire: as in Lookup.
    const uint64_t t0 = m.tags[0].load(std::memory_order_acquire);
    const uint64_t t1 = m.tags[1].load(std::memory_order_acquire);
    if ((t0 | t1) == 0) continue;
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      if (TagByte(t0, t1, i) == 0) continue;
      if (!SnapshotSlot(b, i, &key, &value, &version)) continue;
      if (!fn(key, value, version)) return;
    }
  }
}

TableStats Table::Stats() const {
  TableStats st;
  st.capacity = layout_.capacity;
  st.bucket_count = layout_.bucket_count;
  st.slot_count = layout_.bucket_count * kSlotsPerBucket;
  st.count = Count();
  st.max_key_size = layout_.max_key_size;
  st.max_value_size = layout_.max_value_size;
  st.file_size = layout_.file_size;
  // Relaxed: a statistic.
  st.recoveries = reinterpret_cast<const FileHeader*>(base_)->live.recoveries.load(
      std::memory_order_relaxed);
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t idx = 0; idx < kProcEntries; ++idx) {
    // Relaxed: a statistic; an entry never claimed has incarnation 0.
    if (procs[idx].incarnation.load(std::memory_order_relaxed) == 0) continue;
    if (static_cast<int32_t>(idx) == proc_index_) {
      ++st.live_processes;
      continue;
    }
    struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
    if (fcntl(fd_, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) ++st.live_processes;
  }
  st.process_index = proc_index_;
  return st;
}

std::vector<ProcessInfo> Table::Processes() const {
  std::vector<ProcessInfo> out;
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t idx = 0; idx < kProcEntries; ++idx) {
    // Relaxed (all four loads): a report; nothing is derived from the values but the
    // listing. An entry never claimed has incarnation 0.
    const uint32_t inc = procs[idx].incarnation.load(std::memory_order_relaxed);
    if (inc == 0) continue;
    ProcessInfo p;
    p.index = idx;
    p.incarnation = inc;
    p.pid = procs[idx].pid.load(std::memory_order_relaxed);
    p.claimed_unix_ns = procs[idx].claimed_unix_ns.load(std::memory_order_relaxed);
    p.self = static_cast<int32_t>(idx) == proc_index_;
    p.live = p.self || !HolderIsDead((uint64_t{idx} + 1) << 32 | inc);
    out.push_back(p);
  }
  return out;
}

std::array<uint64_t, kSlotsPerBucket + 1> Table::BucketFill() const {
  std::array<uint64_t, kSlotsPerBucket + 1> fill{};
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const BucketMeta& m = meta(b);
    // Relaxed: a statistic; a tag is set before its slot's contents are written and
    // cleared after they are erased, so a tag counts a slot that is or is about to be
    // occupied.
    const uint64_t t0 = m.tags[0].load(std::memory_order_relaxed);
    const uint64_t t1 = m.tags[1].load(std::memory_order_relaxed);
    uint32_t n = 0;
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) n += TagByte(t0, t1, i) != 0;
    ++fill[n];
  }
  return fill;
}

// ---------------------------------------------------------------------------------
// Verify and repair

absl::StatusOr<uint64_t> Table::RepairDeadLocks() {
  if (absl::Status s = CheckWritable({}, {}); !s.ok()) return s;
  uint64_t repaired = 0;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    std::atomic<uint64_t>& lock = meta(b).lock;
    // Relaxed: a hint; the CAS below synchronizes.
    uint64_t cur = lock.load(std::memory_order_relaxed);
    if (cur == 0 || !HolderIsDead(cur)) continue;
    // As in LockBucket: acq_rel, and only if the dead holder's word is still there.
    if (!lock.compare_exchange_strong(cur, lock_word_, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
      continue;  // someone else took it over meanwhile
    }
    SHMDICT_CRASH_POINT(kRecoveryLockTaken);
    RecoverBucket(b);
    UnlockBucket(b);
    ++repaired;
  }
  return repaired;
}

VerifyReport Table::Verify() const {
  VerifyReport r;
  auto damage = [&r](std::string message) {
    ++r.damage;
    if (r.messages.size() < 100) r.messages.push_back(std::move(message));
  };
  const auto* header = reinterpret_cast<const FileHeader*>(base_);
  if (ChecksumOf(header->fixed) != header->checksum) {
    damage("header checksum mismatch");
  }
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t idx = 0; idx < kProcEntries; ++idx) {
    // Relaxed: a report; an entry never claimed has incarnation 0.
    const uint32_t inc = procs[idx].incarnation.load(std::memory_order_relaxed);
    if (inc == 0) continue;
    const uint64_t word = (uint64_t{idx} + 1) << 32 | inc;
    if (word == lock_word_ || !HolderIsDead(word)) {
      ++r.processes_live;
    } else {
      ++r.processes_dead;
    }
  }
  std::string key;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const BucketMeta& m = meta(b);
    // Acquire: pairs with the release store of the last unlock, so the bucket's
    // contents are those its last holder left.
    const uint64_t lock_before = m.lock.load(std::memory_order_acquire);
    bool pending = false;
    if (lock_before != 0) {
      if (!HolderIsDead(lock_before)) {
        ++r.buckets_busy;
        continue;
      }
      pending = true;
      ++r.dead_locks;
    }
    ++r.buckets_checked;
    // Acquire: as in Lookup.
    const uint64_t t0 = m.tags[0].load(std::memory_order_acquire);
    const uint64_t t1 = m.tags[1].load(std::memory_order_acquire);
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      const uint8_t tag = TagByte(t0, t1, i);
      // Acquire: pairs with the writers' release stores of the sequence.
      const uint64_t s = Seq(slot_seq(b, i)).load(std::memory_order_acquire);
      if ((s & 1) != 0) {
        if (pending) {
          ++r.odd_slots;
        } else {
          damage(absl::StrCat("bucket ", b, " slot ", i, ": odd sequence ", s,
                              " with no writer holding the lock"));
        }
      }
      const uint64_t* c = copy_words(b, i, s & ~uint64_t{1});
      const uint64_t w1 = LoadWord(c + 1);
      const uint32_t klp1 = static_cast<uint32_t>(w1);
      const uint32_t vlen = static_cast<uint32_t>(w1 >> 32);
      if (klp1 == 0) {
        if (w1 != 0) damage(absl::StrCat("bucket ", b, " slot ", i, ": empty copy with a length"));
        if (tag != 0) {
          if (pending) {
            ++r.orphan_tags;
          } else {
            damage(absl::StrCat("bucket ", b, " slot ", i, ": tag on an empty slot"));
          }
        }
        continue;
      }
      if (tag == 0) {
        damage(absl::StrCat("bucket ", b, " slot ", i, ": entry without a tag"));
        continue;
      }
      if (klp1 - 1 > layout_.max_key_size || vlen > layout_.max_value_size) {
        damage(absl::StrCat("bucket ", b, " slot ", i, ": lengths over the maxima (key ",
                            klp1 - 1, ", value ", vlen, ")"));
        continue;
      }
      key.resize(klp1 - 1);
      CopyFromWords(key.data(), c + kCopyHeaderWords, klp1 - 1);
      if (const size_t tail = key.size() % 8; tail != 0) {
        // Writers zero the bytes after the key in its last word (CopyToWords).
        const uint64_t last = LoadWord(c + kCopyHeaderWords + key.size() / 8);
        if ((last & ~TailMask(tail)) != 0) {
          damage(absl::StrCat("bucket ", b, " slot ", i,
                              ": nonzero bytes after the key in its last word"));
        }
      }
      const Probe p = ProbeFor(key);
      if (p.b1 != b && p.b2 != b) {
        damage(absl::StrCat("bucket ", b, " slot ", i, ": key belongs in buckets ", p.b1,
                            " and ", p.b2));
        continue;
      }
      if (p.tag != tag) {
        damage(absl::StrCat("bucket ", b, " slot ", i, ": tag ", tag, " but the key's is ",
                            p.tag));
      }
      if (LoadWord(c) == 0) {
        damage(absl::StrCat("bucket ", b, " slot ", i, ": entry with version 0"));
      }
      // Duplicates: the key must not also be in its other bucket, nor earlier here.
      const uint64_t other = p.b1 == b ? p.b2 : p.b1;
      const uint64_t want = uint64_t{key.size()} + 1;
      for (const uint64_t ob : {b, other}) {
        for (uint32_t j = 0; j < kSlotsPerBucket; ++j) {
          if (ob == b && j == i) continue;
          const uint64_t os = Seq(slot_seq(ob, j)).load(std::memory_order_acquire);
          const uint64_t* oc = copy_words(ob, j, os & ~uint64_t{1});
          if ((LoadWord(oc + 1) & 0xFFFFFFFFu) == want &&
              WordsEqual(oc + kCopyHeaderWords, key.data(), key.size()) &&
              (ob == b ? j > i : ob > b)) {
            damage(absl::StrCat("bucket ", b, " slot ", i, ": key also in bucket ", ob,
                                " slot ", j));
          }
        }
      }
      ++r.entries;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------
// Files: creating, opening, validating

absl::StatusOr<std::string> Table::ResolvePath(std::string_view path) {
  if (path.empty()) return Err(ErrorCode::kInvalid, "empty path");
  if (path.find('\0') != std::string_view::npos) {
    return Err(ErrorCode::kInvalid, "path contains a NUL byte");
  }
  if (path.size() >= 4096) return Err(ErrorCode::kInvalid, "path too long");
  if (path.find('/') != std::string_view::npos) return std::string(path);
  if (path == "." || path == "..") {
    return Err(ErrorCode::kInvalid, absl::StrCat("'", AV(path), "' is not a table name"));
  }
  return absl::StrCat("/dev/shm/", AV(path));
}

namespace {

// Creates the file complete under a temporary name and links it into place, so that
// no process ever sees a half-initialized table. Returns the open descriptor, or
// kExists when `path` appeared meanwhile.
absl::StatusOr<int> CreateTableFile(const std::string& path, const Layout& layout,
                                    uint32_t mode) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) nonce = NowUnixNs();
  const std::string tmp =
      absl::StrCat(dir, ".", base, ".creating.", getpid(), ".", nonce % 1000000007);
  const int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM || err == EROFS) {
      return Err(ErrorCode::kPermission,
                 absl::StrCat("cannot create a file in ", dir, ": ", strerror(err)));
    }
    if (err == ENOENT || err == ENOTDIR) {
      return Err(ErrorCode::kNotFound, absl::StrCat("directory ", dir, " does not exist"));
    }
    return ErrnoError(absl::StrCat("creating ", tmp), err);
  }
  auto fail = [&](absl::Status s) -> absl::StatusOr<int> {
    unlink(tmp.c_str());
    close(fd);
    return s;
  };
  if (fchmod(fd, mode) != 0) return fail(ErrnoError("fchmod", errno));
  // Reserve every byte now: a full /dev/shm is an error here, not a SIGBUS later.
  if (const int err = posix_fallocate(fd, 0, static_cast<off_t>(layout.file_size));
      err != 0) {
    if (err == ENOSPC) {
      return fail(MakeOsError(absl::StrCat("not enough space in ", dir, " for a table of ",
                                           layout.file_size, " bytes"),
                              ENOSPC));
    }
    return fail(ErrnoError("reserving space", err));
  }
  FileHeader* h = new FileHeader();
  std::memset(static_cast<void*>(h), 0, sizeof(*h));
  ImmutableHeader& f = h->fixed;
  std::memcpy(f.magic, kMagic, sizeof(kMagic));
  f.format_version = kFormatVersion;
  f.endian_mark = kEndianMark;
  f.header_size = kHeaderSize;
  f.hash_algorithm = kHashXxh3_64;
  if (getrandom(&f.hash_seed, sizeof(f.hash_seed), 0) != sizeof(f.hash_seed)) {
    f.hash_seed = XXH3_64bits_withSeed(&nonce, sizeof(nonce), NowUnixNs());
  }
  f.capacity = layout.capacity;
  f.bucket_count = layout.bucket_count;
  f.slots_per_bucket = kSlotsPerBucket;
  f.max_key_size = layout.max_key_size;
  f.max_value_size = layout.max_value_size;
  f.copy_stride = layout.copy_stride;
  f.slot_stride = layout.slot_stride;
  f.bucket_stride = layout.bucket_stride;
  f.proc_entries = kProcEntries;
  f.proc_entry_size = sizeof(ProcEntry);
  f.proc_table_offset = layout.proc_table_offset;
  f.buckets_offset = layout.buckets_offset;
  f.file_size = layout.file_size;
  f.created_unix_ns = NowUnixNs();
  f.creator_pid = static_cast<uint32_t>(getpid());
  f.creator_uid = static_cast<uint32_t>(geteuid());
  h->checksum = ChecksumOf(f);
  const ssize_t written = pwrite(fd, h, sizeof(*h), 0);
  delete h;
  if (written != static_cast<ssize_t>(sizeof(FileHeader))) {
    return fail(ErrnoError("writing the header", written < 0 ? errno : EIO));
  }
  if (link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    if (err == EEXIST) return fail(Err(ErrorCode::kExists, absl::StrCat(path, " exists")));
    return fail(ErrnoError(absl::StrCat("linking ", path), err));
  }
  unlink(tmp.c_str());
  return fd;
}

absl::Status OpenError(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return Err(ErrorCode::kNotFound, absl::StrCat("no table at ", path));
    case ELOOP:
      return Err(ErrorCode::kBadFile,
                 absl::StrCat(path, " is a symbolic link; shmdict does not follow links"));
    case EACCES:
    case EPERM:
    case EROFS:
      return Err(ErrorCode::kPermission, absl::StrCat(path, ": ", strerror(err)));
    case EISDIR:
      return Err(ErrorCode::kBadFile, absl::StrCat(path, " is a directory"));
    case ENXIO:
    case ENODEV:
      return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a regular file"));
    default:
      return ErrnoError(absl::StrCat("opening ", path), err);
  }
}

// Whether gid is this process's effective group or one of its supplementary groups.
bool InOurGroups(gid_t gid) {
  if (gid == getegid()) return true;
  const int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  const int m = getgroups(n, groups.data());
  return m > 0 && std::find(groups.begin(), groups.begin() + m, gid) != groups.begin() + m;
}

// Checks everything about an open file before it is mapped. On success fills *layout
// and *seed.
absl::Status ValidateFile(int fd, const std::string& path, const OpenParams& params,
                          Layout* layout, uint64_t* seed, struct stat* st) {
  if (fstat(fd, st) != 0) return ErrnoError(absl::StrCat("fstat ", path), errno);
  if (!S_ISREG(st->st_mode)) {
    return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a regular file"));
  }
  if ((st->st_mode & S_IWOTH) != 0) {
    return Err(ErrorCode::kPermission,
               absl::StrCat(path, " is world-writable; refusing to use it"));
  }
  if (!params.allow_group) {
    if ((st->st_mode & S_IWGRP) != 0) {
      return Err(ErrorCode::kPermission,
                 absl::StrCat(path, " is group-writable; refusing to use it without the "
                                    "allow-group option"));
    }
    if (st->st_uid != geteuid()) {
      return Err(ErrorCode::kPermission,
                 absl::StrCat(path, " is owned by uid ", st->st_uid, ", not by uid ",
                              geteuid(), "; refusing to use it without the allow-group "
                                         "option"));
    }
  } else if (st->st_uid != geteuid() && !InOurGroups(st->st_gid)) {
    // Sharing by group means sharing with the members of the file's group: a file of
    // another user whose group is not one of ours is not shared with us.
    return Err(ErrorCode::kPermission,
               absl::StrCat(path, " is owned by uid ", st->st_uid, " and group ",
                            st->st_gid, ", which is not one of this process's groups"));
  }
  const uint64_t size = static_cast<uint64_t>(st->st_size);
  if (size < sizeof(FileHeader)) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is ", size, " bytes long: too short for a shmdict "
                                                "header"));
  }
  FileHeader h;
  if (pread(fd, &h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h))) {
    return ErrnoError(absl::StrCat("reading the header of ", path), errno);
  }
  const ImmutableHeader& f = h.fixed;
  if (std::memcmp(f.magic, kMagic, sizeof(kMagic)) != 0) {
    return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a shmdict file (bad magic)"));
  }
  if (f.endian_mark != kEndianMark) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " was created on a machine of the other byte order"));
  }
  if (f.format_version != kFormatVersion) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " has format version ", f.format_version,
                            "; this build reads version ", kFormatVersion));
  }
  if (ChecksumOf(f) != h.checksum) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header checksum mismatch (the header is corrupt)"));
  }
  if (f.hash_algorithm != kHashXxh3_64 || f.header_size != kHeaderSize ||
      f.slots_per_bucket != kSlotsPerBucket || f.proc_entries != kProcEntries ||
      f.proc_entry_size != sizeof(ProcEntry)) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header names a hash, header size, bucket size or "
                                  "process table this build does not support"));
  }
  absl::StatusOr<Layout> l = ComputeLayout(f.capacity, f.max_key_size, f.max_value_size);
  if (!l.ok()) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header holds invalid parameters: ", l.status().message()));
  }
  if (l->bucket_count != f.bucket_count || l->copy_stride != f.copy_stride ||
      l->slot_stride != f.slot_stride || l->bucket_stride != f.bucket_stride ||
      l->proc_table_offset != f.proc_table_offset ||
      l->buckets_offset != f.buckets_offset || l->file_size != f.file_size) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header layout does not match its parameters"));
  }
  if (size != l->file_size) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is ", size, " bytes long; its layout needs ",
                            l->file_size, size < l->file_size ? " (truncated)" : ""));
  }
  if (params.create) {
    if ((params.capacity != 0 && params.capacity != f.capacity) ||
        (params.max_key_size != 0 && params.max_key_size != f.max_key_size) ||
        (params.max_value_size != 0 && params.max_value_size != f.max_value_size)) {
      return Err(ErrorCode::kInvalid,
                 absl::StrCat(path, " exists with capacity ", f.capacity,
                              ", max key size ", f.max_key_size, ", max value size ",
                              f.max_value_size, ", unlike the options given"));
    }
  }
  *layout = *l;
  *seed = f.hash_seed;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Table>> Table::Open(std::string_view path_arg,
                                                   const OpenParams& params) {
  absl::StatusOr<std::string> resolved = ResolvePath(path_arg);
  if (!resolved.ok()) return resolved.status();
  const std::string& path = *resolved;
  if (params.create && params.read_only) {
    return Err(ErrorCode::kInvalid, "create and read-only exclude each other");
  }
  if (params.exclusive && !params.create) {
    return Err(ErrorCode::kInvalid, "exclusive needs create");
  }
  // The layout to create; its error (say, capacity 0) only matters when the file is
  // absent: opening an existing table with create and zero fields is fine.
  absl::StatusOr<Layout> wanted = absl::InternalError("unused");
  if (params.create) {
    wanted = ComputeLayout(params.capacity, params.max_key_size, params.max_value_size);
    if ((params.mode & ~0777u) != 0) {
      return Err(ErrorCode::kInvalid, absl::StrCat("mode 0", absl::Hex(params.mode),
                                                   " has bits outside 0777"));
    }
    if ((params.mode & 0002) != 0) {
      return Err(ErrorCode::kInvalid, "refusing to create a world-writable table");
    }
    if ((params.mode & 0020) != 0 && !params.allow_group) {
      return Err(ErrorCode::kInvalid,
                 "a group-writable mode needs the allow-group option");
    }
    if ((params.mode & 0600) != 0600) {
      return Err(ErrorCode::kInvalid, "mode must give the owner read and write access");
    }
  }
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = open(path.c_str(),
              (params.read_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                  O_NOCTTY);
    if (fd >= 0) {
      if (params.exclusive) {
        close(fd);
        return Err(ErrorCode::kExists, absl::StrCat(path, " exists"));
      }
      break;
    }
    const int err = errno;
    if (err != ENOENT || !params.create) return OpenError(path, err);
    if (!wanted.ok()) return wanted.status();
    absl::StatusOr<int> created = CreateTableFile(path, *wanted, params.mode);
    if (created.ok()) {
      fd = *created;
      break;
    }
    if (ErrorCodeOf(created.status()) != ErrorCode::kExists || params.exclusive ||
        attempt >= 8) {
      return created.status();
    }
    // Another process created it first: open theirs.
  }
  // Regular files ignore O_NONBLOCK; it only kept us from blocking on a FIFO.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  auto t = std::unique_ptr<Table>(new Table());
  t->fd_ = fd;  // closed by ~Table from here on
  t->path_ = path;
  t->read_only_ = params.read_only;
  struct stat st;
  if (absl::Status s = ValidateFile(fd, path, params, &t->layout_, &t->seed_, &st);
      !s.ok()) {
    return s;
  }
  // A sparse file (copied with `cp --sparse`, or extended with truncate) would raise
  // SIGBUS on the first write into a hole when the file system is full. Reserve the
  // holes now, so a full /dev/shm is an error here instead. Read-only handles cannot
  // (and need not: reading a hole gives zeros).
  if (!params.read_only &&
      static_cast<uint64_t>(st.st_blocks) * 512 < t->layout_.file_size) {
    if (const int err = posix_fallocate(fd, 0, static_cast<off_t>(t->layout_.file_size));
        err != 0) {
      return MakeOsError(absl::StrCat(path, " is sparse and reserving its ",
                                      t->layout_.file_size, " bytes failed: ",
                                      strerror(err)),
                         err);
    }
  }
  t->file_dev_ = static_cast<uint64_t>(st.st_dev);
  t->file_ino_ = static_cast<uint64_t>(st.st_ino);
  void* p = mmap(nullptr, t->layout_.file_size,
                 params.read_only ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError(absl::StrCat("mapping ", path), errno);
  t->base_ = static_cast<char*>(p);
  t->map_size_ = t->layout_.file_size;
  return t;
}

Table::~Table() {
  {
    std::lock_guard<std::mutex> guard(g_registry_mu);
    if (g_registry != nullptr) g_registry->erase(this);
  }
  if (base_ != nullptr) munmap(base_, map_size_);
  if (proc_fd_ >= 0) close(proc_fd_);  // releases our process-table entry
  if (fd_ >= 0) close(fd_);
}

absl::Status Table::Unlink(std::string_view path_arg) {
  absl::StatusOr<std::string> resolved = ResolvePath(path_arg);
  if (!resolved.ok()) return resolved.status();
  const std::string& path = *resolved;
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return OpenError(path, errno);
  struct stat st;
  char magic[sizeof(kMagic)];
  const bool is_table = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                        pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
                        std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
  close(fd);
  if (!is_table) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is not a shmdict file; not removing it"));
  }
  if (unlink(path.c_str()) != 0) {
    const int err = errno;
    if (err == ENOENT) return Err(ErrorCode::kNotFound, absl::StrCat("no table at ", path));
    if (err == EACCES || err == EPERM) {
      return Err(ErrorCode::kPermission, absl::StrCat(path, ": ", strerror(err)));
    }
    return ErrnoError(absl::StrCat("removing ", path), err);
  }
  return absl::OkStatus();
}

}  // namespace shmdict::internal
