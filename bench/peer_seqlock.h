// A naive shared-memory hash table with one seqlock per slot, as a store of the peer
// benchmark (bench/peer.h): the reference for what a lookup costs with nothing but
// the essentials, against which shmdict's crash safety and double buffering are
// measured. Independent of shmdict's engine (it shares no code with core/).
//
// The file in /dev/shm: a 4 KiB header (the table's shape and one writer lock), then a
// power of two of slots, at least 4/3 of the keys (load factor <= 0.75). A slot is
//
//   word 0       sequence: odd while a write is in progress, +2 per completed write
//   word 1       meta: state (bits 0-1: empty, live, erased) | key length << 8 |
//                value length << 32
//   key words    the key, zero-padded to whole words
//   value words  the value, zero-padded to whole words
//
// rounded up to whole 64-byte lines (16-byte keys, 64-byte values: 128 bytes, two
// lines, aligned to 128). A key lives in the first slot from its home (XXH3 of the
// key, modulo the slot count) that holds it, found by linear probing; erase leaves an
// erased slot (a tombstone) that probing passes and inserts reuse.
//
// Readers take no lock: they read a slot's sequence, its payload and the sequence
// again, and read the slot again if a write overlapped (a single copy: while a writer
// is in the slot, its readers wait). Writers take one spin lock for the whole table.
//
// LIMITATIONS (what shmdict is built not to have): a writer that dies holding the lock
// blocks every later writer forever, and one that dies mid-write leaves its slot's
// sequence odd, which blocks that slot's readers forever; there is no recovery, no
// validation of the file, no growth; one writer at a time for the whole table.
#ifndef SHMDICT_BENCH_PEER_SEQLOCK_H_
#define SHMDICT_BENCH_PEER_SEQLOCK_H_

#include <immintrin.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/optimization.h"
#include "bench/peer.h"
#include "bench/workload.h"

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include "xxhash.h"

namespace shmdict::bench {

// ThreadSanitizer neither models nor accepts standalone fences (GCC rejects them under
// -fsanitize=thread): TSan builds order every payload access instead (acquire loads,
// release stores), which is at least as strong. The timed builds use the fences.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kNaiveSeqlockFences = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kNaiveSeqlockFences = false;
#else
inline constexpr bool kNaiveSeqlockFences = true;
#endif
#else
inline constexpr bool kNaiveSeqlockFences = true;
#endif

class NaiveSeqlockPeer {
 public:
  static constexpr char kName[] = "naive_seqlock";
  static constexpr size_t kMaxKeyWords = 8;  // keys of up to 64 bytes

  // The file's first page. Written once at creation (before any other process maps
  // the file), except the lock word.
  struct Header {
    uint64_t magic;
    uint64_t slots;       // a power of two
    uint64_t slot_words;  // words per slot: a multiple of 8 (whole lines)
    uint64_t key_words;
    uint64_t value_size;  // the largest value, bytes
    // The writers' lock: 0 free, 1 held. Taken with an acquire exchange and released
    // with a release store, so each writer sees the previous writer's slot writes.
    std::atomic<uint32_t> writer_lock;
  };
  static constexpr uint64_t kMagic = 0x4b4345534c564e31;  // "1NVLSECK"
  static constexpr size_t kHeaderBytes = 4096;

  static std::unique_ptr<NaiveSeqlockPeer> Create(const PeerConfig& config);
  ~NaiveSeqlockPeer();

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
    uint64_t kw[kMaxKeyWords];
    const size_t nkw = KeyWords(key, kw);
    uint64_t i = XXH3_64bits(key.data(), key.size()) & mask_;
    for (uint64_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
      uint64_t* slot = Slot(i);
      while (true) {  // until one consistent read of this slot
        // Acquire: pairs with the commit (release) store of a writer; the payload
        // loads below see at least that write.
        const uint64_t s1 = Seq(slot).load(std::memory_order_acquire);
        if (ABSL_PREDICT_FALSE(s1 & 1)) {  // a write in progress: the only copy changes
          _mm_pause();
          continue;
        }
        const uint64_t meta = Load(slot + 1);
        const uint64_t state = meta & 3;
        const size_t value_len = meta >> 32;
        bool match = false;
        if (state == kLive && ((meta >> 8) & 0xFFFFFF) == key.size()) {
          match = true;
          for (size_t w = 0; w < nkw; ++w) match &= Load(slot + 2 + w) == kw[w];
          if (match && value_len <= capacity) CopyOut(buf, slot + 2 + key_words_, value_len);
        }
        // Pairs with the writer's release fence after its odd store: if any payload
        // word read above came from a write that began after s1, the load below sees
        // that write's odd sequence (or later).
        ReaderFence();
        // Relaxed: ordered after the payload loads by the fence above.
        if (ABSL_PREDICT_FALSE(Seq(slot).load(std::memory_order_relaxed) != s1)) continue;
        if (match) {
          if (ABSL_PREDICT_FALSE(value_len > capacity)) Die("naive_seqlock: value larger than the buffer");
          *len = value_len;
          return true;
        }
        if (state == kEmpty) return false;
        break;  // another key or an erased slot: the next slot
      }
    }
    return false;
  }

  void Put(std::string_view key, std::string_view value) { Write(key, value, kPut); }
  bool Insert(std::string_view key, std::string_view value) {
    return Write(key, value, kInsert);
  }
  bool Erase(std::string_view key) { return Write(key, std::string_view(), kErase); }
  void Load(const std::vector<uint64_t>& ids, ValueMaker& values);
  std::unique_ptr<NaiveSeqlockPeer> OpenAgain() const;

 private:
  enum State : uint64_t { kEmpty = 0, kLive = 1, kErased = 2 };
  enum WriteOp { kPut, kInsert, kErase };

  NaiveSeqlockPeer(char* base, size_t bytes, std::string path, bool owner);
  static std::unique_ptr<NaiveSeqlockPeer> Map(const std::string& path, bool owner);

  Header* header() const { return reinterpret_cast<Header*>(base_); }
  uint64_t* Slot(uint64_t i) const { return slots_ + i * slot_words_; }
  static std::atomic_ref<uint64_t> Seq(uint64_t* slot) { return std::atomic_ref<uint64_t>(*slot); }
  // Payload words are read and written as relaxed atomics (acquire and release under
  // TSan): a reader may race with a writer on them (it then discards what it read),
  // which on plain memory would be undefined behaviour. The sequence loads and stores
  // and the fences order them.
  static uint64_t Load(const uint64_t* p) {
    return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p))
        .load(kNaiveSeqlockFences ? std::memory_order_relaxed : std::memory_order_acquire);
  }
  static void Store(uint64_t* p, uint64_t v) {
    std::atomic_ref<uint64_t>(*p).store(
        v, kNaiveSeqlockFences ? std::memory_order_relaxed : std::memory_order_release);
  }
  // The reader's acquire fence, after its payload loads and before its second sequence
  // load; the writer's release fence, after its odd store and before its payload
  // stores. They pair with each other.
  static void ReaderFence() {
    if constexpr (kNaiveSeqlockFences) std::atomic_thread_fence(std::memory_order_acquire);
  }
  static void WriterFence() {
    if constexpr (kNaiveSeqlockFences) std::atomic_thread_fence(std::memory_order_release);
  }
  // The key's zero-padded words; dies on a key over the table's key size.
  size_t KeyWords(std::string_view key, uint64_t* kw) const {
    const size_t n = (key.size() + 7) / 8;
    if (ABSL_PREDICT_FALSE(n == 0 || n > key_words_)) {
      Die("naive_seqlock: a key must have 1 to " + std::to_string(8 * key_words_) + " bytes");
    }
    kw[n - 1] = 0;
    std::memcpy(kw, key.data(), key.size());
    return n;
  }
  static void CopyOut(char* dst, const uint64_t* src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t w = Load(src + i / 8);
      std::memcpy(dst + i, &w, 8);
    }
    if (i < n) {
      const uint64_t w = Load(src + i / 8);
      std::memcpy(dst + i, &w, n - i);
    }
  }
  bool Write(std::string_view key, std::string_view value, WriteOp op);
  void WriteSlot(uint64_t* slot, uint64_t meta, const uint64_t* kw, size_t nkw,
                 std::string_view value);

  char* base_;
  size_t bytes_;
  std::string path_;
  bool owner_;
  uint64_t* slots_;
  uint64_t mask_;
  uint64_t slot_words_;
  uint64_t key_words_;
  uint64_t value_size_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_SEQLOCK_H_
