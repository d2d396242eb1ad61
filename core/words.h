// Payload access: the words of a slot's copies are read and written as atomics
// (std::atomic_ref), because readers copy them while a writer may be storing to the
// other copy or, rarely, to the same one; racing on plain memory would be undefined
// behaviour (Boehm 2012). Readers detect such a race afterwards through the slot's
// sequence word and retry; see core/table.h.
//
// Orderings. In normal builds payload accesses are relaxed and the slot protocol puts
// standalone fences around them (a release fence after a writer's begin store, an
// acquire fence before a reader's second sequence load). ThreadSanitizer does not model
// standalone fences, so TSan builds use acquire loads and release stores on every
// payload word instead, which gives at least the same guarantees; the fence version is
// what the model checker verifies.
#ifndef SHMDICT_CORE_WORDS_H_
#define SHMDICT_CORE_WORDS_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shmdict::internal {

#if defined(__SANITIZE_THREAD__)
#define SHMDICT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMDICT_TSAN 1
#endif
#endif

#ifdef SHMDICT_TSAN
inline constexpr bool kTsanBuild = true;
inline constexpr std::memory_order kPayloadLoad = std::memory_order_acquire;
inline constexpr std::memory_order kPayloadStore = std::memory_order_release;
#else
inline constexpr bool kTsanBuild = false;
inline constexpr std::memory_order kPayloadLoad = std::memory_order_relaxed;
inline constexpr std::memory_order kPayloadStore = std::memory_order_relaxed;
#endif

// The seqlock fences. Normal builds: real fences. TSan builds: nothing (TSan neither
// models nor accepts standalone fences); the acquire/release payload accesses above
// provide the same ordering there.
//
// Writer: after the begin store, before the payload stores. Pairs with
// ReaderAcquireFence: a reader that read any payload word stored after this fence
// sees the begin store (or later) in its second sequence load.
inline void WriterReleaseFence() {
#ifndef SHMDICT_TSAN
  std::atomic_thread_fence(std::memory_order_release);
#endif
}

// Reader: after the payload loads, before the second sequence load. Pairs with
// WriterReleaseFence.
inline void ReaderAcquireFence() {
#ifndef SHMDICT_TSAN
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

// Payload loads: relaxed (acquire under TSan). Validity is established afterwards by
// the reader's acquire fence and second sequence load (SlotReadValid in core/slot.h).
inline uint64_t LoadWord(const uint64_t* p) {
  return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p)).load(kPayloadLoad);
}

// Payload stores: relaxed (release under TSan). Ordered after the writer's begin store
// by its release fence, and before its commit by the commit's release store.
inline void StoreWord(uint64_t* p, uint64_t v) {
  std::atomic_ref<uint64_t>(*p).store(v, kPayloadStore);
}

// Copies `n` bytes out of payload words into ordinary memory. Always inlined: it is
// the bulk of a read, and a call costs as much as copying a small value.
__attribute__((always_inline)) inline void CopyFromWords(char* dst, const uint64_t* src, size_t n) {
  size_t i = 0;
  // Four words per round: independent loads, and a quarter of the loop overhead.
  for (; i + 32 <= n; i += 32) {
    const uint64_t w0 = LoadWord(src + i / 8);
    const uint64_t w1 = LoadWord(src + i / 8 + 1);
    const uint64_t w2 = LoadWord(src + i / 8 + 2);
    const uint64_t w3 = LoadWord(src + i / 8 + 3);
    std::memcpy(dst + i, &w0, 8);
    std::memcpy(dst + i + 8, &w1, 8);
    std::memcpy(dst + i + 16, &w2, 8);
    std::memcpy(dst + i + 24, &w3, 8);
  }
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = LoadWord(src + i / 8);
    std::memcpy(dst + i, &w, 8);
  }
  if (i < n) {
    const uint64_t w = LoadWord(src + i / 8);
    std::memcpy(dst + i, &w, n - i);
  }
}

// Stores `n` bytes of ordinary memory into payload words; the tail of the last word
// is zero-filled so that a copy's padding never holds stale bytes.
inline void CopyToWords(uint64_t* dst, const char* src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, src + i, 8);
    StoreWord(dst + i / 8, w);
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, src + i, n - i);
    StoreWord(dst + i / 8, w);
  }
}

// The bits of a word that hold its first `k` bytes in memory (0 < k < 8).
inline uint64_t TailMask(size_t k) {
  if constexpr (std::endian::native == std::endian::little) {
    return ~uint64_t{0} >> (8 * (8 - k));
  } else {
    return ~uint64_t{0} << (8 * (8 - k));
  }
}

// Compares `n` bytes of payload words with ordinary memory.
inline bool WordsEqual(const uint64_t* words, const char* bytes, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes + i, 8);
    if (LoadWord(words + i / 8) != w) return false;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, bytes + i, n - i);
    // Only the key's bytes of the last word compare. Writers zero the rest
    // (CopyToWords), but a damaged file may not have: its entry must still be found
    // (Verify reports the padding as damage).
    const uint64_t mask = TailMask(n - i);
    if ((LoadWord(words + i / 8) & mask) != w) return false;
  }
  return true;
}

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_WORDS_H_
