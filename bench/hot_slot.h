// The readers of the hot-slot test that count their own retries: a writer process
// rewrites one key nonstop while a reader reads that very key.
//
//   SingleCopySeqlock  the yardstick: one slot, one sequence word, one copy of the
//                      value. A reader retries while the sequence is odd (a write in
//                      progress) or changed during its copy.
//   ShmdictSlotProbe   reads one key's slot of a shmdict table with the slot protocol
//                      of core/table.h (a double-buffered seqlock: the reader copies
//                      the stable copy and retries only if a second write began on the
//                      copy it read), counting attempts and successes: a cross-check of
//                      the retries Dict::Get counts (internal::ReadRetriesOfThisThread),
//                      the same protocol on the same slot and file bytes
//                      (docs/file_format.md).
//
// The yardstick uses the payload helpers and fences of core/words.h; the probe uses the
// engine's own protocol steps (core/slot.h).
#ifndef SHMDICT_BENCH_HOT_SLOT_H_
#define SHMDICT_BENCH_HOT_SLOT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/layout.h"
#include "core/slot.h"
#include "core/table.h"
#include "core/words.h"

namespace shmdict::bench {

inline constexpr size_t kHotSlotValueSize = 64;

// Lives in shared anonymous memory, zero-initialized (sequence 0: stable, empty value).
struct alignas(internal::kCacheLine) SingleCopySeqlock {
  std::atomic<uint64_t> seq;
  uint64_t words[kHotSlotValueSize / 8];

  // One writer at a time. Begin: an odd sequence (release store, then the writer's
  // release fence: pairs with the reader's acquire fence, so a reader that saw any
  // new payload word sees an odd or newer sequence in its second load).
  void Write(const char* value) {
    // Relaxed: only this writer stores the sequence.
    const uint64_t s = seq.load(std::memory_order_relaxed);
    seq.store(s + 1, std::memory_order_release);
    internal::WriterReleaseFence();
    internal::CopyToWords(words, value, kHotSlotValueSize);
    // Commit: release, publishes the payload stores above to a reader whose first
    // (acquire) load sees s + 2.
    seq.store(s + 2, std::memory_order_release);
  }

  // One read attempt: true when `out` holds a consistent copy.
  bool TryRead(char* out) const {
    // Acquire: pairs with the commit store; the payload read after it is at least
    // that write's.
    const uint64_t s1 = seq.load(std::memory_order_acquire);
    if (s1 & 1) return false;  // a write in progress: the only copy is being changed
    internal::CopyFromWords(out, words, kHotSlotValueSize);
    internal::ReaderAcquireFence();
    // Pairs with the writer's release fence: unchanged means no write overlapped.
    return seq.load(std::memory_order_acquire) == s1;
  }
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

class ShmdictSlotProbe {
 public:
  // Finds `key`'s slot in `dict` (it must be present and stay in its slot: the
  // hot-slot writer only updates it). Returns false if it cannot be found.
  bool Attach(const Dict& dict, std::string_view key) {
    internal::Table* t = internal::TableOf(dict);
    const internal::Layout& l = t->layout();
    if (key.size() != 16 || l.max_value_size < kHotSlotValueSize) return false;
    copy_words_ = l.copy_stride / 8;
    key_words_ = l.key_words;
    std::memcpy(key_, key.data(), key.size());
    uint64_t buckets[2];
    t->BucketsOf(key, &buckets[0], &buckets[1]);
    for (uint64_t b : buckets) {
      for (uint32_t i = 0; i < internal::kSlotsPerBucket; ++i) {
        uint64_t* seq = reinterpret_cast<uint64_t*>(t->MappingForTesting() +
                                                    internal::SlotOffset(l, b, i));
        char value[kHotSlotValueSize];
        if (Read(seq, value) == kConsistent) {
          seq_ = seq;
          return true;
        }
      }
    }
    return false;
  }

  enum Outcome { kConsistent, kTorn, kOtherKey };
  // One read attempt of the key's slot: kConsistent when `out` holds a consistent copy
  // of the key's 64-byte value; kTorn when a write overlapped (the reader retries);
  // kOtherKey when the slot does not hold the key (never, while only updates run).
  Outcome Read(char* out) const { return Read(seq_, out); }

 private:
  Outcome Read(uint64_t* seq, char* out) const {
    // The stable copy: (s1 >> 1) & 1, also while a write (odd s1) is in progress.
    const uint64_t s1 = internal::SlotReadBegin(seq);
    const uint64_t* copy = internal::CopyAt(seq, s1, copy_words_);
    const uint64_t lengths = internal::LoadWord(copy + 1);
    char key[16];
    internal::CopyFromWords(key, copy + internal::kCopyHeaderWords, sizeof(key));
    internal::CopyFromWords(out, copy + internal::kCopyHeaderWords + key_words_,
                            kHotSlotValueSize);
    // Torn only if a second write began, on the copy just read.
    if (!internal::SlotReadValid(seq, s1)) return kTorn;
    const bool ours = lengths == internal::CopyLengths(16, kHotSlotValueSize) &&
                      std::memcmp(key, key_, sizeof(key)) == 0;
    return ours ? kConsistent : kOtherKey;
  }

  uint64_t* seq_ = nullptr;
  uint64_t copy_words_ = 0;
  uint64_t key_words_ = 0;
  char key_[16] = {};
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_HOT_SLOT_H_
