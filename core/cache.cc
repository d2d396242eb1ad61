// The cache side of the table: expiry arithmetic, making room in full buckets
// (expired entries first, then eviction), Ttl, Clear and Sweep; and the scans, which
// skip expired entries.
#include <algorithm>
#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/crash_point.h"
#include "core/slot.h"
#include "core/table.h"
#include "core/words.h"

namespace shmdict::internal {

// ---------------------------------------------------------------------------------
// Expiry

absl::StatusOr<uint64_t> Table::ExpiryAfter(uint64_t ttl_ms) {
  if (ttl_ms == 0) return uint64_t{0};  // never expires
  if (ttl_ms > kMaxTtlMs) {
    return Err(ErrorCode::kInvalid, absl::StrCat("time to live of ", ttl_ms,
                                                 " ms is over the maximum of ", kMaxTtlMs,
                                                 " ms (about 139 years)"));
  }
  return NowMs() + ttl_ms;
}

absl::StatusOr<int64_t> Table::Ttl(std::string_view key) const {
  uint64_t expires = 0;
  const int r = LookupExpiry(key, &expires);
  if (r == 0) return Err(ErrorCode::kNotFound, "key not found");
  if (r < 0) return Err(ErrorCode::kBadFile, "corrupt slot: value length over the maximum");
  if (expires == 0) return int64_t{-1};
  // The entry is unexpired by the coarse clock; the time left is measured with the
  // precise one (which runs up to a tick ahead), and is at least 1 ms while the entry
  // reads as present.
  const uint64_t now = NowMs();
  return static_cast<int64_t>(expires > now ? expires - now : 1);
}

// ---------------------------------------------------------------------------------
// Making room

bool Table::MakeRoomLocked(const Probe& p, uint64_t* bucket, uint32_t* slot,
                           uint64_t* evicted_left) {
  // Fetch the 32 slots' first lines (sequence, and most of the copy it selects) at once:
  // an eviction reads a word or two of each.
  for (const uint64_t b : {p.b1, p.b2}) {
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) PrefetchLines(slot_seq(b, i), 2 * kCacheLine);
  }
  const uint64_t now = CoarseNowMs();
  uint64_t oldest = UINT64_MAX;
  uint64_t oldest_b = p.b1;
  uint32_t oldest_i = 0;
  for (const uint64_t b : {p.b1, p.b2}) {
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      const uint64_t* c = current_copy_locked(b, i);
      if (ExpiredAt(LoadWord(c + kCopyExpiryWord), now)) {
        // Absent to every reader already: no wake needed.
        EraseSlotLocked(b, i);
        SHMDICT_CRASH_POINT(kRoomMade);
        // Relaxed: a statistic only this entry's claimant adds to.
        own_entry().expired_erased.fetch_add(1, std::memory_order_relaxed);
        *bucket = b;
        *slot = i;
        return true;
      }
      const uint64_t v = LoadWord(c);
      if (v < oldest) {
        oldest = v;
        oldest_b = b;
        oldest_i = i;
      }
    }
  }
  if (eviction_ != kEvictLrs) return false;
  // The victim's key, read in place (we hold the lock: neither copy changes), names
  // the left bucket whose waiters the eviction must wake.
  const uint64_t* c = current_copy_locked(oldest_b, oldest_i);
  const uint32_t klp1 = static_cast<uint32_t>(LoadWord(c + 1));
  if (klp1 != 0 && klp1 - 1 <= layout_.max_key_size) {
    *evicted_left = ProbeFor(std::string_view(
        reinterpret_cast<const char*>(c + kCopyHeaderWords), klp1 - 1)).b1;
  }
  EraseSlotLocked(oldest_b, oldest_i);
  SHMDICT_CRASH_POINT(kRoomMade);
  // Relaxed: a statistic only this entry's claimant adds to.
  own_entry().evictions.fetch_add(1, std::memory_order_relaxed);
  *bucket = oldest_b;
  *slot = oldest_i;
  return true;
}

// ---------------------------------------------------------------------------------
// Clear and Sweep

absl::Status Table::Clear() {
  if (absl::Status s = CheckWritable({}, {}); !s.ok()) return s;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    // Acquire (LoadTags): a bucket that an insert finished filling before this call
    // began shows its tag here. Empty buckets are skipped without their lock.
    const Tags tags = LoadTags(meta(b));
    if (tags.AllFree()) continue;
    // The uncontended CAS is in LockBucketSlow too (LockBucket is inline in table.cc).
    if (ABSL_PREDICT_FALSE(!LockBucketSlow(b))) return DescriptorLostError();
    for (uint32_t mask = ~LoadTagsLocked(meta(b)).FreeMask() & 0xFFFFu; mask != 0;
         mask &= mask - 1) {
      EraseSlotLocked(b, static_cast<uint32_t>(__builtin_ctz(mask)));
    }
    SHMDICT_CRASH_POINT(kBucketCleared);
    UnlockBucket(b);
  }
  // Every bucket's waiters, once every bucket is cleared: a key's waiters sleep on its
  // left bucket, and the key may have been in its right one.
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) NotifyChange(b);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Table::Sweep() {
  if (absl::Status s = CheckWritable({}, {}); !s.ok()) return s;
  uint64_t erased = 0;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const Tags tags = LoadTags(meta(b));
    if (tags.AllFree()) continue;
    // Without the lock first (a hint: a torn read costs a lock taken for nothing, or
    // an expired entry left for the next sweep): does the bucket hold an expired entry?
    const uint64_t now = CoarseNowMs();
    bool any = false;
    for (uint32_t i = 0; i < kSlotsPerBucket && !any; ++i) {
      if (tags.At(i) == 0) continue;
      const uint64_t* seq = slot_seq(b, i);
      any = ExpiredAt(LoadWord(CopyAt(seq, SlotReadBegin(seq), copy_stride_words()) +
                               kCopyExpiryWord),
                      now);
    }
    if (!any) continue;
    // The uncontended CAS is in LockBucketSlow too (LockBucket is inline in table.cc).
    if (ABSL_PREDICT_FALSE(!LockBucketSlow(b))) return DescriptorLostError();
    uint64_t here = 0;
    for (uint32_t mask = ~LoadTagsLocked(meta(b)).FreeMask() & 0xFFFFu; mask != 0;
         mask &= mask - 1) {
      const uint32_t i = static_cast<uint32_t>(__builtin_ctz(mask));
      if (ExpiredAt(LoadWord(current_copy_locked(b, i) + kCopyExpiryWord), now)) {
        // Absent to every reader already: no wake needed.
        EraseSlotLocked(b, i);
        ++here;
      }
    }
    SHMDICT_CRASH_POINT(kBucketSwept);
    // Relaxed: a statistic only this entry's claimant adds to.
    own_entry().expired_erased.fetch_add(here, std::memory_order_relaxed);
    UnlockBucket(b);
    erased += here;
  }
  return erased;
}

// ---------------------------------------------------------------------------------
// Scans

// Reads slot (b, i) as one snapshot into the non-null outputs (key, value and version
// only for an unexpired entry; *expires for any entry).
Table::SlotState Table::SnapshotSlot(uint64_t b, uint32_t i, uint64_t now, std::string* key,
                                    std::string* value, uint64_t* version,
                                    uint64_t* expires) const {
  return ReadSlot(slot_seq(b, i), copy_stride_words(), [&](const uint64_t* c) {
    const uint64_t w1 = LoadWord(c + 1);
    const uint32_t klp1 = static_cast<uint32_t>(w1);
    const uint32_t vlen = CopyValueLength(w1);
    if (klp1 == 0) return SlotState::kEmpty;
    if (klp1 - 1 > layout_.max_key_size || vlen > layout_.max_value_size) {
      return SlotState::kCorrupt;
    }
    const uint64_t e = LoadWord(c + kCopyExpiryWord);
    if (expires != nullptr) *expires = e;
    if (ExpiredAt(e, now)) return SlotState::kExpired;
    if (key != nullptr) {
      key->resize(klp1 - 1);
      CopyFromWords(key->data(), c + kCopyHeaderWords, klp1 - 1);
    }
    if (value != nullptr) {
      value->resize(vlen);
      CopyFromWords(value->data(), c + kCopyHeaderWords + layout_.key_words, vlen);
    }
    if (version != nullptr) *version = LoadWord(c);
    return SlotState::kEntry;
  });
}

ScanResult Table::Scan(bool contents, absl::FunctionRef<bool(const ScanEntry&)> fn) const {
  ScanResult r;
  std::string key, value;
  ScanEntry entry;
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    const Tags tags = LoadTags(meta(b));
    if (tags.AllFree()) continue;
    const uint64_t now = CoarseNowMs();
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      if (tags.At(i) == 0) continue;
      switch (contents ? SnapshotSlot(b, i, now, &key, &value, &entry.version, &entry.expires)
                       : SnapshotSlot(b, i, now, nullptr, nullptr, nullptr, nullptr)) {
        case SlotState::kEmpty:
          break;
        case SlotState::kCorrupt:
          ++r.corrupt;
          break;
        case SlotState::kExpired:
          ++r.expired;
          break;
        case SlotState::kEntry:
          ++r.entries;
          entry.key = key;
          entry.value = value;
          if (!fn(entry)) {
            r.stopped = true;
            return r;
          }
          break;
      }
    }
  }
  return r;
}

ScanResult Table::Count() const {
  return Scan(/*contents=*/false, [](const ScanEntry&) { return true; });
}

ScanResult Table::ForEach(
    absl::FunctionRef<bool(std::string_view, std::string_view, uint64_t)> fn) const {
  return Scan(/*contents=*/true,
              [&](const ScanEntry& e) { return fn(e.key, e.value, e.version); });
}

ScanResult Table::ForEachEntry(absl::FunctionRef<bool(const ScanEntry&)> fn) const {
  return Scan(/*contents=*/true, fn);
}

}  // namespace shmdict::internal
