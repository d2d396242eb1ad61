// A Relacy model check of the engine's operations over a key's two buckets, where
// slot_model.cc checks the slot protocol on one slot: several keys sharing two
// buckets of two slots each, the reader's home-slot read and tag scan, the writers'
// lock-free lookup before locking and the recheck under the lock, the two-bucket
// insert, erase, slot reuse by another key, and FetchAdd. Then mutants: a broken
// variant of each of those steps, which the checker must catch.
//
// What is modelled, as core/table.cc writes it and in its memory orders (the
// ENGINE_ORDER lines below, which model_sync_test.py compares with core/ through
// protocol_orders.txt):
//
//   Reader (Table::LookupProbed)
//     ReadHome(b1), ReadHome(b2): the home slot's tag byte (relaxed: a filter); if it
//       is the key's tag, the seqlock read of the home slot (s1 acquire, the copy s1
//       selects: length word, key word, version, value, acquire fence, s2 relaxed,
//       valid iff s2 - s1 <= 2 - (s1 & 1), else retry). A hit only if the copy holds
//       the key; a miss is not validated (the scan decides).
//     Then the tag scan of b1, b2: the tag word (acquire), and for each slot with the
//       key's tag, the same seqlock read; a validated copy holding the key is a hit.
//       Only the scan concludes "absent".
//   Writers (Table::FetchAdd, ::Write(kInsert), ::Erase), each through LocateAndLock:
//     LookupWhere (lock-free, unvalidated): home slot of b1, of b2, the next slot of
//       b1, of b2 (sequence acquire, then the copy's length and key words), then the
//       tag-matching slots not yet read (tag words acquire).
//     A hint: lock its bucket; HoldsKeyLocked (tag relaxed, sequence relaxed, copy):
//       if the hinted slot still holds the key, done; else unlock.
//     Otherwise lock b1, then b2 (ascending), and FindLocked in b1, then b2.
//     WriteLocked: present: current version (relaxed), clock of the key's bucket + 1
//       (relaxed, under the lock), WriteCopy. Absent (both locked): free slots from
//       both tag words (relaxed), the bucket with more free slots (left on a tie),
//       its first free slot from the home slot on, version = max of both clocks + 1,
//       SetTag, then WriteCopy.
//     FetchAdd reads the current value under the lock (relaxed sequence load) and
//       writes value + 1 with WriteLocked(kPut). Erase: WriteEmptyCopy, then SetTag(0).
//     WriteCopy, WriteEmptyCopy, SetTag, LockBucket, UnlockBucket: as in slot_model.cc.
//
// Simplifications, each harmless for what is checked here:
//   - Two buckets (the left and the right one) of two slots each; every key's
//     candidate buckets are both (the most overlap two keys can have). One tag word
//     per bucket (the engine has two; the model loads one where the engine loads one
//     or two). With two slots, a key's home slot and the slot after it are the whole
//     bucket, so LookupWhere's closing tag scan finds no slot left to read (it loads
//     the tags all the same).
//   - A copy is 4 words: version, length word, key, value. Every key is 8 bytes (the
//     length word's low half is 9) and its key word is its id. The length word's high
//     half (the engine's value length) and the value word's high half carry the ghost
//     stamp of the write; the value's low half is the key's counter (FetchAdd adds 1,
//     an insert stores 1). An empty copy is {0, stamp << 32, ...}. Accesses and
//     orders are the engine's; values differ only by the ghost stamps.
//   - No writer dies (slot_model.cc checks deaths and recovery on one slot). A waiting
//     writer spins with rl::yield; liveness checks are left out.
//   - NotifyChange (the futex word, after the commit) publishes nothing to readers
//     and is left out.
//
// Checks (CHECK below; the first one that fails is reported by name):
//   Reader, for each lookup of key k:
//     torn         a hit's words are those of one write: the write whose stamp the
//                  length word carries (its version, counter, key);
//     uncommitted  that write committed before the reader accepted it; a validated
//                  copy the scan passed over (another key or empty) was committed too;
//     wrong key    the write was a write of k (not of the key that reused the slot);
//     went back    a hit's stamp is not older than the newest one this reader saw;
//     missed       "absent" only if an erase of k committed after the newest write
//                  of k this reader saw (keys present at the start count as seen):
//                  a key present throughout is always found.
//   Writers, under their locks (the writes of a key are serialized by its locks, so
//   their interleaving order is the key's history):
//     stale        present/absent as found under the lock = the key's state;
//     lost update  FetchAdd read the key's current counter;
//     version      each write of k gets a version above every earlier one of k;
//     duplicate    an insert never puts k in a second slot, nor in a slot that
//                  holds another key.
//   At the end: every key in exactly the slots its history says, with its last
//   counter; sequences even; a slot's tag is its key's tag, 0 iff it is empty.
//
// Mutants (kMutants below; each must be caught, by the check named there): the home
// read unvalidated, with a relaxed s1, deciding "absent", without its fence (a1-a4);
// the insert trusting the lock-free "absent", keeping a stale hint's lock (a lock-order
// deadlock), choosing its slot before locking (b1-b3); the reader taking the key and
// the value from two snapshots, or not comparing the key words (c1, c2); the hinted
// slot not rechecked, FetchAdd adding to the hint's value, the version from the clock
// read before locking or from one bucket's clock (d1-d4). The writers' mutants are
// also run with the writers' checks off, to show what readers and the final state
// see of them. Two weakenings are shown harmless: the home read's tag filter
// removed, the writers' lock-free lookup relaxed (n1, n2).
//
// Relacy (relacy-dev) bounds each atomic's history (see slot_model.cc), so this is
// bounded model checking of these scenarios, not a proof.
#include <relacy/relacy.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iostream>
#include <utility>

namespace model {

// ---------------------------------------------------------------------------------
// The engine's orders (normal build). model_sync_test.py reads these lines and
// compares them with protocol_orders.txt, which it also compares with core/.

#define ENGINE_ORDER(fn, step, mo) inline constexpr rl::memory_order fn##_##step = rl::mo_##mo;
#define ENGINE_FENCE(fn, step, fence_fn) inline constexpr bool fn##_##step = true;
#define ENGINE_TEXT(fn, step, value) inline constexpr int fn##_##step = value;

// The reader (core/slot.h): the tag filter of the home-slot reads, the tag scan's
// tags, and the validated read both use (SlotReadBegin -> copy -> SlotReadValid).
ENGINE_ORDER(TagHint, load, relaxed)
ENGINE_ORDER(LoadTags, load, acquire)
ENGINE_ORDER(SlotReadBegin, s1_load, acquire)
ENGINE_ORDER(SlotReadValid, s2_load, relaxed)
ENGINE_ORDER(SlotReadValid, s2_load_tsan, acquire)
ENGINE_FENCE(SlotReadValid, reader_fence, ReaderAcquireFence)
// The writers' lock-free lookup (LookupWhere: SlotReadBegin and LoadTags above), and
// the rechecks under the lock (TagLocked, LoadTagsLocked, SlotSeqLocked).
ENGINE_ORDER(TagLocked, load, relaxed)
ENGINE_ORDER(LoadTagsLocked, load, relaxed)
ENGINE_ORDER(SlotSeqLocked, load, relaxed)
// The bucket LocateAndLock locks first when the hint does not hold: the left one (b1,
// bucket 0 here), then the right one; every writer locks in ascending order.
ENGINE_TEXT(LocateAndLock, first_lock, 0)
// Under the locks: the version clocks.
ENGINE_ORDER(WriteLocked, update_clock_load, relaxed)
ENGINE_ORDER(WriteLocked, update_clock_store, relaxed)
ENGINE_ORDER(WriteLocked, insert_clock_loads, relaxed)
ENGINE_ORDER(WriteLocked, insert_clock_store, relaxed)
// The seqlock writes, tags and locks (as in slot_model.cc).
ENGINE_ORDER(SlotWriteBegin, seq_load, relaxed)
ENGINE_ORDER(SlotWriteBegin, begin_store, release)
ENGINE_FENCE(SlotWriteBegin, begin_fence, WriterReleaseFence)
ENGINE_ORDER(SlotWriteCommit, commit_store, release)
ENGINE_ORDER(StoreTag, load, relaxed)
ENGINE_ORDER(StoreTag, store, release)
ENGINE_ORDER(LockBucket, cas, acq_rel)
ENGINE_ORDER(LockBucket, cas_failure, relaxed)
ENGINE_ORDER(LockBucketSlow, hint_load, relaxed)
ENGINE_ORDER(UnlockBucket, store, release)
// core/words.h.
ENGINE_ORDER(kPayloadLoad, normal, relaxed)
ENGINE_ORDER(kPayloadStore, normal, relaxed)
ENGINE_ORDER(kPayloadLoad, tsan, acquire)
ENGINE_ORDER(kPayloadStore, tsan, release)
ENGINE_ORDER(WriterReleaseFence, fence, release)
ENGINE_ORDER(ReaderAcquireFence, fence, acquire)

// ---------------------------------------------------------------------------------
// Configuration: the engine by default; each mutant changes one thing.

struct Config {
  // ReadHome.
  rl::memory_order home_tag_load = TagHint_load;
  rl::memory_order home_s1_load = SlotReadBegin_s1_load;
  bool home_fence = SlotReadValid_reader_fence;
  rl::memory_order home_s2_load = SlotReadValid_s2_load;
  bool home_tag_filter = true;       // harmless mutant: the home slot read untagged
  bool home_validated = true;        // mutant (a1): a hit is returned unvalidated
  bool home_miss_is_absent = false;  // mutant (a3): a home slot with the key's tag
                                     // and another key in it ends the lookup
  bool compare_key_words = true;     // mutant (c2): the length word alone decides
  // LookupProbed's tag scan.
  rl::memory_order scan_tag_load = LoadTags_load;
  rl::memory_order scan_s1_load = SlotReadBegin_s1_load;
  bool scan_fence = SlotReadValid_reader_fence;
  rl::memory_order scan_s2_load = SlotReadValid_s2_load;
  // Mutants (c1), (c1'): the key found in one snapshot, the value read in a second
  // one; (c1') takes an empty second copy as "absent".
  int split_snapshot = 0;
  // Payload words and the writers' fence (core/words.h).
  rl::memory_order payload_load = kPayloadLoad_normal;
  rl::memory_order payload_store = kPayloadStore_normal;
  bool writer_fence = SlotWriteBegin_begin_fence;
  // LocateAndLock and WriteLocked.
  rl::memory_order where_s_load = SlotReadBegin_s1_load;
  rl::memory_order where_tag_load = LoadTags_load;
  bool recheck_hint = true;                // mutant (d1): the hinted slot not rechecked
  bool keep_stale_hint_lock = false;       // mutant (b2): a stale hint's lock kept
  bool trust_absent_hint = false;          // mutant (b1): no FindLocked after an absent hint
  bool free_slots_before_locking = false;  // mutant (b3)
  bool value_from_hint = false;            // mutant (d2): FetchAdd adds to the hint's value
  bool version_from_hint = false;          // mutant (d3): the clock read before locking
  bool insert_version_one_clock = false;   // mutant (d4): the chosen bucket's clock only
  // The writers' checks under the lock (stale, lost update, version, duplicate).
  // Off, only what readers and the final state show can catch a writer's mutant.
  bool writer_checks = true;
};

// ---------------------------------------------------------------------------------
// Scenarios (set before rl::simulate, constant during it). Nothing here allocates:
// Relacy replaces operator new/delete (see BUILD.bazel).

constexpr int kBuckets = 2;     // 0: the left bucket, 1: the right one
constexpr uint32_t kSlots = 2;  // per bucket (the engine has 16)
constexpr int kMaxKeys = 5;     // key ids 1 .. 4
constexpr int kWriters = 2;     // threads 0, 1; the reader is thread 2
constexpr uint64_t kLow = 0xFFFFFFFFu;
constexpr uint64_t kKeyLen1 = 9;  // the length word's low half: key length 8, + 1
enum Word { kVersion = 0, kLen = 1, kKeyWord = 2, kValue = 3, kWords = 4 };

enum class Op { kAdd, kInsert, kErase };  // FetchAdd(k, 1), Write(kInsert, k, 1), Erase

struct KeyDef {
  uint8_t tag = 0;    // 0: not a key of the scenario
  uint32_t home = 0;  // the same slot index in both buckets
};
struct Placement {
  int key;
  int bucket;
  uint32_t slot;
};
struct Ops {
  int n = 0;
  Op op[3] = {};
  int key[3] = {};
  Ops() = default;
  Ops(std::initializer_list<std::pair<Op, int>> ops) {
    for (const auto& [o, k] : ops) {
      op[n] = o;
      key[n++] = k;
    }
  }
};
struct Scenario {
  const char* name = "";
  KeyDef keys[kMaxKeys];
  Placement initial[4] = {};
  int n_initial = 0;
  Ops script[kWriters];
  int lookups[4] = {};
  int n_lookups = 0;
};

constexpr int A = 1, B = 2, C = 3, D = 4;

// (a) The home-slot read racing with writers. A sits in its home slot L0 and is
// updated three times; B, which has A's tag and home, sits in L1 (its home was
// taken): B's home reads find A (a tag match, another key) and only the scan finds
// B. Both are present throughout.
Scenario Home() {
  Scenario s;
  s.name = "home";
  s.keys[A] = {0x5A, 0};
  s.keys[B] = {0x5A, 0};
  s.initial[s.n_initial++] = {A, 0, 0};
  s.initial[s.n_initial++] = {B, 0, 1};
  s.script[0] = {{Op::kAdd, A}, {Op::kAdd, A}};
  s.script[1] = {{Op::kAdd, B}, {Op::kAdd, A}};
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = B;
  s.lookups[s.n_lookups++] = A;
  return s;
}

// (b) Two-bucket inserts: two writers insert A and B (insert-if-absent), each key
// twice, in opposite orders; both keys' candidate buckets are L and R. C in L1 makes
// the first insert go right (R0) and the second left (L0, a tie).
Scenario Insert() {
  Scenario s;
  s.name = "insert";
  s.keys[A] = {0x5A, 0};
  s.keys[B] = {0x3C, 0};
  s.keys[C] = {0x77, 1};
  s.initial[s.n_initial++] = {C, 0, 1};
  s.script[0] = {{Op::kInsert, A}, {Op::kInsert, B}};
  s.script[1] = {{Op::kInsert, B}, {Op::kInsert, A}};
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = B;
  s.lookups[s.n_lookups++] = A;
  return s;
}

// (c) A slot freed and reused by another key: writer 0 erases A from L0, then inserts
// B, which has A's tag and home, into the freed L0 (L and R have one free slot each:
// a tie, left). Writer 1 adds to A meanwhile (before the erase: an update; after it:
// a re-insert, into R0 or, after B, wherever a slot is free). The reader looks A up.
Scenario Reuse() {
  Scenario s;
  s.name = "reuse";
  s.keys[A] = {0x5A, 0};
  s.keys[B] = {0x5A, 0};
  s.keys[C] = {0x77, 1};
  s.keys[D] = {0x11, 1};
  s.initial[s.n_initial++] = {A, 0, 0};
  s.initial[s.n_initial++] = {C, 0, 1};
  s.initial[s.n_initial++] = {D, 1, 1};
  s.script[0] = {{Op::kErase, A}, {Op::kInsert, B}};
  s.script[1] = {{Op::kAdd, A}};
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = A;
  return s;
}

// (d) A stale hint: writer 0 adds to A, which sits in R0, while writer 1 erases A and
// then inserts B (locking L, then R). Writer 0's hint (R0) may go stale before it
// locks R: it must then lock both buckets in order and find A absent (or B's insert
// done), and insert A.
Scenario Stale() {
  Scenario s;
  s.name = "stale";
  s.keys[A] = {0x5A, 0};
  s.keys[B] = {0x3C, 0};
  s.keys[C] = {0x77, 1};
  s.initial[s.n_initial++] = {A, 1, 0};
  s.initial[s.n_initial++] = {C, 0, 1};
  s.script[0] = {{Op::kAdd, A}};
  s.script[1] = {{Op::kErase, A}, {Op::kInsert, B}};
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = B;
  s.lookups[s.n_lookups++] = A;
  return s;
}

// (d) A key that moves under a writer: writer 0 adds to A twice; writer 1 erases A
// and adds it again, which re-inserts it in R0 (R has more free slots than L), so
// writer 0's hint L0 may go stale and A's versions must keep increasing across the
// move (R's clock is behind L's).
Scenario Move() {
  Scenario s;
  s.name = "move";
  s.keys[A] = {0x5A, 0};
  s.keys[C] = {0x77, 1};
  s.initial[s.n_initial++] = {A, 0, 0};
  s.initial[s.n_initial++] = {C, 0, 1};
  s.script[0] = {{Op::kAdd, A}, {Op::kAdd, A}};
  s.script[1] = {{Op::kErase, A}, {Op::kAdd, A}};
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = A;
  s.lookups[s.n_lookups++] = A;
  return s;
}

Config g_cfg;
Scenario g_scn;
const char* g_failure = nullptr;  // which CHECK failed last

// What the explored executions did (summed over runs): shows the checks are not
// vacuous.
struct Stats {
  uint64_t home_hits = 0, scan_hits = 0, absent = 0, retries = 0;
  uint64_t hint_held = 0, hint_stale = 0, no_hint = 0;
  uint64_t inserts = 0, reused_slots = 0, exists = 0, not_found = 0, moves = 0;
};
Stats g_stats;

#define WCHECK(cond, what)                      \
  do {                                          \
    if (g_cfg.writer_checks) CHECK(cond, what); \
  } while (0)

#define CHECK(cond, what)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      g_failure = what;                                                         \
      RL_ASSERT_IMPL(false, rl::test_result_user_assert_failed, what, RL_INFO); \
    }                                                                           \
  } while (0)

constexpr uint64_t KeyWord(int k) { return 0x4B455900u + static_cast<uint64_t>(k); }
constexpr int kMaxStamps = 32;

inline uint8_t TagByte(uint64_t tags, uint32_t i) { return static_cast<uint8_t>(tags >> (8 * i)); }
// Bit i set iff slot i's tag byte is `tag` (MatchTags in core/table.cc).
inline uint32_t MatchTags(uint64_t tags, uint8_t tag) {
  uint32_t m = 0;
  for (uint32_t i = 0; i < kSlots; ++i) m |= uint32_t{TagByte(tags, i) == tag} << i;
  return m;
}
// The first set bit of `mask` at or after `from`, cyclically (FirstFreeFrom).
inline uint32_t FirstFreeFrom(uint32_t mask, uint32_t from) {
  for (uint32_t k = 0; k < kSlots; ++k) {
    const uint32_t i = (from + k) % kSlots;
    if ((mask >> i) & 1) return i;
  }
  return kSlots;
}

// ---------------------------------------------------------------------------------
// The table: two buckets, the operations on them, and the ghost state the checks use.
//
// Every atomic access of the operations below is the engine's access of the same
// step, in the order its ENGINE_ORDER constant names; the comment at that access in
// core/table.cc says what it publishes or observes and what it pairs with. The
// model's own accesses (Init, CheckFinal, the mutants' extra loads) say why their
// order is enough.

struct Slot {
  rl::atomic<uint64_t> seq;
  rl::atomic<uint64_t> copy[2][kWords];
};
struct Meta {
  rl::atomic<uint64_t> lock;
  rl::atomic<uint64_t> clock;
  rl::atomic<uint64_t> tags;  // slot i's tag is byte i
};

// A copy read by a reader (the words it loaded).
struct Snapshot {
  uint64_t len = 0, key = 0, version = 0, value = 0;
  bool key_loaded = false;
};

// What a writer's LocateAndLock found, and what its lock-free lookup saw.
struct Location {
  int bucket = 0;
  int slot = -1;  // -1: absent (then both buckets are locked)
  bool from_hint = false;
};
struct Hint {
  int bucket = 0;
  int slot = -1;
  uint64_t value = 0;  // the hinted copy's value word (mutant (d2) only)
  uint64_t clock = 0;  // the hinted bucket's clock (mutant (d3) only)
};
struct Writer {
  uint64_t lock_word = 0;
  int held[2] = {0, 0};
  int n_held = 0;
  Hint hint;
  uint32_t early_free[kBuckets] = {};  // mutant (b3) only
};

struct Table {
  Meta meta[kBuckets];
  Slot slots[kBuckets][kSlots];

  // Ghost state (plain memory: Relacy runs one thread at a time, and code between
  // two atomic operations runs without a switch).
  struct Record {  // what the write with stamp g wrote
    int key = 0;
    bool empty = true;
    uint64_t version = 0, counter = 0;
    bool committed = false;
  };
  Record rec[kMaxStamps];
  uint64_t next_stamp = 0;
  struct KeyState {  // the key's history so far (its last committed write)
    bool present = false;
    uint64_t stamp = 0, counter = 0, max_version = 0, last_erase = 0;
    uint64_t adds = 0;  // what the counter must be: 1 + the adds since its insert
  };
  KeyState spec[kMaxKeys];
  int holder[kBuckets][kSlots] = {};       // the key whose copy is current, 0: empty
  int last_holder[kBuckets][kSlots] = {};  // the slot's previous key (stats)
  // The reader's newest stamp per key (present at the start: the initial stamp).
  uint64_t seen[kMaxKeys] = {};
  bool seen_present[kMaxKeys] = {};

  const KeyDef& Key(int k) const { return g_scn.keys[k]; }
  uint64_t Load(rl::atomic<uint64_t>& w) { return w($).load(g_cfg.payload_load); }
  void Store(rl::atomic<uint64_t>& w, uint64_t v) { w($).store(v, g_cfg.payload_store); }
  static rl::atomic<uint64_t>* CopyOf(Slot& s, uint64_t seq) { return s.copy[(seq >> 1) & 1]; }

  // Relaxed stores: Relacy runs before() ahead of every thread, with a global fence
  // after it.
  void Init() {
    for (int b = 0; b < kBuckets; ++b) {
      meta[b].lock($).store(0, rl::mo_relaxed);
      uint64_t tags = 0, clock = 0;
      for (uint32_t i = 0; i < kSlots; ++i) {
        Slot& s = slots[b][i];
        for (auto& c : s.copy) {
          for (auto& w : c) w($).store(0, rl::mo_relaxed);
        }
        s.seq($).store(0, rl::mo_relaxed);
        for (int p = 0; p < g_scn.n_initial; ++p) {
          const Placement& pl = g_scn.initial[p];
          if (pl.bucket != b || pl.slot != i) continue;
          // Committed by a write before the test: stamp g, version 10 * g (so the
          // clocks are not all equal), counter 1, in copy 1 (sequence 2).
          const uint64_t g = ++next_stamp;
          const uint64_t version = 10 * g;
          rec[g] = {pl.key, false, version, 1, true};
          spec[pl.key] = {true, g, 1, version, 0, 1};
          seen[pl.key] = g;
          seen_present[pl.key] = true;
          holder[b][i] = last_holder[b][i] = pl.key;
          s.copy[1][kVersion]($).store(version, rl::mo_relaxed);
          s.copy[1][kLen]($).store(kKeyLen1 | g << 32, rl::mo_relaxed);
          s.copy[1][kKeyWord]($).store(KeyWord(pl.key), rl::mo_relaxed);
          s.copy[1][kValue]($).store(1 | g << 32, rl::mo_relaxed);
          s.seq($).store(2, rl::mo_relaxed);
          tags |= uint64_t{Key(pl.key).tag} << (8 * i);
          if (version > clock) clock = version;
        }
      }
      meta[b].tags($).store(tags, rl::mo_relaxed);
      meta[b].clock($).store(clock, rl::mo_relaxed);
    }
    rec[0] = {0, true, 0, 0, true};  // the initial empty copies
  }

  // ---- The reader ----

  enum HomeResult { kHomeHit, kHomeMiss, kHomeAbsent };

  // Reads copy c's words in the engine's order: the length word, the key (WordsEqual),
  // then, on a match, the version (LoadWord(c), an argument of sink.Take) and the
  // value (CopyFromWords in Take). Returns whether the copy holds key k.
  bool ReadCopy(rl::atomic<uint64_t>* c, int k, Snapshot* snap) {
    *snap = Snapshot{};
    snap->len = Load(c[kLen]);
    if ((snap->len & kLow) != kKeyLen1) return false;
    if (g_cfg.compare_key_words) {
      snap->key = Load(c[kKeyWord]);
      snap->key_loaded = true;
      if (snap->key != KeyWord(k)) return false;
    }
    snap->version = Load(c[kVersion]);
    snap->value = Load(c[kValue]);
    return true;
  }

  static bool Valid(uint64_t s1, uint64_t s2) { return s2 - s1 <= 2 - (s1 & 1); }

  // Mutant (c1): after a validated snapshot that holds the key, read the version and
  // value again in a second validated snapshot of the slot, without the key check.
  // Returns false where mutant (c1') finds the slot empty ("absent").
  bool SecondSnapshot(Slot& s, Snapshot* snap) {
    for (;;) {
      const uint64_t s1 = s.seq($).load(g_cfg.scan_s1_load);
      rl::atomic<uint64_t>* c = CopyOf(s, s1);
      snap->len = Load(c[kLen]);
      snap->key_loaded = false;
      snap->version = Load(c[kVersion]);
      snap->value = Load(c[kValue]);
      if (g_cfg.scan_fence) rl::atomic_thread_fence(ReaderAcquireFence_fence, $);
      if (Valid(s1, s.seq($).load(g_cfg.scan_s2_load))) {
        return g_cfg.split_snapshot == 1 || (snap->len & kLow) != 0;
      }
      ++g_stats.retries;
    }
  }

  HomeResult ReadHome(int k, int b, Snapshot* snap) {
    const KeyDef& d = Key(k);
    if (g_cfg.home_tag_filter) {
      const uint64_t tags = meta[b].tags($).load(g_cfg.home_tag_load);
      if (TagByte(tags, d.home) != d.tag) return kHomeMiss;
    }
    Slot& s = slots[b][d.home];
    for (;;) {
      const uint64_t s1 = s.seq($).load(g_cfg.home_s1_load);
      const bool match = ReadCopy(CopyOf(s, s1), k, snap);
      if (!match && !g_cfg.home_miss_is_absent) return kHomeMiss;  // unvalidated
      if (match && !g_cfg.home_validated) return kHomeHit;
      if (g_cfg.home_fence) rl::atomic_thread_fence(ReaderAcquireFence_fence, $);
      const uint64_t s2 = s.seq($).load(g_cfg.home_s2_load);
      if (Valid(s1, s2)) {
        if (!match) return kHomeAbsent;  // mutant (a3)
        if (g_cfg.split_snapshot != 0 && !SecondSnapshot(s, snap)) return kHomeAbsent;
        return kHomeHit;
      }
      ++g_stats.retries;
    }
  }

  // Table::LookupProbed: true (snap holds the hit) or false (absent).
  bool Lookup(int k, Snapshot* snap) {
    for (int b = 0; b < kBuckets; ++b) {
      const HomeResult r = ReadHome(k, b, snap);
      if (r == kHomeHit) {
        ++g_stats.home_hits;
        return true;
      }
      if (r == kHomeAbsent) return false;
    }
    const KeyDef& d = Key(k);
    for (int b = 0; b < kBuckets; ++b) {
      const uint64_t tags = meta[b].tags($).load(g_cfg.scan_tag_load);
      const uint32_t mask = MatchTags(tags, d.tag);
      for (uint32_t i = 0; i < kSlots; ++i) {
        if (((mask >> i) & 1) == 0) continue;
        Slot& s = slots[b][i];
        for (;;) {
          const uint64_t s1 = s.seq($).load(g_cfg.scan_s1_load);
          const bool match = ReadCopy(CopyOf(s, s1), k, snap);
          if (g_cfg.scan_fence) rl::atomic_thread_fence(ReaderAcquireFence_fence, $);
          const uint64_t s2 = s.seq($).load(g_cfg.scan_s2_load);
          if (!Valid(s1, s2)) {
            ++g_stats.retries;
            continue;
          }
          if (match) {
            if (g_cfg.split_snapshot != 0 && !SecondSnapshot(s, snap)) return false;
            ++g_stats.scan_hits;
            return true;
          }
          // A validated copy without the key: another key's, or empty. Committed.
          const uint64_t g = snap->len >> 32;
          CHECK(g < kMaxStamps && rec[g].committed,
                "uncommitted: a validated copy the scan passed over was never committed");
          if (snap->key_loaded) {
            CHECK(!rec[g].empty && snap->key == KeyWord(rec[g].key),
                  "torn: a validated copy's key is not its write's key");
          }
          break;
        }
      }
    }
    ++g_stats.absent;
    return false;
  }

  void CheckLookup(int k, bool found, const Snapshot& snap) {
    if (!found) {
      CHECK(!seen_present[k] || spec[k].last_erase > seen[k],
            "missed: absent, though no erase followed the newest write the reader saw "
            "(a key present throughout)");
      seen_present[k] = false;
      return;
    }
    const uint64_t g = snap.len >> 32;
    CHECK(g < kMaxStamps, "torn: no write has the stamp of the copy read");
    const Record& r = rec[g];
    if (r.empty) {
      CHECK((snap.len & kLow) == 0 && snap.version == 0,
            "torn: a hit's words are not those of one write");
    } else {
      CHECK((snap.len & kLow) == kKeyLen1 && snap.version == r.version && (snap.value >> 32) == g &&
                (snap.value & kLow) == r.counter &&
                (!snap.key_loaded || snap.key == KeyWord(r.key)),
            "torn: a hit's words are not those of one write");
    }
    CHECK(r.committed, "uncommitted: a hit returned a write that never committed");
    CHECK(!r.empty, "wrong key: a hit returned an erased slot's empty copy");
    CHECK(r.key == k, "wrong key: a lookup returned another key's value");
    CHECK(g >= seen[k], "went back: a hit older than one the reader saw before");
    CHECK(g == seen[k] || r.version > rec[seen[k]].version,
          "went back: a newer write of the key without a higher version");
    seen[k] = g;
    seen_present[k] = true;
  }

  void ReaderThread() {
    for (int n = 0; n < g_scn.n_lookups; ++n) {
      const int k = g_scn.lookups[n];
      Snapshot snap;
      const bool found = Lookup(k, &snap);
      CheckLookup(k, found, snap);
    }
  }

  // ---- Writers ----

  void LockBucket(Writer& w, int b) {
    rl::atomic<uint64_t>& lock = meta[b].lock;
    uint64_t cur = 0;
    if (!lock($).compare_exchange_strong(cur, w.lock_word, LockBucket_cas,
                                         LockBucket_cas_failure)) {
      for (;;) {
        cur = lock($).load(LockBucketSlow_hint_load);
        if (cur == 0) {
          if (lock($).compare_exchange_weak(cur, w.lock_word, LockBucket_cas,
                                            LockBucket_cas_failure)) {
            break;
          }
          continue;
        }
        rl::yield(1, $);
      }
    }
    w.held[w.n_held++] = b;
  }

  void UnlockAll(Writer& w) {
    while (w.n_held > 0) meta[w.held[--w.n_held]].lock($).store(0, UnlockBucket_store);
  }

  bool CopyHoldsKey(rl::atomic<uint64_t>* c, int k) {
    return (Load(c[kLen]) & kLow) == kKeyLen1 && Load(c[kKeyWord]) == KeyWord(k);
  }

  // Lock-free, unvalidated: where k is now (a hint).
  void LookupWhere(Writer& w, int k) {
    const KeyDef& d = Key(k);
    w.hint = Hint{};
    auto holds_key = [&](int b, uint32_t i) {
      Slot& s = slots[b][i];
      const uint64_t seq = s.seq($).load(g_cfg.where_s_load);
      rl::atomic<uint64_t>* c = CopyOf(s, seq);
      if (!CopyHoldsKey(c, k)) return false;
      w.hint = {b, static_cast<int>(i), 0, 0};
      // The mutants' extra lock-free reads: a payload load as the engine's, and the
      // clock relaxed as the engine reads it (under the lock, though).
      if (g_cfg.value_from_hint) w.hint.value = Load(c[kValue]);
      if (g_cfg.version_from_hint) w.hint.clock = meta[b].clock($).load(rl::mo_relaxed);
      return true;
    };
    const uint32_t next = (d.home + 1) % kSlots;
    if (holds_key(0, d.home) || holds_key(1, d.home) || holds_key(0, next) || holds_key(1, next)) {
      return;
    }
    const uint32_t done = (1u << d.home) | (1u << next);
    for (int b = 0; b < kBuckets; ++b) {
      const uint64_t tags = meta[b].tags($).load(g_cfg.where_tag_load);
      const uint32_t mask = MatchTags(tags, d.tag) & ~done;
      for (uint32_t i = 0; i < kSlots; ++i) {
        if (((mask >> i) & 1) != 0 && holds_key(b, i)) return;
      }
    }
  }

  bool HoldsKeyLocked(int b, uint32_t i, int k) {
    const uint64_t tags = meta[b].tags($).load(TagLocked_load);
    if (TagByte(tags, i) != Key(k).tag) return false;
    Slot& s = slots[b][i];
    const uint64_t seq = s.seq($).load(SlotSeqLocked_load);
    return CopyHoldsKey(CopyOf(s, seq), k);
  }

  int FindLocked(int b, int k) {
    const uint64_t tags = meta[b].tags($).load(LoadTagsLocked_load);
    const uint32_t mask = MatchTags(tags, Key(k).tag);
    for (uint32_t i = 0; i < kSlots; ++i) {
      if (((mask >> i) & 1) == 0) continue;
      Slot& s = slots[b][i];
      const uint64_t seq = s.seq($).load(SlotSeqLocked_load);
      if (CopyHoldsKey(CopyOf(s, seq), k)) return static_cast<int>(i);
    }
    return -1;
  }

  Location LocateAndLock(Writer& w, int k) {
    LookupWhere(w, k);
    const Hint h = w.hint;
    if (h.slot >= 0) {
      LockBucket(w, h.bucket);
      if (!g_cfg.recheck_hint || HoldsKeyLocked(h.bucket, h.slot, k)) {
        ++g_stats.hint_held;
        return {h.bucket, h.slot, true};
      }
      ++g_stats.hint_stale;
      if (g_cfg.keep_stale_hint_lock) {
        // Mutant (b2): keeps the hinted bucket and locks the other one after it.
        LockBucket(w, 1 - h.bucket);
        for (int b = 0; b < kBuckets; ++b) {
          const int i = FindLocked(b, k);
          if (i >= 0) return {b, i, false};
        }
        return {};
      }
      UnlockAll(w);
    } else {
      ++g_stats.no_hint;
    }
    if (g_cfg.free_slots_before_locking) {
      // Mutant (b3): the insert's slot chosen from tags read before locking (acquire,
      // as the lock-free lookup reads them).
      for (int b = 0; b < kBuckets; ++b) {
        w.early_free[b] = MatchTags(meta[b].tags($).load(rl::mo_acquire), 0);
      }
    }
    LockBucket(w, LocateAndLock_first_lock);
    LockBucket(w, 1 - LocateAndLock_first_lock);
    if (g_cfg.trust_absent_hint && h.slot < 0) return {};  // mutant (b1)
    for (int b = 0; b < kBuckets; ++b) {
      const int i = FindLocked(b, k);
      if (i >= 0) return {b, i, false};
    }
    return {};
  }

  // Under the lock: what LocateAndLock found must be the key's state.
  void CheckFound(int k, const Location& where) {
    WCHECK((where.slot >= 0) == spec[k].present,
           "stale: a writer's lookup under the lock disagrees with the key's state");
    if (where.slot >= 0) {
      WCHECK(holder[where.bucket][where.slot] == k,
             "stale: a writer found the key in a slot that does not hold it");
    }
  }

  void SetTag(int b, uint32_t i, uint8_t tag) {
    const uint64_t t = meta[b].tags($).load(StoreTag_load);
    const uint64_t w = (t & ~(uint64_t{0xFF} << (8 * i))) | uint64_t{tag} << (8 * i);
    meta[b].tags($).store(w, StoreTag_store);
  }

  // WriteCopy (present) and WriteEmptyCopy (!present), with the ghost bookkeeping.
  void SeqlockWrite(int b, uint32_t i, int k, bool present, uint64_t counter, uint64_t version) {
    Slot& s = slots[b][i];
    const uint64_t g = ++next_stamp;
    CHECK(g < kMaxStamps, "model: too many writes");
    rec[g] = {k, !present, version, counter, false};
    if (present) {
      WCHECK(version > spec[k].max_version,
             "version: a write's version is not above the key's earlier versions");
    }
    const uint64_t seq = s.seq($).load(present ? SlotWriteBegin_seq_load : SlotWriteBegin_seq_load);
    s.seq($).store(seq + 1, present ? SlotWriteBegin_begin_store : SlotWriteBegin_begin_store);
    if (g_cfg.writer_fence) rl::atomic_thread_fence(WriterReleaseFence_fence, $);
    rl::atomic<uint64_t>* c = CopyOf(s, seq + 2);
    if (present) {
      Store(c[kLen], kKeyLen1 | g << 32);
      Store(c[kVersion], version);
      Store(c[kKeyWord], KeyWord(k));
      Store(c[kValue], counter | g << 32);
    } else {
      Store(c[kLen], g << 32);  // the engine stores 0: the stamp is a ghost
      Store(c[kVersion], 0);
    }
    s.seq($).store(seq + 2, present ? SlotWriteCommit_commit_store : SlotWriteCommit_commit_store);
    // Ghost, in the same step as the commit store.
    rec[g].committed = true;
    KeyState& ks = spec[k];
    if (present) {
      if (!ks.present) {  // an insert
        WCHECK(holder[b][i] == 0, "duplicate: an insert overwrote another key's slot");
        for (int b2 = 0; b2 < kBuckets; ++b2) {
          for (uint32_t i2 = 0; i2 < kSlots; ++i2) {
            WCHECK(holder[b2][i2] != k, "duplicate: an insert put a key in a second slot");
          }
        }
        if (last_holder[b][i] != 0 && last_holder[b][i] != k) ++g_stats.reused_slots;
      } else {
        WCHECK(holder[b][i] == k, "stale: an update wrote a slot that does not hold the key");
      }
      holder[b][i] = last_holder[b][i] = k;
      ks.adds = ks.present ? ks.adds + 1 : 1;  // an add, or an insert
      ks.present = true;
      ks.stamp = g;
      ks.counter = counter;
      ks.max_version = version;
    } else {
      holder[b][i] = 0;
      ks.present = false;
      ks.last_erase = g;
    }
  }

  // Table::WriteLocked for kPut (FetchAdd) and kInsert, with its new counter.
  void WriteLocked(Writer& w, int k, Location& where, Op mode, uint64_t counter) {
    const KeyDef& d = Key(k);
    const bool present = where.slot >= 0;
    if (present) {
      Slot& s = slots[where.bucket][where.slot];
      const uint64_t seq = s.seq($).load(SlotSeqLocked_load);
      (void)Load(CopyOf(s, seq)[kVersion]);  // the current version (CompareAndSwap's)
      if (mode == Op::kInsert) {
        ++g_stats.exists;  // kExists
        return;
      }
      Meta& m = meta[where.bucket];
      uint64_t v = m.clock($).load(WriteLocked_update_clock_load) + 1;
      if (g_cfg.version_from_hint && where.from_hint) v = w.hint.clock + 1;  // mutant (d3)
      m.clock($).store(v, WriteLocked_update_clock_store);
      SeqlockWrite(where.bucket, where.slot, k, true, counter, v);
      return;
    }
    uint32_t free_masks[kBuckets];
    for (int b = 0; b < kBuckets; ++b) {
      free_masks[b] = MatchTags(meta[b].tags($).load(LoadTagsLocked_load), 0);
      if (g_cfg.free_slots_before_locking) free_masks[b] = w.early_free[b];  // (b3)
    }
    const int free0 = __builtin_popcount(free_masks[0]);
    const int free1 = __builtin_popcount(free_masks[1]);
    CHECK(free0 + free1 > 0, "model: the scenario filled both buckets");
    const int b = free0 >= free1 ? 0 : 1;
    const uint32_t i = FirstFreeFrom(free_masks[b], d.home);
    const uint64_t c0 = meta[0].clock($).load(WriteLocked_insert_clock_loads);
    const uint64_t c1 = meta[1].clock($).load(WriteLocked_insert_clock_loads);
    uint64_t v = (c0 > c1 ? c0 : c1) + 1;
    if (g_cfg.insert_version_one_clock) v = (b == 0 ? c0 : c1) + 1;  // mutant (d4)
    meta[b].clock($).store(v, WriteLocked_insert_clock_store);
    SetTag(b, i, d.tag);  // the slot is still empty: readers find "absent"
    if (spec[k].last_erase != 0) ++g_stats.moves;
    ++g_stats.inserts;
    SeqlockWrite(b, i, k, true, counter, v);  // the commit point
    where = {b, static_cast<int>(i), false};
  }

  void FetchAdd(Writer& w, int k) {
    Location where = LocateAndLock(w, k);
    CheckFound(k, where);
    uint64_t old = 0;
    if (where.slot >= 0) {
      Slot& s = slots[where.bucket][where.slot];
      const uint64_t seq = s.seq($).load(SlotSeqLocked_load);
      rl::atomic<uint64_t>* c = CopyOf(s, seq);
      (void)Load(c[kLen]);  // the value length (the engine checks it is 8)
      old = Load(c[kValue]) & kLow;
      if (g_cfg.value_from_hint && where.from_hint) old = w.hint.value & kLow;  // (d2)
      WCHECK(old == spec[k].counter,
             "lost update: FetchAdd added to a value other than the key's current one");
    }
    WriteLocked(w, k, where, Op::kAdd, old + 1);
    UnlockAll(w);
  }

  void Insert(Writer& w, int k) {
    Location where = LocateAndLock(w, k);
    CheckFound(k, where);
    WriteLocked(w, k, where, Op::kInsert, 1);
    UnlockAll(w);
  }

  void Erase(Writer& w, int k) {
    Location where = LocateAndLock(w, k);
    CheckFound(k, where);
    if (where.slot < 0) {
      ++g_stats.not_found;  // kNotFound
    } else {
      SeqlockWrite(where.bucket, where.slot, k, false, 0, 0);  // the commit point
      SetTag(where.bucket, where.slot, 0);
    }
    UnlockAll(w);
  }

  void WriterThread(int index) {
    Writer w;
    w.lock_word = (uint64_t(index) + 1) << 32 | 7;  // (process index + 1) << 32 | incarnation
    const Ops& script = g_scn.script[index];
    for (int n = 0; n < script.n; ++n) {
      switch (script.op[n]) {
        case Op::kAdd:
          FetchAdd(w, script.key[n]);
          break;
        case Op::kInsert:
          Insert(w, script.key[n]);
          break;
        case Op::kErase:
          Erase(w, script.key[n]);
          break;
      }
    }
  }

  // After every thread: the table is what the keys' histories say. Relaxed loads:
  // Relacy runs after() when every thread has finished, behind a global fence.
  void CheckFinal() {
    int key_in[kBuckets][kSlots] = {};
    int found[kMaxKeys] = {};
    for (int b = 0; b < kBuckets; ++b) {
      const uint64_t tags = meta[b].tags($).load(rl::mo_relaxed);
      for (uint32_t i = 0; i < kSlots; ++i) {
        Slot& s = slots[b][i];
        const uint64_t seq = s.seq($).load(rl::mo_relaxed);
        CHECK((seq & 1) == 0, "final: odd sequence");
        const uint64_t len = CopyOf(s, seq)[kLen]($).load(rl::mo_relaxed);
        if ((len & kLow) == 0) {
          CHECK(TagByte(tags, i) == 0, "final: an empty slot has a tag");
          continue;
        }
        const uint64_t key = CopyOf(s, seq)[kKeyWord]($).load(rl::mo_relaxed);
        const int k = static_cast<int>(key - KeyWord(0));
        CHECK(k > 0 && k < kMaxKeys && Key(k).tag != 0, "final: a slot holds no known key");
        CHECK(TagByte(tags, i) == Key(k).tag, "final: a slot's tag is not its key's");
        key_in[b][i] = k;
        ++found[k];
      }
    }
    for (int k = 1; k < kMaxKeys; ++k) {
      CHECK(found[k] == (spec[k].present ? 1 : 0),
            "final: a key is in another number of slots than its history says");
    }
    for (int b = 0; b < kBuckets; ++b) {
      for (uint32_t i = 0; i < kSlots; ++i) {
        const int k = key_in[b][i];
        if (k == 0) continue;
        Slot& s = slots[b][i];
        rl::atomic<uint64_t>* c = CopyOf(s, s.seq($).load(rl::mo_relaxed));
        CHECK((c[kLen]($).load(rl::mo_relaxed) >> 32) == spec[k].stamp,
              "final: a key's copy is not its last write's");
        CHECK((c[kValue]($).load(rl::mo_relaxed) & kLow) == spec[k].adds,
              "final: a key's counter is not 1 + the adds since its insert (a lost update or key)");
      }
    }
  }
};

struct BucketTest : rl::test_suite<BucketTest, kWriters + 1> {
  Table t;
  void before() {
    g_failure = nullptr;
    t.Init();
  }
  void thread(unsigned index) {
    if (index < kWriters) {
      t.WriterThread(static_cast<int>(index));
    } else {
      t.ReaderThread();
    }
  }
  void after() { t.CheckFinal(); }
};

// ---------------------------------------------------------------------------------
// Running.

bool g_verbose = false;
uint64_t g_total_iterations = 0;

struct RunResult {
  bool passed;
  uint64_t iterations;
  const char* failure;  // which check, when it failed
};

RunResult Run(rl::scheduler_type_e sched, uint64_t iterations, unsigned bound,
              bool print_history = false) {
  // Relacy replaces operator new while it simulates: its output goes to stdout or
  // nowhere, never to a stream that allocates.
  static std::ostream null_stream(nullptr);
  rl::test_params p;
  p.search_type = sched;
  p.iteration_count = iterations;
  p.context_bound = bound;
  p.execution_depth_limit = 10000;
  p.output_stream = print_history || g_verbose ? &std::cout : &null_stream;
  p.progress_stream = &null_stream;
  const bool ok = rl::simulate<BucketTest>(p);
  std::cout.flush();
  RunResult r{ok, static_cast<uint64_t>(p.stop_iteration), ""};
  if (!ok) {
    static char other[64];
    std::snprintf(other, sizeof other, "relacy: %s", rl::test_result_str(p.test_result));
    r.failure = g_failure != nullptr ? g_failure : other;
  }
  return r;
}

const char* SchedName(rl::scheduler_type_e s) {
  switch (s) {
    case rl::sched_random:
      return "random";
    case rl::sched_bound:
      return "context-bound";
    case rl::sched_full:
      return "full-search";
    default:
      return "?";
  }
}

// .bazelrc's test:asan / test:tsan / test:ubsan set SHMDICT_SANITIZED (see CheckEngine).
bool Sanitized() {
  const char* s = std::getenv("SHMDICT_SANITIZED");
  return s != nullptr && s[0] != '\0' && s[0] != '0';
}
uint64_t Budget(uint64_t n) { return Sanitized() ? (n / 10 > 0 ? n / 10 : 1) : n; }

bool Expect(const char* name, bool want_pass, rl::scheduler_type_e sched, uint64_t iters,
            unsigned bound = 1) {
  const RunResult r = Run(sched, iters, bound);
  g_total_iterations += r.iterations;
  std::printf("%-44s %-7s %-13s %8llu executions  ", name, g_scn.name, SchedName(sched),
              static_cast<unsigned long long>(r.iterations));
  if (want_pass) {
    std::printf("%s\n", r.passed ? "ok" : "FAILED");
  } else if (r.passed) {
    std::printf("NOT CAUGHT\n");
  } else {
    std::printf("caught: %s\n", r.failure);
  }
  if (want_pass && !r.passed) {
    std::printf("  failed check: %s; the failing execution:\n", r.failure);
    std::fflush(stdout);
    Run(sched, iters, bound, /*print_history=*/true);
  }
  std::fflush(stdout);
  return r.passed == want_pass;
}

void PrintStats() {
  const Stats& s = g_stats;
  std::printf(
      "  reader: %llu home hits, %llu scan hits, %llu absent, %llu retries; writers: "
      "hint held %llu, stale %llu, none %llu; %llu inserts (%llu into a slot another "
      "key left, %llu of an erased key), %llu kExists, %llu kNotFound\n",
      (unsigned long long)s.home_hits, (unsigned long long)s.scan_hits,
      (unsigned long long)s.absent, (unsigned long long)s.retries, (unsigned long long)s.hint_held,
      (unsigned long long)s.hint_stale, (unsigned long long)s.no_hint,
      (unsigned long long)s.inserts, (unsigned long long)s.reused_slots,
      (unsigned long long)s.moves, (unsigned long long)s.exists, (unsigned long long)s.not_found);
  g_stats = Stats{};
}

using ScenarioFn = Scenario (*)();
const ScenarioFn kScenarios[] = {Home, Insert, Reuse, Stale, Move};

// Whether `name` is in the comma-separated `list` (nullptr: every name).
bool Listed(const char* list, const char* name) {
  if (list == nullptr) return true;
  const size_t n = std::strlen(name);
  for (const char* p = list; *p != '\0';) {
    const char* end = std::strchr(p, ',');
    const size_t len = end != nullptr ? static_cast<size_t>(end - p) : std::strlen(p);
    if (len == n && std::strncmp(p, name, n) == 0) return true;
    p += len + (end != nullptr ? 1 : 0);
  }
  return false;
}

// The engine: each listed scenario, random and exhaustive with one preemption (two
// make the smallest scenario's search 150 times longer); "tsan": the TSan build's
// orders on the reader scenarios. Sanitizer builds run the random searches only, at a
// tenth: the model is not instrumented there (BUILD.bazel), the same code runs in full
// in the normal build, and the sanitizer runtimes make each execution about 8 times
// slower.
bool CheckEngine(const char* list) {
  bool ok = true;
  for (const ScenarioFn f : kScenarios) {
    g_cfg = Config{};
    g_scn = f();
    if (!Listed(list, g_scn.name)) continue;
    ok &= Expect("engine", true, rl::sched_random, Budget(100000));
    if (!Sanitized()) ok &= Expect("engine", true, rl::sched_bound, 0, 1);
    PrintStats();
  }
  if (Listed(list, "tsan")) {
    // core/words.h's TSan build: acquire payload loads, release payload stores, no
    // fences, acquire second sequence loads.
    g_cfg = Config{};
    g_cfg.payload_load = kPayloadLoad_tsan;
    g_cfg.payload_store = kPayloadStore_tsan;
    g_cfg.home_fence = g_cfg.scan_fence = g_cfg.writer_fence = false;
    g_cfg.home_s2_load = SlotReadValid_s2_load_tsan;
    g_cfg.scan_s2_load = SlotReadValid_s2_load_tsan;
    for (const ScenarioFn f : {Home, Reuse}) {
      g_scn = f();
      ok &= Expect("engine, TSan-build orders", true, rl::sched_random, Budget(50000));
    }
    PrintStats();
  }
  return ok;
}

// ---------------------------------------------------------------------------------
// Mutants: each breaks one step; the checker must find a failing execution.

struct Mutant {
  const char* name;
  void (*mutate)(Config&);
  ScenarioFn scenario;
  // The check that must catch it: a prefix of its message (for a deadlock, Relacy's
  // own verdict: the spinning writers exceed the execution depth, "LIVELOCK").
  const char* caught_by;
  uint64_t iterations;  // random-scheduler budget (a catch usually comes far sooner)
  rl::scheduler_type_e sched = rl::sched_random;
  unsigned bound = 1;  // preemptions, for sched_bound
  // false: a change the model shows to be harmless (the comment says why); it then
  // runs every scenario and none may fail.
  bool expect_caught = true;
};

// With the writers' checks under the lock off: the mutant is caught by what readers
// and the final state show.
void Observed(Config& c) { c.writer_checks = false; }

const Mutant kMutants[] = {
    // (a) The home-slot read.
    // (a1) ReadHome returns a hit without validating it (no fence, no second
    // sequence load): a copy being rewritten under it is returned torn.
    {"(a1) home read not validated", [](Config& c) { c.home_validated = false; }, Home, "torn",
     200000},
    // (a2) ReadHome's first sequence load relaxed: the copy it selects may be read as
    // it was before the write that the sequence published.
    {"(a2) home read's s1 relaxed", [](Config& c) { c.home_s1_load = rl::mo_relaxed; }, Home,
     "torn", 200000},
    // (a3) A home slot that carries the key's tag and validly holds another key ends
    // the lookup ("absent") instead of leaving it to the tag scan: B, present
    // throughout in L1, is missed behind A in its home slot L0.
    {"(a3) home read decides absent", [](Config& c) { c.home_miss_is_absent = true; }, Home,
     "missed", 0, rl::sched_bound, 1},
    // (a4) ReadHome without its acquire fence: the second sequence load may miss a
    // write that began while the copy was read.
    {"(a4) home read's fence removed", [](Config& c) { c.home_fence = false; }, Home, "torn",
     200000},
    // (b) The two-bucket insert.
    // (b1) LocateAndLock takes the lock-free lookup's "absent" as final (no FindLocked
    // under the two locks): two inserts of one key both insert it ...
    {"(b1) absent hint not rechecked", [](Config& c) { c.trust_absent_hint = true; }, Insert,
     "stale", 200000},
    // ... which leaves the key in two slots.
    {"(b1') the same, observed",
     [](Config& c) {
       c.trust_absent_hint = true;
       Observed(c);
     },
     Insert, "final", 200000},
    // (b2) A writer whose hinted slot no longer holds the key keeps the hinted bucket
    // (here the right one) locked and locks the other after it: against a writer that
    // locks left, then right (an insert), the two deadlock.
    {"(b2) stale hint's lock kept (lock order)", [](Config& c) { c.keep_stale_hint_lock = true; },
     Stale, "relacy: LIVELOCK", 200000},
    // (b3) The insert picks its slot from tags read before locking: two inserts of
    // different keys whose buckets overlap pick the same free slot ...
    {"(b3) insert slot chosen before locking",
     [](Config& c) { c.free_slots_before_locking = true; }, Insert, "duplicate", 200000},
    // ... and the second overwrites the first.
    {"(b3') the same, observed",
     [](Config& c) {
       c.free_slots_before_locking = true;
       Observed(c);
     },
     Insert, "final", 200000},
    // (c) A slot freed and reused by another key.
    // (c1) The reader finds the key in one validated snapshot and reads the value in
    // a second one of the same slot: A's slot, erased meanwhile, yields an empty
    // value for A ...
    {"(c1) key and value from two snapshots", [](Config& c) { c.split_snapshot = 1; }, Reuse,
     "wrong key: a hit returned an erased slot's empty copy", 200000},
    // ... and with an empty second copy taken as "absent": A's slot, erased and
    // reused by B meanwhile, yields B's value for A.
    {"(c1') the same, empty second copy = absent", [](Config& c) { c.split_snapshot = 2; }, Reuse,
     "wrong key: a lookup returned another key's value", 200000},
    // (c2) The reader trusts the tag and the length word, not the key words: B, in
    // A's old slot with A's tag, is returned for A.
    {"(c2) key words not compared", [](Config& c) { c.compare_key_words = false; }, Reuse,
     "wrong key: a lookup returned another key's value", 200000},
    // (d) The writers' lock-free lookup and the recheck under the lock.
    // (d1) The hinted slot is trusted without HoldsKeyLocked: a writer whose hint went
    // stale (A erased meanwhile) writes A into a slot that no longer holds it ...
    {"(d1) hinted slot not rechecked", [](Config& c) { c.recheck_hint = false; }, Stale, "stale",
     200000},
    // ... an untagged slot, where no reader finds it.
    {"(d1') the same, observed",
     [](Config& c) {
       c.recheck_hint = false;
       Observed(c);
     },
     Stale, "final", 200000},
    // (d2) FetchAdd adds to the value its lock-free lookup read (the hinted slot is
    // rechecked, the value is not re-read): two adders lose an update.
    {"(d2) FetchAdd adds to the hint's value", [](Config& c) { c.value_from_hint = true; }, Home,
     "lost update", 200000},
    {"(d2') the same, observed",
     [](Config& c) {
       c.value_from_hint = true;
       Observed(c);
     },
     Home, "final: a key's counter", 200000},
    // (d3) An update's version from the clock read before locking: two updates of a
    // key get the same version. (Only the key's history shows it: a reader would
    // have to read both writes.)
    {"(d3) version from the clock before locking", [](Config& c) { c.version_from_hint = true; },
     Home, "version", 200000},
    // (d4) A (re-)insert's version from the chosen bucket's clock only: A re-inserted
    // into R (whose clock is behind L's) gets a version below its earlier ones ...
    {"(d4) insert version from one clock", [](Config& c) { c.insert_version_one_clock = true; },
     Move, "version", 200000},
    // ... which a reader that saw the earlier version sees go back.
    {"(d4') the same, observed",
     [](Config& c) {
       c.insert_version_one_clock = true;
       Observed(c);
     },
     Move, "went back", 200000},
    // Harmless, as the engine's comments say: the home read's tag check is a filter
    // (in a sound file a slot holding the key carries its tag) ...
    {"(n1) home read without its tag filter", [](Config& c) { c.home_tag_filter = false; }, nullptr,
     "", 50000, rl::sched_random, 1, false},
    // ... and the writers' lock-free lookup is a hint: relaxed loads there can only
    // make it stale, and the recheck under the lock decides.
    {"(n2) writers' lock-free lookup relaxed",
     [](Config& c) { c.where_s_load = c.where_tag_load = rl::mo_relaxed; }, nullptr, "", 50000,
     rl::sched_random, 1, false},
};

bool CheckMutants(const char* only) {
  bool ok = true;
  for (const Mutant& m : kMutants) {
    if (only != nullptr && std::strncmp(m.name, only, std::strlen(only)) != 0) continue;
    if (!m.expect_caught) {
      // Every scenario: none may fail.
      for (const ScenarioFn f : kScenarios) {
        g_cfg = Config{};
        m.mutate(g_cfg);
        g_scn = f();
        ok &= Expect(m.name, /*want_pass=*/true, rl::sched_random, Budget(m.iterations));
      }
      continue;
    }
    g_cfg = Config{};
    m.mutate(g_cfg);
    g_scn = m.scenario();
    const RunResult r = Run(m.sched, m.iterations, m.bound);
    g_total_iterations += r.iterations;
    const bool right_check =
        !r.passed && std::strncmp(r.failure, m.caught_by, std::strlen(m.caught_by)) == 0;
    std::printf("%-44s %-7s %-13s %8llu executions  %s%s\n", m.name, g_scn.name, SchedName(m.sched),
                static_cast<unsigned long long>(r.iterations),
                r.passed      ? "NOT CAUGHT"
                : right_check ? "caught: "
                              : "caught by another check: ",
                r.passed ? "" : r.failure);
    if (!r.passed && !right_check) std::printf("  expected: %s\n", m.caught_by);
    ok &= right_check;
  }
  g_stats = Stats{};
  return ok;
}

}  // namespace model

extern "C" void __lsan_disable() __attribute__((weak));

// bucket_model [engine [<scenario>,...]|mutants [<mutant name prefix>]|all] [-v]
//   scenarios: home, insert, reuse, stale, move, tsan (the TSan build's orders)
//   (-v prints Relacy's output, with the history of a failing execution)
int main(int argc, char** argv) {
  using namespace model;
  const char* args[4] = {};
  int nargs = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-v") == 0) {
      g_verbose = true;
    } else if (nargs < 4) {
      args[nargs++] = argv[i];
    }
  }
  const char* mode = nargs > 0 ? args[0] : "all";
  const char* only = nargs > 1 ? args[1] : nullptr;
  auto is = [&](const char* m) { return std::strcmp(mode, m) == 0; };
  if (!is("engine") && !is("mutants") && !is("all")) {
    std::printf("unknown mode %s\n", mode);
    return 2;
  }
  // Relacy never frees its fibers' stacks; LeakSanitizer (linked in the ASan build)
  // would report them at exit.
  if (&__lsan_disable != nullptr) __lsan_disable();
  if (Sanitized()) {
    std::printf(
        "sanitizer build (SHMDICT_SANITIZED): the model is compiled without sanitizer "
        "instrumentation (see BUILD.bazel); its engine checks run the random search "
        "only, at a tenth of its budget; mutants run in full (those shown harmless: a "
        "tenth)\n");
  }
  bool ok = true;
  if (is("engine") || is("all")) ok &= CheckEngine(is("engine") ? only : nullptr);
  if (is("mutants") || is("all")) ok &= CheckMutants(is("mutants") ? only : nullptr);
  std::printf("total explored executions: %llu\n",
              static_cast<unsigned long long>(g_total_iterations));
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
