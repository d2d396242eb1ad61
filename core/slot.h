// The slot protocol of core/table.h as named steps: the validated seqlock read, the
// seqlock write, the tag words, and the few computations on a bucket's bytes that
// every reader and writer makes. Every caller (the engine, the benchmarks' probes)
// goes through these helpers, so that each memory order is written down once, next
// to the reason for it.
//
// All helpers are force-inlined: they sit on the hot paths, and libshmdict.so (built
// position-independent) must inline them as the static library does.
//
// Thread safety / invariants (see core/table.h for the whole protocol):
//   - A slot's sequence word is even when the slot is stable; odd while a writer that
//     holds the bucket lock writes the spare copy. Copy (s >> 1) & 1 is the one
//     readers use; a write fills the other one and then adds 2.
//   - Readers never store and never wait; a snapshot is valid when no write *began*
//     on the copy it read (SlotReadValid).
//   - Only the holder of a bucket's lock stores its tags and its slots' sequences.
#ifndef SHMDICT_CORE_SLOT_H_
#define SHMDICT_CORE_SLOT_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "core/layout.h"
#include "core/words.h"

namespace shmdict::internal {

// Counts one seqlock read retry of this thread (ReadRetriesOfThisThread in table.h).
// Out of line: only the retry path, which is rare, calls it.
void NoteReadRetry();

// ---------------------------------------------------------------------------------
// Addresses

// The slot's sequence word, reached as an atomic (the slot's layout is computed at run
// time, so it is not a declared std::atomic member).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline std::atomic_ref<uint64_t> SeqWord(const uint64_t* seq) {
  return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(seq));
}

// The copy of the slot whose sequence word is at `seq` that sequence value `s` selects:
// copy (s >> 1) & 1 (copy_stride_words: the layout's copy stride in words).
template <typename Word>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Word* CopyAt(Word* seq, uint64_t s,
                                                 uint64_t copy_stride_words) {
  return seq + 1 + ((s >> 1) & 1) * copy_stride_words;
}

// The spare copy of a slot whose (even) sequence is `s`: the one a write fills.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t* SpareCopyAt(uint64_t* seq, uint64_t s,
                                                          uint64_t copy_stride_words) {
  return CopyAt(seq, s + 2, copy_stride_words);
}

// A copy's word 1: (key length + 1) | value length << 32; 0 in an empty copy.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t CopyLengths(uint64_t key_len, uint64_t value_len) {
  return (key_len + 1) | (value_len << 32);
}

// Whether the copy at `c`, whose word 1 the caller loaded as `w1`, holds `key`: the low
// half of word 1 is the key's length + 1, and the key's bytes follow the header.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool CopyKeyIs(const uint64_t* c, uint64_t w1,
                                                   std::string_view key) {
  return (w1 & 0xFFFFFFFFu) == uint64_t{key.size()} + 1 &&
         WordsEqual(c + kCopyHeaderWords, key.data(), key.size());
}

// The same, loading word 1.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool CopyHoldsKey(const uint64_t* c, std::string_view key) {
  return CopyKeyIs(c, LoadWord(c + 1), key);
}

// The value length of a copy whose word 1 is `w1`.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t CopyValueLength(uint64_t w1) {
  return static_cast<uint32_t>(w1 >> 32);
}

// ---------------------------------------------------------------------------------
// The validated read (no lock, no store, no wait)

// Step 1: the sequence. Acquire: pairs with the writers' release stores of the sequence
// (the begin store s+1, the commit store s+2 and a repairer's roll-forward s+3), so the
// copy that the returned value selects is fully visible.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t SlotReadBegin(const uint64_t* seq) {
  return SeqWord(seq).load(std::memory_order_acquire);
}

// Step 3, after copying words of the copy that s1 selects: whether that snapshot is
// valid. Acquire fence: pairs with the writer's release fence after its begin store
// (SlotWriteBegin): if any word read was stored by a write that began after s1, the
// load below sees that write's begin (or later). Under TSan the payload loads are
// acquire loads instead (core/words.h), and so is this load.
// Valid iff at most the write in progress at s1 finished and no later write began
// (only a later write touches the copy s1 selects): s2 <= (s1 | 1) + 1, computed
// without wrapping at 2^64 (a damaged file's sequence may sit there; (s1 | 1) + 1
// would be 0 and no snapshot would ever be valid).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool SlotReadValid(const uint64_t* seq, uint64_t s1) {
  ReaderAcquireFence();
  // Relaxed: ordered after the payload loads by the fence above.
  const uint64_t s2 = SeqWord(seq).load(kTsanBuild ? std::memory_order_acquire
                                                   : std::memory_order_relaxed);
  return s2 - s1 <= 2 - (s1 & 1);
}

// The whole validated read: calls read(copy) on the copy the sequence selects until the
// snapshot it took is valid, and returns read's last result. `read` copies what it
// needs into private memory (payload words through core/words.h) and may be called
// again after a torn snapshot.
template <typename Read>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline auto ReadSlot(const uint64_t* seq, uint64_t copy_stride_words,
                                                  Read&& read) {
  for (;;) {
    const uint64_t s1 = SlotReadBegin(seq);
    auto result = read(CopyAt(seq, s1, copy_stride_words));
    if (SlotReadValid(seq, s1)) return result;
    NoteReadRetry();  // torn: a write committed and the next began while we read
  }
}

// ---------------------------------------------------------------------------------
// The seqlock write (under the bucket lock)

// The sequence of a slot whose bucket lock we hold. Relaxed: only lock holders store
// sequences, and the lock's acquire CAS made the last holder's stores visible.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t SlotSeqLocked(const uint64_t* seq) {
  return SeqWord(seq).load(std::memory_order_relaxed);
}

inline void RollForwardSlot(uint64_t* seq, uint64_t s);

// Begins a write of the slot and returns its (even) sequence s; the spare copy
// (SpareCopyAt(seq, s)) may be written after it.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t SlotWriteBegin(uint64_t* seq) {
  // Relaxed: under the lock the sequence is ours; the lock's acquire made it visible.
  uint64_t s = SeqWord(seq).load(std::memory_order_relaxed);
  if (ABSL_PREDICT_FALSE((s & 1) != 0)) {
    // Odd under a lock we hold: no writer is in it, so damage made it (a dead writer's
    // odd slot is repaired when its lock is taken over). Writing on from s would make
    // s + 1 even and select the very copy this write fills, which readers would then
    // read torn. Roll it forward first, as recovery does.
    RollForwardSlot(seq, s);
    s += 3;
  }
  // Begin (odd). Release: a reader that acquires s + 1 reads copy (s >> 1) & 1, which
  // an earlier write (visible to us through the lock) filled; it must see it too.
  SeqWord(seq).store(s + 1, std::memory_order_release);
  // Release fence: orders the begin store before the payload stores that follow. Pairs
  // with the reader's acquire fence in SlotReadValid: a reader that saw any word
  // stored after it sees s + 1.
  WriterReleaseFence();
  return s;
}

// Commits the write begun at sequence s: the spare copy becomes current.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void SlotWriteCommit(uint64_t* seq, uint64_t s) {
  // Release: publishes the new copy to readers that acquire s + 2.
  SeqWord(seq).store(s + 2, std::memory_order_release);
}

// An odd sequence s (an interrupted write: its writer died, or damage) becomes s + 3:
// even, and selecting the copy that was current before that write; the half-written
// copy becomes the spare. Idempotent in effect: a second pass finds it even.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RollForwardSlot(uint64_t* seq, uint64_t s) {
  // Release: a reader that acquires s + 3 sees the copy it selects.
  SeqWord(seq).store(s + 3, std::memory_order_release);
}

// ---------------------------------------------------------------------------------
// Tags: byte i % 8 of word i / 8 of a bucket's tag words, 0 = free

// Bit i of the result is set iff byte i of `w` equals `tag` (exact, no false
// positives: the "has zero byte" test without borrow propagation).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t MatchBytes(uint64_t w, uint8_t tag) {
  constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7Full;
  const uint64_t x = w ^ (uint64_t{tag} * 0x0101010101010101ull);
  uint64_t y = (x & kLow7) + kLow7;
  y = ~(y | x | kLow7);  // 0x80 in each byte of x that is zero
  return static_cast<uint32_t>(((y >> 7) * 0x0102040810204080ull) >> 56);
}

// A bucket's two tag words, loaded together.
struct Tags {
  uint64_t w0;  // slots 0-7
  uint64_t w1;  // slots 8-15

  // Bit i is set iff slot i's tag is `tag`. One SSE2 byte compare where available.
  ABSL_ATTRIBUTE_ALWAYS_INLINE uint32_t Match(uint8_t tag) const {
#ifdef __SSE2__
    const __m128i tags = _mm_set_epi64x(static_cast<long long>(w1), static_cast<long long>(w0));
    return static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(tags, _mm_set1_epi8(static_cast<char>(tag)))));
#else
    return MatchBytes(w0, tag) | (MatchBytes(w1, tag) << 8);
#endif
  }
  // Bit i is set iff slot i is free (tag 0).
  ABSL_ATTRIBUTE_ALWAYS_INLINE uint32_t FreeMask() const { return Match(0); }
  ABSL_ATTRIBUTE_ALWAYS_INLINE uint8_t At(uint32_t i) const {
    return static_cast<uint8_t>((i < 8 ? w0 : w1) >> (8 * (i % 8)));
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool AllFree() const { return (w0 | w1) == 0; }
  ABSL_ATTRIBUTE_ALWAYS_INLINE uint32_t Occupied() const {
    return kSlotsPerBucket - static_cast<uint32_t>(__builtin_popcount(FreeMask()));
  }
};

// The tags as a lock-free reader loads them. Acquire: pairs with the release store in
// StoreTag. Tags are only hints; a slot's sequence is what publishes its contents.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Tags LoadTags(const BucketMeta& m) {
  return {m.tags[0].load(std::memory_order_acquire), m.tags[1].load(std::memory_order_acquire)};
}

// The tags of a bucket whose lock we hold. Relaxed: only lock holders store tags.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Tags LoadTagsLocked(const BucketMeta& m) {
  return {m.tags[0].load(std::memory_order_relaxed), m.tags[1].load(std::memory_order_relaxed)};
}

// The tags as a hint or a statistic (prefetching, fill counts): nothing read later
// depends on them. Relaxed: whoever acts on a slot reads the tags again (acquire) or
// validates through the slot's sequence.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Tags LoadTagsHint(const BucketMeta& m) {
  return {m.tags[0].load(std::memory_order_relaxed), m.tags[1].load(std::memory_order_relaxed)};
}

// Slot i's tag alone, as a filter (the home-slot read). Relaxed: a filter only; the tag
// scan that decides "absent" re-reads the tags with acquire.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint8_t TagHint(const BucketMeta& m, uint32_t i) {
  return static_cast<uint8_t>(m.tags[i / 8].load(std::memory_order_relaxed) >> (8 * (i % 8)));
}

// Slot i's tag in a bucket whose lock we hold. Relaxed: only lock holders store tags.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint8_t TagLocked(const BucketMeta& m, uint32_t i) {
  return static_cast<uint8_t>(m.tags[i / 8].load(std::memory_order_relaxed) >> (8 * (i % 8)));
}

// Sets slot i's tag (under the bucket lock).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void StoreTag(BucketMeta& m, uint32_t i, uint8_t tag) {
  std::atomic<uint64_t>& word = m.tags[i / 8];
  const int shift = 8 * static_cast<int>(i % 8);
  // Relaxed load: only lock holders store tags, and we hold the lock.
  uint64_t w = word.load(std::memory_order_relaxed);
  w = (w & ~(uint64_t{0xFF} << shift)) | (uint64_t{tag} << shift);
  // Release: pairs with the readers' acquire load of the tags (LoadTags).
  word.store(w, std::memory_order_release);
}

// The first set bit of the 16-bit `free_mask` at or after bit `from`, cyclically
// (free_mask != 0).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t FirstFreeFrom(uint32_t free_mask, uint32_t from) {
  const uint32_t rotated =
      ((free_mask >> from) | (free_mask << (kSlotsPerBucket - from))) & 0xFFFFu;
  return (from + static_cast<uint32_t>(__builtin_ctz(rotated))) % kSlotsPerBucket;
}

// ---------------------------------------------------------------------------------
// Prefetching

// Prefetches the lines that [p, p + min(bytes, 8 lines)) touches (long values: the
// rest streams). kWrite: fetch them for writing (exclusive), for lines the caller is
// about to store to.
template <bool kWrite = false>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void PrefetchLines(const void* p, uint64_t bytes) {
  const char* start = static_cast<const char*>(p);
  const char* first = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(start) &
                                                    ~uintptr_t{kCacheLine - 1});
  const char* end = start + std::min<uint64_t>(bytes, 8 * kCacheLine);
  for (const char* l = first; l < end; l += kCacheLine) __builtin_prefetch(l, kWrite ? 1 : 0);
}

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_SLOT_H_
