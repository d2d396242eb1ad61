// Inspection and repair: statistics, bucket fill, the repair of a bucket whose lock
// holder died (RecoverBucket, RepairDeadLocks), and Verify, the full scan behind
// `shmdict verify`.
#include <fcntl.h>
#include <sched.h>

#include <cstdint>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/crash_point.h"
#include "core/slot.h"
#include "core/table.h"

namespace shmdict::internal {

namespace {
// How often Verify looks at a bucket that writers keep changing before it counts the
// bucket as busy.
constexpr int kVerifyAttempts = 64;
}  // namespace

// ---------------------------------------------------------------------------------
// Statistics

Stats Table::GetStats() const {
  Stats st;
  st.capacity = layout_.capacity;
  st.bucket_count = layout_.bucket_count;
  st.slot_count = layout_.bucket_count * kSlotsPerBucket;
  const ScanResult scan = Count();
  st.count = scan.entries;
  st.expired = scan.expired;
  st.eviction = static_cast<Eviction>(eviction_);
  // Relaxed: statistics. Summed over every entry ever claimed (an entry's counters
  // outlive its claimants).
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t i = 0; i < kProcEntries; ++i) {
    st.evictions += procs[i].evictions.load(std::memory_order_relaxed);
    st.expired_erased += procs[i].expired_erased.load(std::memory_order_relaxed);
  }
  st.max_key_size = layout_.max_key_size;
  st.max_value_size = layout_.max_value_size;
  st.file_size = layout_.file_size;
  // Relaxed: a statistic.
  st.recoveries = reinterpret_cast<const FileHeader*>(base_)->live.recoveries.load(
      std::memory_order_relaxed);
  st.live_processes = LiveProcessCount();
  st.load_factor = st.slot_count == 0 ? 0 : double(st.count) / double(st.slot_count);
  return st;
}

std::array<uint64_t, kSlotsPerBucket + 1> Table::BucketFill() const {
  std::array<uint64_t, kSlotsPerBucket + 1> fill{};
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    // A statistic: a tag is set before its slot's contents are written and cleared
    // after they are erased, so a tag counts a slot that is or is about to be occupied.
    ++fill[LoadTagsHint(meta(b)).Occupied()];
  }
  return fill;
}

// ---------------------------------------------------------------------------------
// Repair

void Table::RecoverBucket(uint64_t b) {
  BucketMeta& m = meta(b);
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    uint64_t* seq = slot_seq(b, i);
    // Acquire, for documentation more than need: the dead writer's stores (its begin
    // store s+1 included) are already visible, ordered before us by the kernel's
    // detection of its death (see LockBucket); tests/model shows a relaxed load here
    // is not caught. Kept acquire so the slot's contents are ordered after the
    // sequence even if death detection ever changed.
    const uint64_t s = SeqWord(seq).load(std::memory_order_acquire);
    if ((s & 1) != 0) {
      // Roll back the interrupted write: s + 3 is even and selects the copy that was
      // current before it.
      RollForwardSlot(seq, s);
      SHMDICT_CRASH_POINT(kRecoverySlotRolledBack);
    }
  }
  const Tags tags = LoadTagsLocked(m);
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    if (tags.At(i) == 0) continue;
    if ((LoadWord(current_copy_locked(b, i) + 1) & 0xFFFFFFFFu) == 0) {
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
  // Buckets whose lock is free but which hold what only an interrupted write or damage
  // leaves (an odd sequence, a tag on an empty slot): take the lock as a writer would
  // and repair them the same way.
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    // Relaxed: a hint (a held lock means a writer is at work there, or a lock word we
    // cannot take: left alone); LockBucketSlow's CAS synchronizes.
    if (meta(b).lock.load(std::memory_order_relaxed) != 0 || !NeedsRepairHint(b)) continue;
    // The contended path takes a free lock as well, and is not inlined into Write.
    if (!LockBucketSlow(b)) return DescriptorLostError();
    // Under the lock: a writer that held it meanwhile may have left the bucket sound.
    const bool needed = NeedsRepairHint(b);
    if (needed) RecoverBucket(b);
    UnlockBucket(b);
    repaired += needed ? 1 : 0;
  }
  return repaired;
}

bool Table::NeedsRepairHint(uint64_t b) const {
  const Tags tags = LoadTags(meta(b));
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    const uint64_t* seq = slot_seq(b, i);
    const uint64_t s = SlotReadBegin(seq);
    if ((s & 1) != 0) return true;
    if (tags.At(i) != 0 && (LoadWord(CopyAt(seq, s, copy_stride_words()) + 1) & 0xFFFFFFFFu) == 0) {
      return true;
    }
  }
  return false;
}

VerifyReport Table::Verify() const {
  VerifyReport r;
  auto damage = [&r](std::string message) {
    ++r.damage;
    if (r.messages.size() < 100) r.messages.push_back(std::move(message));
  };
  const auto* header = reinterpret_cast<const FileHeader*>(base_);
  if (HeaderChecksum(header->fixed) != header->checksum) {
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
  // A bucket is checked from a stable view: its lock free (or held by a dead process),
  // and its lock word, tags and every slot's sequence the same after the check as
  // before it. Sequences only grow, so "the same" means no write committed or began
  // meanwhile; tags change only with a write under the lock. A bucket that a live
  // writer changes during every attempt is counted as busy, never as damaged.
  for (uint64_t b = 0; b < layout_.bucket_count; ++b) {
    bool stable = false;
    for (int attempt = 0; attempt < kVerifyAttempts && !stable; ++attempt) {
      if (attempt > 0) sched_yield();
      BucketCheck check;
      if (!CheckBucket(b, &check)) continue;
      stable = true;
      r.entries += check.entries;
      r.expired += check.expired;
      r.odd_slots += check.odd_slots;
      r.orphan_tags += check.orphan_tags;
      if (check.pending) ++r.dead_locks;
      for (std::string& m : check.damage) damage(std::move(m));
    }
    if (stable) {
      ++r.buckets_checked;
    } else {
      ++r.buckets_busy;
    }
  }
  return r;
}

bool Table::CheckBucket(uint64_t b, BucketCheck* out) const {
  const BucketMeta& m = meta(b);
  auto damage = [&](uint32_t i, auto&&... what) {
    out->damage.push_back(absl::StrCat("bucket ", b, " slot ", i, ": ", what...));
  };
  // Acquire: pairs with the release store of the last unlock, so the bucket's contents
  // are at least those its last holder left.
  const uint64_t lock_before = m.lock.load(std::memory_order_acquire);
  if (lock_before != 0) {
    if (!HolderIsDead(lock_before)) return false;  // a live writer: look again later
    out->pending = true;
  }
  const uint64_t now = CoarseNowMs();
  uint64_t seqs[kSlotsPerBucket];
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) seqs[i] = SlotReadBegin(slot_seq(b, i));
  const Tags tags = LoadTags(m);
  // Relaxed: the clock is stored under the lock; the stability check below (the lock
  // word and the sequences unchanged) tells whether a writer ran meanwhile.
  const uint64_t clock = m.clock.load(std::memory_order_relaxed);
  if (clock == UINT64_MAX) {
    out->damage.push_back(absl::StrCat("bucket ", b, ": version clock at its maximum "
                                       "(2^64-1): writes to its keys are refused"));
  }
  std::string key;
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    const uint8_t tag = tags.At(i);
    const uint64_t s = seqs[i];
    if ((s & 1) != 0) {
      if (out->pending) {
        ++out->odd_slots;
      } else {
        damage(i, "odd sequence ", s, " with no writer holding the lock");
      }
    }
    const uint64_t* c = CopyAt(slot_seq(b, i), s, copy_stride_words());
    const uint64_t w1 = LoadWord(c + 1);
    const uint32_t klp1 = static_cast<uint32_t>(w1);
    const uint32_t vlen = CopyValueLength(w1);
    if (klp1 == 0) {
      if (w1 != 0) damage(i, "empty copy with a length");
      if (tag != 0) {
        if (out->pending) {
          ++out->orphan_tags;
        } else {
          damage(i, "tag on an empty slot");
        }
      }
      continue;
    }
    if (tag == 0) {
      damage(i, "entry without a tag");
      continue;
    }
    if (klp1 - 1 > layout_.max_key_size || vlen > layout_.max_value_size) {
      damage(i, "lengths over the maxima (key ", klp1 - 1, ", value ", vlen, ")");
      continue;
    }
    key.resize(klp1 - 1);
    CopyFromWords(key.data(), c + kCopyHeaderWords, klp1 - 1);
    if (const size_t tail = key.size() % 8; tail != 0) {
      // Writers zero the bytes after the key in its last word (CopyToWords).
      const uint64_t last = LoadWord(c + kCopyHeaderWords + key.size() / 8);
      if ((last & ~TailMask(tail)) != 0) damage(i, "nonzero bytes after the key in its last word");
    }
    const Probe p = ProbeFor(key);
    if (p.b1 != b && p.b2 != b) {
      damage(i, "key belongs in buckets ", p.b1, " and ", p.b2);
      continue;
    }
    if (p.tag != tag) damage(i, "tag ", tag, " but the key's is ", p.tag);
    const uint64_t version = LoadWord(c);
    if (version == 0) damage(i, "entry with version 0");
    if (version > clock) damage(i, "version ", version, " above the bucket's clock ", clock);
    // Duplicates: the key must not also be earlier in this bucket (whose view is stable
    // if the check below passes) nor in its other bucket (read by validated snapshots:
    // a slot there that held the key while this one did is a real duplicate).
    for (uint32_t j = i + 1; j < kSlotsPerBucket; ++j) {
      if (CopyHoldsKey(CopyAt(slot_seq(b, j), seqs[j], copy_stride_words()), key)) {
        damage(i, "key also in slot ", j);
      }
    }
    const uint64_t other = p.b1 == b ? p.b2 : p.b1;
    if (other > b) {
      for (uint32_t j = 0; j < kSlotsPerBucket; ++j) {
        if (ReadSlot(slot_seq(other, j), copy_stride_words(),
                     [&](const uint64_t* oc) { return CopyHoldsKey(oc, key); })) {
          damage(i, "key also in bucket ", other, " slot ", j);
        }
      }
    }
    // Expired entries are checked like the others, and counted apart (as Count does).
    if (ExpiredAt(LoadWord(c + kCopyExpiryWord), now)) {
      ++out->expired;
    } else {
      ++out->entries;
    }
  }
  // The view was stable iff nothing moved: same tags, sequences and lock word.
  const Tags tags_after = LoadTags(m);
  if (tags_after.w0 != tags.w0 || tags_after.w1 != tags.w1) return false;
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    if (SlotReadBegin(slot_seq(b, i)) != seqs[i]) return false;
  }
  // Acquire: as above; a lock taken (or taken over) meanwhile means a writer may be
  // changing the bucket.
  return m.lock.load(std::memory_order_acquire) == lock_before;
}

}  // namespace shmdict::internal
