// The bytes of a shmdict file: the structs that live in the mapping, the constants of
// format version 2, and the computation of a table's layout from its parameters.
// docs/file_format.md specifies the same bytes in prose.
//
// Cross-process atomics: the structs below hold std::atomic members that several
// processes access through their own mappings of one file. The C++ standard does not
// promise that this works; the platform does: on Linux with GCC or Clang, 4- and
// 8-byte atomics are lock-free and address-free (they are plain instructions on the
// memory itself, with no hidden lock or process-local state), which the static_asserts
// below check. Payload bytes are plain words reached through std::atomic_ref.
#ifndef SHMDICT_CORE_LAYOUT_H_
#define SHMDICT_CORE_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/status/statusor.h"

namespace shmdict::internal {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shmdict needs lock-free 64-bit atomics to share them across processes");
static_assert(std::atomic<uint32_t>::is_always_lock_free,
              "shmdict needs lock-free 32-bit atomics to share them across processes");
static_assert(sizeof(std::atomic<uint64_t>) == 8 && alignof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(std::atomic<uint32_t>) == 4 && alignof(std::atomic<uint32_t>) == 4);

inline constexpr char kMagic[8] = {'S', 'H', 'M', 'D', 'I', 'C', 'T', '1'};
// Version 2 added each copy's expiry (word 2) and the table's eviction policy. Version 1
// files are refused with the way forward (file.cc).
inline constexpr uint32_t kFormatVersion = 2;
// Written as a native uint32_t; reads back as this value only on a machine of the same
// byte order as the creator's.
inline constexpr uint32_t kEndianMark = 0x01020304;
inline constexpr uint32_t kHashXxh3_64 = 1;
// ImmutableHeader::eviction: what a write of an absent key does when both of its
// candidate buckets are full of unexpired entries. kEvictNone: fail with kFull.
// kEvictLrs: erase the entry of the lowest version among the two buckets (least
// recently stored; see core/table.h) and take its slot.
inline constexpr uint32_t kEvictNone = 0;
inline constexpr uint32_t kEvictLrs = 1;

inline constexpr size_t kCacheLine = 64;
inline constexpr size_t kHeaderSize = 4096;
inline constexpr uint32_t kSlotsPerBucket = 16;
inline constexpr uint32_t kProcEntries = 1024;

// Limits of the parameters a table can be created with.
inline constexpr uint64_t kMaxCapacity = uint64_t{1} << 36;
inline constexpr uint32_t kMaxKeySizeLimit = 64 * 1024;
inline constexpr uint32_t kMaxValueSizeLimit = 64 * 1024 * 1024;
inline constexpr uint64_t kMaxFileSize = uint64_t{1} << 44;  // 16 TiB
// The table is sized so that `capacity` keys fill at most 80% of the slots
// (ComputeLayout). With two candidate buckets of 16 slots, the first "full" comes at
// about 88% (1M keys) to 90% (20K keys) (see docs/design.md), so `capacity` keys fit
// with room to spare.

// The header's immutable part, covered by `checksum`. Written once at creation, before
// the file gets its name; never changed afterwards.
struct ImmutableHeader {
  char magic[8];
  uint32_t format_version;
  uint32_t endian_mark;
  uint32_t header_size;
  uint32_t hash_algorithm;
  uint64_t hash_seed;
  uint64_t capacity;  // as requested at creation
  uint64_t bucket_count;
  uint32_t slots_per_bucket;
  uint32_t max_key_size;
  uint32_t max_value_size;
  uint32_t copy_stride;
  uint32_t slot_stride;
  uint32_t bucket_stride;
  uint32_t proc_entries;
  uint32_t proc_entry_size;
  uint64_t proc_table_offset;
  uint64_t buckets_offset;
  uint64_t file_size;
  uint64_t created_unix_ns;
  uint32_t creator_pid;
  uint32_t creator_uid;
  uint32_t eviction;  // kEvictNone or kEvictLrs, chosen at creation
  uint8_t reserved[68];
};
static_assert(sizeof(ImmutableHeader) == 192);
static_assert(std::is_trivially_copyable_v<ImmutableHeader>);
static_assert(std::is_standard_layout_v<ImmutableHeader>);

// The mutable part of the header: statistics only, never needed for correctness.
struct alignas(kCacheLine) MutableHeader {
  // Bucket recoveries performed after a writer died holding the bucket's lock. Bumped
  // with a relaxed fetch_add by the recovering writer: it publishes nothing else.
  std::atomic<uint64_t> recoveries;
  uint8_t reserved[kCacheLine - 8];
};
static_assert(sizeof(MutableHeader) == kCacheLine);
static_assert(std::is_standard_layout_v<MutableHeader>);

struct FileHeader {
  ImmutableHeader fixed;
  uint64_t checksum;  // XXH3-64 with seed 0 of the 192 bytes of `fixed`
  uint8_t pad0[kCacheLine - 8];
  MutableHeader live;  // offset 256
  uint8_t pad1[kHeaderSize - 256 - sizeof(MutableHeader)];
};
static_assert(sizeof(FileHeader) == kHeaderSize);
static_assert(offsetof(FileHeader, checksum) == 192);
static_assert(offsetof(FileHeader, live) == 256);
static_assert(std::is_standard_layout_v<FileHeader>);

// One entry of the process table. A process that opens the table for writing claims
// an entry by taking an open-file-description write lock (F_OFD_SETLK) on the entry's
// first byte of the file, and holds it while the table is open: the kernel drops it
// when the process dies, so "is entry i's owner alive" is an F_OFD_GETLK away.
struct alignas(kCacheLine) ProcEntry {
  // Bumped (fetch_add, release) by each new claimant right after it has taken the
  // byte lock, before it takes any bucket lock; bucket lock words carry it, so a lock
  // word names one claim of the entry, not the entry.
  std::atomic<uint32_t> incarnation;
  // Informational (stats, verify): the claimant's pid. Relaxed: nothing depends on it.
  std::atomic<uint32_t> pid;
  std::atomic<uint64_t> claimed_unix_ns;
  // Statistics of the writes made through this entry, over all its claimants: entries
  // evicted (unexpired, kEvictLrs) and expired entries erased (by writers that needed
  // their slots, and by sweeps). Only the entry's claimant adds to them (relaxed: they
  // publish nothing); Stats sums them over the table.
  std::atomic<uint64_t> evictions;
  std::atomic<uint64_t> expired_erased;
  uint8_t reserved[kCacheLine - 32];
};
static_assert(sizeof(ProcEntry) == kCacheLine);
static_assert(std::is_standard_layout_v<ProcEntry>);

// The first cache line of every bucket. Slot i's tag is byte (i % 8) of tags[i / 8]
// (little-endian), 0 meaning the slot is free.
struct alignas(kCacheLine) BucketMeta {
  // 0: free. Otherwise (process-table index + 1) << 32 | incarnation of the holder.
  std::atomic<uint64_t> lock;
  // The bucket's version clock: every version ever given to a key stored in this
  // bucket is <= clock. Read and written only under the bucket lock.
  std::atomic<uint64_t> clock;
  std::atomic<uint64_t> tags[2];
  // Change notification, a futex word (shared, not private: waiters and writers are
  // different processes). Every write of a key whose LEFT bucket this is adds 2 after
  // its commit; bit 0 is set by a waiter before it sleeps, and a writer that finds it
  // set clears it and wakes all sleepers.
  std::atomic<uint32_t> change_seq;
  uint32_t reserved32;
  uint64_t reserved[3];
};
static_assert(sizeof(BucketMeta) == kCacheLine);
static_assert(std::is_standard_layout_v<BucketMeta>);
static_assert(kSlotsPerBucket == 8 * (sizeof(BucketMeta::tags) / sizeof(uint64_t)));

// A slot is a sequence word followed by two copies. A copy is a run of 8-byte words:
//   word 0: version (0 in an empty copy)
//   word 1: (key length + 1) | value length << 32  (0: empty copy, no key)
//   word 2: expiry, milliseconds since the Unix epoch; 0: never expires (0 in an
//           empty copy). An entry whose expiry is <= the coarse real-time clock
//           (core/clock.h) reads as absent.
//   words 3 .. 3 + key_words: the key area (max key size rounded up to 8 bytes)
//   then value_words words: the value area (max value size rounded up to 8 bytes)
// A write stores the key's and the value's bytes, zero-filling the tail of each one's
// last word; words beyond keep whatever an earlier write left (never read).
inline constexpr size_t kCopyHeaderWords = 3;
inline constexpr size_t kCopyExpiryWord = 2;

// Where everything is, computed from (capacity, max key size, max value size) and
// nothing else, so a reader can recompute it and compare it with the header.
struct Layout {
  uint64_t capacity = 0;
  uint64_t bucket_count = 0;  // even, >= 2: buckets [0, n/2) left, [n/2, n) right
  uint32_t max_key_size = 0;
  uint32_t max_value_size = 0;
  uint32_t key_words = 0;    // key area, in 8-byte words
  uint32_t value_words = 0;  // value area, in 8-byte words
  uint32_t copy_stride = 0;  // bytes
  uint32_t slot_stride = 0;  // bytes: 8 + 2 * copy_stride
  uint32_t bucket_stride = 0;
  uint64_t proc_table_offset = 0;
  uint64_t buckets_offset = 0;
  uint64_t file_size = 0;
};

// Computes the layout, or InvalidArgument (shmdict kInvalid) when a parameter is out of
// the limits above or the file would be larger than kMaxFileSize.
absl::StatusOr<Layout> ComputeLayout(uint64_t capacity, uint32_t max_key_size,
                                     uint32_t max_value_size);

// Byte offsets in the file of bucket b's metadata line and of slot i's sequence word.
inline uint64_t BucketOffset(const Layout& l, uint64_t b) {
  return l.buckets_offset + b * l.bucket_stride;
}
inline uint64_t SlotOffset(const Layout& l, uint64_t b, uint32_t i) {
  return BucketOffset(l, b) + sizeof(BucketMeta) + uint64_t{i} * l.slot_stride;
}

// The header checksum: XXH3-64 with seed 0 of the immutable part.
uint64_t HeaderChecksum(const ImmutableHeader& fixed);

}  // namespace shmdict::internal

#endif  // SHMDICT_CORE_LAYOUT_H_
