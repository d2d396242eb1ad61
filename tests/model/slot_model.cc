// A Relacy model check of the slot protocol of core/table.cc: one bucket with one
// slot, the double-buffered seqlock, the bucket's tag and lock words, writers that
// insert, update and erase, writers that die at any step of a write (or of a
// recovery), the writers that take a dead writer's lock over and repair the bucket,
// and a lock-free reader running all along. Then mutants: weakened orders and
// swapped steps that the checker must catch.
//
// What is modelled, in the engine's memory orders (the normal build; the TSan build's
// orders are run too). The orders are the ENGINE_ORDER lines below, which
// model_sync_test.py compares with core/ through protocol_orders.txt:
//
//   Lookup        tag load (acquire) -> seqlock read: s1 (acquire), the copy that
//                 s1 selects (relaxed word loads in the engine's order: length word,
//                 key, version, value words), acquire fence, s2 (relaxed), valid iff
//                 s2 <= (s1 | 1) + 1, else retry
//   WriteCopy     s (relaxed), s + 1 (release), release fence, payload (relaxed, in
//                 the engine's order), s + 2 (release)
//   WriteEmptyCopy   the same with an empty copy (length word, version)
//   SetTag        relaxed load, release store
//   LockBucket    CAS acq_rel (failure relaxed), relaxed hint loads, the take-over
//                 CAS from the dead holder's word (after HolderIsDead), RecoverBucket
//   UnlockBucket  release store of 0
//   RecoverBucket s (acquire); odd -> s + 3 (release); tag (relaxed); a tagged slot
//                 whose current copy is empty (relaxed loads) -> SetTag(0)
//   Put / Erase   FindLocked (relaxed) under the lock; insert = SetTag, then
//                 WriteCopy; update = WriteCopy; erase = WriteEmptyCopy, then SetTag(0)
//
// Simplifications, each harmless for the slot protocol:
//   - One bucket, one slot, one key K. The tag word holds just this slot's tag byte.
//   - A copy is 5 words: version, length word, key, value0, value1. The write with
//     stamp g stores {g, 1 | g << 32, K, g, g}, so "all words agree" is the
//     committed-value test; an empty copy is {0, g << 32, ...} (low half 0 = no key,
//     as in the engine). The high halves of the length word and the tag word carry
//     the ghost stamp (the engine stores vlen there, resp. nothing): values differ
//     from the engine's, accesses and orders do not.
//   - Versions are the stamps, from a ghost counter advanced under the lock. (The
//     engine's bucket clock is read and written under the lock with relaxed
//     accesses; it plays no part in the seqlock.)
//   - LookupWhere (the writers' optimistic hint before locking) is left out: it is
//     rechecked under the lock. So is the "every 64 rounds" of the liveness check.
//   - A writer's death: the thread stops after crash_at of its protocol stores
//     (counted from taking the lock, take-over and recovery included) and never
//     unlocks. HolderIsDead is a ghost word per writer that the dying thread stores
//     with release and a taker loads with acquire: the kernel releases a dead
//     process's OFD lock at its exit, and F_OFD_GETLK (or the acquire load of the
//     reclaimed entry's incarnation) observes that, which orders everything the
//     dead process did before the check. Recovery rests on that ordering: without
//     it (mutant (l)) the taker may read a stale even sequence or a stale tag and
//     repair nothing; with it, RecoverBucket's acquire load and the lock CAS's
//     release half are redundant (mutants (n), (o), not caught).
//
// Checks (CHECK below; the first one that fails is reported by name):
//   torn        every snapshot the reader accepts is one state: a present copy's
//               words all agree (and the key is K), an empty copy has length 0;
//   uncommitted that state was committed (its commit store ran before the reader
//               accepted it), or is the initial one;
//   went back   the states a reader sees in successive lookups never go back (their
//               stamps never decrease; a tag of 0 is "absent" at its stamp):
//               linearizability-lite;
//   damage      after a recovery, under the lock: tag 0 <=> empty current copy,
//               sequence even (Table::Verify's "damage"); and a writer never finds
//               an orphan tag under the lock.
//
// Relacy (relacy-dev, header-only) implements C++11's memory model with a bounded
// history per atomic (3 values: a load may return one older value than the newest
// it may not skip under the exhaustive schedulers, two under the random one), so
// this is bounded model checking, not a proof. Relacy counts a later relaxed store by
// the same thread into a release sequence (C++11; C++20 dropped that): mutant (d)
// needs two writer threads for that reason; the engine relies on no release
// sequence (every sequence and tag store is a release store).
#include <relacy/relacy.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iostream>

namespace model {

// ---------------------------------------------------------------------------------
// The engine's orders (normal build). model_sync_test.py reads these lines and
// compares them with protocol_orders.txt, which it also compares with core/.

#define ENGINE_ORDER(fn, step, mo) \
  inline constexpr rl::memory_order fn##_##step = rl::mo_##mo;

ENGINE_ORDER(LoadTags, load, acquire)
ENGINE_ORDER(SlotReadBegin, s1_load, acquire)
ENGINE_ORDER(SlotReadValid, s2_load, relaxed)
ENGINE_ORDER(SlotReadValid, s2_load_tsan, acquire)
ENGINE_ORDER(SlotWriteBegin, seq_load, relaxed)
ENGINE_ORDER(SlotWriteBegin, begin_store, release)
ENGINE_ORDER(SlotWriteCommit, commit_store, release)
ENGINE_ORDER(StoreTag, load, relaxed)
ENGINE_ORDER(StoreTag, store, release)
ENGINE_ORDER(LockBucket, cas, acq_rel)
ENGINE_ORDER(LockBucket, cas_failure, relaxed)
ENGINE_ORDER(LockBucketSlow, hint_load, relaxed)
ENGINE_ORDER(UnlockBucket, store, release)
ENGINE_ORDER(RecoverBucket, seq_load, acquire)
ENGINE_ORDER(RollForwardSlot, store, release)
ENGINE_ORDER(LoadTagsLocked, load, relaxed)
ENGINE_ORDER(SlotSeqLocked, load, relaxed)
ENGINE_ORDER(HolderIsDead, incarnation_load, acquire)
ENGINE_ORDER(kPayloadLoad, normal, relaxed)  // core/words.h, normal build
ENGINE_ORDER(kPayloadStore, normal, relaxed)
ENGINE_ORDER(kPayloadLoad, tsan, acquire)  // core/words.h, TSan build
ENGINE_ORDER(kPayloadStore, tsan, release)
ENGINE_ORDER(WriterReleaseFence, fence, release)
ENGINE_ORDER(ReaderAcquireFence, fence, acquire)

// Where the fences are called (ENGINE_FENCE: the function calls the fence function).
#define ENGINE_FENCE(fn, step, fence_fn) inline constexpr bool fn##_##step = true;
ENGINE_FENCE(SlotReadValid, reader_fence, ReaderAcquireFence)
ENGINE_FENCE(SlotWriteBegin, begin_fence, WriterReleaseFence)

// RecoverBucket rolls an odd sequence s forward to s + 3.
#define ENGINE_TEXT(fn, step, value) inline constexpr uint64_t fn##_##step = value;
ENGINE_TEXT(RollForwardSlot, add, 3)

// ---------------------------------------------------------------------------------
// Configuration: the engine's orders by default; mutants change one thing.

struct WriteOrders {
  rl::memory_order seq_load;
  rl::memory_order begin_store;
  bool begin_fence;
  rl::memory_order commit_store;
};

struct Config {
  // Reader (Lookup).
  rl::memory_order tag_load = LoadTags_load;
  rl::memory_order s1_load = SlotReadBegin_s1_load;
  bool reader_fence = SlotReadValid_reader_fence;
  rl::memory_order s2_load = SlotReadValid_s2_load;
  bool wide_validation = false;  // mutant: accept s2 <= s1 + 3
  // Payload words (core/words.h).
  rl::memory_order payload_load = kPayloadLoad_normal;
  rl::memory_order payload_store = kPayloadStore_normal;
  // Writers.
  WriteOrders copy{SlotWriteBegin_seq_load, SlotWriteBegin_begin_store, SlotWriteBegin_begin_fence,
                   SlotWriteCommit_commit_store};
  WriteOrders empty{SlotWriteBegin_seq_load, SlotWriteBegin_begin_store,
                    SlotWriteBegin_begin_fence, SlotWriteCommit_commit_store};
  rl::memory_order tag_store = StoreTag_store;
  bool insert_copy_first = false;  // mutant: insert writes the copy, then the tag
  bool erase_tag_first = false;    // mutant: erase clears the tag, then the copy
  // Locks and recovery.
  rl::memory_order lock_cas = LockBucket_cas;
  rl::memory_order unlock_store = UnlockBucket_store;
  rl::memory_order recover_seq_load = RecoverBucket_seq_load;
  rl::memory_order recover_store = RollForwardSlot_store;
  uint64_t rollback_add = RollForwardSlot_add;
  bool kernel_death_sync = true;  // see "A writer's death" above
  bool verify_after_recovery = true;
};

// The scenario a test suite runs (set before rl::simulate, constant during it).
// Nothing here allocates: Relacy replaces operator new/delete (see BUILD.bazel).
enum class Op { kPut, kErase };
struct Ops {
  int n = 0;
  Op op[4] = {};
  Ops() = default;
  Ops(std::initializer_list<Op> ops) {
    for (Op o : ops) op[n++] = o;
  }
};
constexpr int kMaxWriters = 3;
struct Scenario {
  int writers = 2;  // writer threads; the reader is the next thread
  Ops script[kMaxWriters];
  // dies[i]: writer i dies in its last op (counting from the lock acquisition that
  // precedes it, a take-over and its recovery included), after crash_at[i]
  // protocol stores; crash_at[i] = the op's store count: before unlocking.
  bool dies[kMaxWriters] = {};
  int crash_at[kMaxWriters] = {};
  int lookups = 3;   // by the reader thread
  bool start_present = false;  // the slot starts with K committed (stamp 1)
};

Config g_cfg;
Scenario g_scn;
const char* g_failure = nullptr;  // which CHECK failed last

// What the explored executions did (summed over all runs): shows that the checks
// are not vacuous.
struct Stats {
  uint64_t lookups_present = 0, lookups_absent_tag = 0, lookups_absent_slot = 0;
  uint64_t odd_s1 = 0, retries = 0;
  uint64_t takeovers = 0, rollbacks = 0, orphan_tags_cleared = 0;
  uint64_t takeovers_from_taker = 0;  // a lock taken over from a dead taker
};
Stats g_stats;

#define CHECK(cond, what)                                                         \
  do {                                                                            \
    if (!(cond)) {                                                                \
      g_failure = what;                                                           \
      RL_ASSERT_IMPL(false, rl::test_result_user_assert_failed, what, RL_INFO);   \
    }                                                                             \
  } while (0)

constexpr uint64_t kTag = 0x5A;        // K's tag byte
constexpr uint64_t kKey = 0x4B4559;    // K's key word
constexpr uint64_t kLow = 0xFFFFFFFFu;
enum Word { kVersion = 0, kLen = 1, kKeyWord = 2, kVal0 = 3, kVal1 = 4, kWords = 5 };
constexpr int kMaxStamps = 16;

struct Died {};  // thrown where a writer dies; caught at the top of its thread

struct Writer {
  uint64_t lock_word;
  int crash_at;
  bool dying = false;  // in the op it dies in
  int steps = 0;
};

// Writer i's lock word: (process-table index + 1) << 32 | incarnation.
constexpr uint64_t WordOf(int i) { return (uint64_t(i) + 1) << 32 | (7 + uint64_t(i)); }

// ---------------------------------------------------------------------------------
// One bucket with one slot, and the protocol on it.

struct Bucket {
  rl::atomic<uint64_t> lock;
  rl::atomic<uint64_t> tag;  // tag byte | ghost stamp << 8
  rl::atomic<uint64_t> seq;
  rl::atomic<uint64_t> copy[2][kWords];
  rl::atomic<uint64_t> dead[kMaxWriters];  // ghost: the kernel's view of each writer

  // Ghost state (plain memory: Relacy runs one thread at a time, and code between
  // two atomic operations runs without a switch).
  uint64_t next_stamp = 0;
  bool committed[kMaxStamps] = {};

  void Init() {
    lock($).store(0, rl::mo_relaxed);
    for (auto& d : dead) d($).store(0, rl::mo_relaxed);
    for (int c = 0; c < 2; ++c) {
      for (int w = 0; w < kWords; ++w) copy[c][w]($).store(0, rl::mo_relaxed);
    }
    committed[0] = true;  // the initial empty copies
    next_stamp = 0;
    if (g_scn.start_present) {
      // K committed by write 1 into copy 1 (sequence 2).
      copy[1][kVersion]($).store(1, rl::mo_relaxed);
      copy[1][kLen]($).store(1 | (uint64_t{1} << 32), rl::mo_relaxed);
      copy[1][kKeyWord]($).store(kKey, rl::mo_relaxed);
      copy[1][kVal0]($).store(1, rl::mo_relaxed);
      copy[1][kVal1]($).store(1, rl::mo_relaxed);
      seq($).store(2, rl::mo_relaxed);
      tag($).store(kTag | (uint64_t{1} << 8), rl::mo_relaxed);
      committed[1] = true;
      next_stamp = 1;
    } else {
      seq($).store(0, rl::mo_relaxed);
      tag($).store(0, rl::mo_relaxed);
    }
  }

  rl::atomic<uint64_t>* CopyOf(uint64_t s) { return copy[(s >> 1) & 1]; }

  uint64_t LoadWord(rl::atomic<uint64_t>& w) { return w($).load(g_cfg.payload_load); }
  void StoreWord(rl::atomic<uint64_t>& w, uint64_t v) {
    w($).store(v, g_cfg.payload_store);
  }

  // A crash point: the dying writer stops after crash_at protocol stores.
  static void Point(Writer& w) {
    if (w.dying && w.steps++ == w.crash_at) throw Died{};
  }

  // ---- Reader ----

  struct Observation {
    bool present;
    uint64_t stamp;
  };

  Observation Lookup() {
    const uint64_t t = tag($).load(g_cfg.tag_load);
    if ((t & 0xFF) != kTag) {
      ++g_stats.lookups_absent_tag;
      return {false, t >> 8};
    }
    for (;;) {
      const uint64_t s1 = seq($).load(g_cfg.s1_load);
      if ((s1 & 1) != 0) ++g_stats.odd_s1;
      rl::atomic<uint64_t>* c = CopyOf(s1);
      const uint64_t len = LoadWord(c[kLen]);
      bool match = false;
      uint64_t version = 0, v0 = 0, v1 = 0;
      if ((len & kLow) == 1) {
        if (LoadWord(c[kKeyWord]) == kKey) {  // WordsEqual
          match = true;
          version = LoadWord(c[kVersion]);  // sink.Take(.., LoadWord(c))
          v0 = LoadWord(c[kVal0]);           // CopyFromWords
          v1 = LoadWord(c[kVal1]);
        }
      }
      if (g_cfg.reader_fence) rl::atomic_thread_fence(ReaderAcquireFence_fence, $);
      const uint64_t s2 = seq($).load(g_cfg.s2_load);
      const bool valid = g_cfg.wide_validation ? s2 <= s1 + 3 : s2 <= (s1 | 1) + 1;
      if (!valid) {
        ++g_stats.retries;
        continue;
      }
      if (match) {
        const uint64_t g = len >> 32;
        CHECK(version == g && v0 == g && v1 == g && g != 0, "torn: present copy's words disagree");
        CHECK(g < kMaxStamps && committed[g], "uncommitted: present copy never committed");
        ++g_stats.lookups_present;
        return {true, g};
      }
      // Only K ever lives in this slot: a present length with another key is torn.
      CHECK((len & kLow) == 0, "torn: present length without the key");
      CHECK((len >> 32) < kMaxStamps && committed[len >> 32],
            "uncommitted: empty copy never committed");
      ++g_stats.lookups_absent_slot;
      return {false, len >> 32};
    }
  }

  void ReaderThread() {
    Observation prev{false, 0};
    for (int i = 0; i < g_scn.lookups; ++i) {
      const Observation o = Lookup();
      CHECK(o.stamp >= prev.stamp, "went back: a lookup saw an older state than the one before");
      CHECK(o.stamp != prev.stamp || o.present == prev.present,
            "went back: one stamp, two states");
      prev = o;
    }
  }

  // ---- Writers ----

  void SetTag(Writer& w, uint64_t tag_byte, uint64_t ghost) {
    (void)tag($).load(StoreTag_load);  // the other slots' bytes (none here)
    tag($).store(tag_byte | (ghost << 8), g_cfg.tag_store);
    Point(w);
  }

  // WriteCopy (present = true, with stamp g) and WriteEmptyCopy (present = false).
  void SeqlockWrite(Writer& w, bool present, uint64_t g) {
    const WriteOrders& o = present ? g_cfg.copy : g_cfg.empty;
    const uint64_t s = seq($).load(o.seq_load);
    seq($).store(s + 1, o.begin_store);
    if (o.begin_fence) rl::atomic_thread_fence(WriterReleaseFence_fence, $);
    Point(w);
    rl::atomic<uint64_t>* c = CopyOf(s + 2);
    if (present) {
      StoreWord(c[kLen], 1 | (g << 32));
      Point(w);
      StoreWord(c[kVersion], g);
      Point(w);
      StoreWord(c[kKeyWord], kKey);
      Point(w);
      StoreWord(c[kVal0], g);
      Point(w);
      StoreWord(c[kVal1], g);
      Point(w);
    } else {
      StoreWord(c[kLen], g << 32);  // the engine stores 0: the stamp is a ghost
      Point(w);
      StoreWord(c[kVersion], 0);
      Point(w);
    }
    seq($).store(s + 2, o.commit_store);
    committed[g] = true;  // ghost, in the same step as the commit store
    Point(w);
  }

  // Table::Verify's damage check, under the lock: tag 0 <=> the current copy is empty.
  void VerifyLocked() {
    const uint64_t t = tag($).load(rl::mo_relaxed);
    const uint64_t s = seq($).load(rl::mo_relaxed);
    CHECK((s & 1) == 0, "damage: odd sequence under the lock");
    const uint64_t len = LoadWord(CopyOf(s)[kLen]);
    if ((t & 0xFF) == 0) {
      CHECK((len & kLow) == 0, "damage: untagged slot holds a key");
    } else {
      CHECK((len & kLow) == 1, "damage: tagged slot is empty (orphan tag)");
    }
  }

  // Under the lock: is K in the slot?
  bool FindLocked() {
    const uint64_t t = tag($).load(LoadTagsLocked_load);
    if ((t & 0xFF) != kTag) return false;
    const uint64_t s = seq($).load(SlotSeqLocked_load);
    rl::atomic<uint64_t>* c = CopyOf(s);
    if ((LoadWord(c[kLen]) & kLow) != 1) {
      // A tagged empty slot under the lock: the engine's insert would find no free
      // slot (kFull) in this one-slot bucket. Recovery removes such tags.
      CHECK(false, "damage: tagged slot is empty (orphan tag)");
    }
    return LoadWord(c[kKeyWord]) == kKey;
  }

  void Put(Writer& w) {
    const uint64_t g = ++next_stamp;
    if (FindLocked()) {
      SeqlockWrite(w, true, g);  // update
    } else if (g_cfg.insert_copy_first) {
      SeqlockWrite(w, true, g);  // mutant order
      SetTag(w, kTag, g);
    } else {
      SetTag(w, kTag, g);  // insert: the slot is still empty
      SeqlockWrite(w, true, g);
    }
  }

  void Erase(Writer& w) {
    if (!FindLocked()) return;  // kNotFound
    const uint64_t g = ++next_stamp;
    if (g_cfg.erase_tag_first) {
      SetTag(w, 0, g);  // mutant order
      SeqlockWrite(w, false, g);
    } else {
      SeqlockWrite(w, false, g);  // the commit point
      SetTag(w, 0, g);
    }
  }

  bool HolderIsDead(uint64_t word) {
    for (int i = 0; i < g_scn.writers; ++i) {
      if (word == WordOf(i)) {
        return dead[i]($).load(g_cfg.kernel_death_sync ? HolderIsDead_incarnation_load
                                                       : rl::mo_relaxed) != 0;
      }
    }
    return false;
  }

  void RecoverBucket(Writer& w) {
    const uint64_t s = seq($).load(g_cfg.recover_seq_load);
    ++g_stats.takeovers;
    if ((s & 1) != 0) {
      seq($).store(s + g_cfg.rollback_add, g_cfg.recover_store);
      ++g_stats.rollbacks;
      Point(w);
    }
    const uint64_t t = tag($).load(LoadTagsLocked_load);
    if ((t & 0xFF) != 0) {
      const uint64_t s2 = seq($).load(SlotSeqLocked_load);
      const uint64_t len = LoadWord(CopyOf(s2)[kLen]);
      if ((len & kLow) == 0) {  // an orphan tag
        SetTag(w, 0, len >> 32);
        ++g_stats.orphan_tags_cleared;
      }
    }
    if (g_cfg.verify_after_recovery) VerifyLocked();
  }

  void LockBucket(Writer& w) {
    const rl::memory_order mo = g_cfg.lock_cas;
    const rl::memory_order fail = LockBucket_cas_failure;
    uint64_t cur = 0;
    if (lock($).compare_exchange_strong(cur, w.lock_word, mo, fail)) return;
    for (;;) {
      cur = lock($).load(LockBucketSlow_hint_load);
      if (cur == 0) {
        if (lock($).compare_exchange_weak(cur, w.lock_word, mo, fail)) return;
        continue;
      }
      if (HolderIsDead(cur)) {
        if (lock($).compare_exchange_strong(cur, w.lock_word, mo, fail)) {
          if (g_scn.writers == 3 && cur == WordOf(1)) ++g_stats.takeovers_from_taker;
          Point(w);  // a taker may die too, before or during its recovery
          RecoverBucket(w);
          return;
        }
        continue;
      }
      rl::yield(1, $);
    }
  }

  void UnlockBucket() { lock($).store(0, g_cfg.unlock_store); }

  void WriterThread(int index) {
    Writer w{WordOf(index), g_scn.crash_at[index]};
    const Ops& script = g_scn.script[index];
    try {
      for (int k = 0; k < script.n; ++k) {
        w.dying = g_scn.dies[index] && k + 1 == script.n;
        LockBucket(w);
        Point(w);
        if (script.op[k] == Op::kPut) {
          Put(w);
        } else {
          Erase(w);
        }
        if (w.dying) throw Died{};  // after its last store, before unlocking
        UnlockBucket();
      }
    } catch (const Died&) {
      // The process is gone; the kernel releases its OFD lock (the ghost word).
      dead[index]($).store(1, g_cfg.kernel_death_sync ? rl::mo_release : rl::mo_relaxed);
    }
  }
};

// Threads 0 .. kWriters-1 write, thread kWriters reads.
template <int kWriters>
struct SlotTest : rl::test_suite<SlotTest<kWriters>, kWriters + 1> {
  Bucket b;
  void before() {
    g_failure = nullptr;
    b.Init();
  }
  void thread(unsigned index) {
    if (index < kWriters) {
      b.WriterThread(static_cast<int>(index));
    } else {
      b.ReaderThread();
    }
  }
};

// ---------------------------------------------------------------------------------
// Running.

struct RunResult {
  bool passed;
  uint64_t iterations;
  const char* failure;  // which check, when it failed
};

bool g_verbose = false;

RunResult Run(rl::scheduler_type_e sched, uint64_t iterations, unsigned bound = 1,
              bool print_history = false) {
  // Relacy replaces operator new while it simulates, so its output must not go to a
  // stream that allocates (an ostringstream): it goes to stdout or nowhere.
  static std::ostream null_stream(nullptr);
  rl::test_params p;
  p.search_type = sched;
  p.iteration_count = iterations;
  p.context_bound = bound;
  p.execution_depth_limit = 10000;
  p.output_stream = print_history || g_verbose ? &std::cout : &null_stream;
  p.progress_stream = &null_stream;
  const bool ok = g_scn.writers == 3 ? rl::simulate<SlotTest<3>>(p)
                                     : rl::simulate<SlotTest<2>>(p);
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
    case rl::sched_random: return "random";
    case rl::sched_bound: return "context-bound";
    case rl::sched_full: return "full-search";
    default: return "?";
  }
}

// .bazelrc's test:asan / test:tsan / test:ubsan set SHMDICT_SANITIZED.
bool Sanitized() {
  const char* s = std::getenv("SHMDICT_SANITIZED");
  return s != nullptr && s[0] != '\0' && s[0] != '0';
}

}  // namespace model

// ---------------------------------------------------------------------------------
// The checks: the engine's orders must pass, every mutant must be caught.

namespace model {

// Iteration budgets. Sanitizer builds (SHMDICT_SANITIZED, set by .bazelrc's
// test:asan / test:tsan, or a sanitizer compile) run a tenth of the engine checks.
uint64_t Budget(uint64_t n) { return Sanitized() ? (n / 10 > 0 ? n / 10 : 1) : n; }

uint64_t g_total_iterations = 0;

bool Expect(const char* name, bool want_pass, rl::scheduler_type_e sched,
            uint64_t iters, unsigned bound = 1) {
  const RunResult r = Run(sched, iters, bound);
  g_total_iterations += r.iterations;
  const bool good = r.passed == want_pass;
  std::printf("%-46s %-13s %9llu executions  ", name, SchedName(sched),
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
  return good;
}

// Three writes and an erase by two writers, and a reader doing three lookups.
void WritersScenario() {
  g_scn = Scenario{};
  g_scn.script[0] = {Op::kPut, Op::kPut};
  g_scn.script[1] = {Op::kErase, Op::kPut};
  g_scn.lookups = 3;
}

// One writer inserts, erases and re-inserts; the reader looks up three times.
void Serial() {
  g_scn = Scenario{};
  g_scn.script[0] = {Op::kPut, Op::kErase, Op::kPut};
  g_scn.lookups = 3;
}

// Writer 0 runs `dead` and dies after `crash_at` stores of its last op (crash_at =
// the op's store count: dies before unlocking); writer 1 runs `taker`, taking the
// lock over and recovering the bucket when it finds the dead holder.
void DeathScenario(const Ops& dead, const Ops& taker, bool start_present, int crash_at) {
  g_scn = Scenario{};
  g_scn.dies[0] = true;
  g_scn.crash_at[0] = crash_at;
  g_scn.script[0] = dead;
  g_scn.script[1] = taker;
  g_scn.start_present = start_present;
  g_scn.lookups = 3;
}

struct DeathCase {
  const char* name;
  Ops dead;
  Ops taker;
  bool start_present;
  int max_crash_at;  // the dying op's store count (crash_at = it: before unlocking)
};

// The dying op is the dead writer's last one (whatever it turns out to be: the
// taker may run first and change the state). Crash points: after taking the lock
// (0), after each store of the op, and before unlocking (= after the last store): an
// insert has 8 stores (tag, begin, 5 payload words, commit), an update 7 (8 if it
// turns into an insert because the taker erased first), an erase 5 (begin, 2
// payload words, commit, tag).
const DeathCase kDeathCases[] = {
    {"insert dies", {Op::kPut}, {Op::kPut}, false, 8},
    {"re-insert dies", {Op::kPut, Op::kErase, Op::kPut}, {Op::kPut}, false, 8},
    {"update dies", {Op::kPut}, {Op::kPut, Op::kErase}, true, 8},
    {"erase dies", {Op::kErase}, {Op::kPut}, true, 5},
};

const char* DeathName(const DeathCase& c, int k) {
  static char name[64];
  std::snprintf(name, sizeof name, "death: %s after %d stores", c.name, k);
  return name;
}

void PrintStats() {
  const Stats& s = g_stats;
  std::printf(
      "  reader: %llu present, %llu absent by tag, %llu absent by slot, %llu odd s1, "
      "%llu retries; takeovers %llu (%llu from a dead taker), roll-backs %llu, orphan "
      "tags cleared %llu\n",
      (unsigned long long)s.lookups_present, (unsigned long long)s.lookups_absent_tag,
      (unsigned long long)s.lookups_absent_slot, (unsigned long long)s.odd_s1,
      (unsigned long long)s.retries, (unsigned long long)s.takeovers,
      (unsigned long long)s.takeovers_from_taker,
      (unsigned long long)s.rollbacks, (unsigned long long)s.orphan_tags_cleared);
  g_stats = Stats{};
}

// Preemption bound of the exhaustive runs: 2 (1 in sanitizer builds).
unsigned Bound() { return Sanitized() ? 1 : 2; }

// The engine's orders: writers with a concurrent reader.
bool CheckWriters() {
  bool ok = true;
  g_cfg = Config{};
  WritersScenario();
  ok &= Expect("writers: put,put | erase,put | 3 lookups", true, rl::sched_random,
               Budget(400000));
  // Exhaustive over the schedules with at most Bound() preemptions (and over
  // Relacy's choices of stale values for each load).
  ok &= Expect("writers: put,put | erase,put | 3 lookups", true, rl::sched_bound, 0,
               Bound());
  g_cfg = Config{};
  Serial();
  ok &= Expect("serial: put,erase,put | 3 lookups", true, rl::sched_bound, 0, Bound());
  PrintStats();
  // The TSan build's orders (acquire payload loads, release payload stores, no
  // fences, acquire s2): core/words.h says they are at least as strong.
  g_cfg = Config{};
  g_cfg.payload_load = kPayloadLoad_tsan;
  g_cfg.payload_store = kPayloadStore_tsan;
  g_cfg.reader_fence = false;  // the fence functions are empty under TSan
  g_cfg.copy.begin_fence = g_cfg.empty.begin_fence = false;
  g_cfg.s2_load = SlotReadValid_s2_load_tsan;
  WritersScenario();
  ok &= Expect("writers, TSan-build orders", true, rl::sched_random, Budget(200000));
  ok &= Expect("writers, TSan-build orders", true, rl::sched_bound, 0, 1);
  PrintStats();
  return ok;
}

// A writer dies mid-write; the writer that takes its lock over dies too, after each
// step of its recovery and its own write; a third writer takes over from it.
void DoubleDeathScenario(const DeathCase& c, int dead_crash_at, int taker_crash_at) {
  DeathScenario(c.dead, {Op::kPut}, c.start_present, dead_crash_at);
  g_scn.writers = 3;
  g_scn.dies[1] = true;
  g_scn.crash_at[1] = taker_crash_at;
  g_scn.script[2] = {Op::kPut};
}

// The engine's orders: a writer dies at every step of each kind of write.
bool CheckDeath() {
  bool ok = true;
  for (const DeathCase& c : kDeathCases) {
    for (int k = 0; k <= c.max_crash_at; ++k) {
      g_cfg = Config{};
      DeathScenario(c.dead, c.taker, c.start_present, k);
      ok &= Expect(DeathName(c, k), true, rl::sched_bound, 0, 1);
      ok &= Expect(DeathName(c, k), true, rl::sched_random, Budget(25000));
      if (k == 3 && !Sanitized()) {  // mid-payload: a deeper exhaustive run
        ok &= Expect(DeathName(c, k), true, rl::sched_bound, 0, 2);
      }
    }
  }
  PrintStats();
  return ok;
}

// Two deaths: the taker of a dead writer's lock dies too, and a third writer
// recovers after both.
bool CheckDoubleDeath() {
  bool ok = true;
  // The dead writer dies mid-payload (after 3 stores); the taker after 0 .. 3 stores
  // (0: right after its take-over CAS; then its roll-back store, its orphan-tag
  // store or its own write's first stores). The re-insert case is left out here
  // (its runs are twice as long).
  for (const DeathCase& c : kDeathCases) {
    if (c.dead.n > 1) continue;
    for (int t = 0; t <= 3; ++t) {
      g_cfg = Config{};
      DoubleDeathScenario(c, 3, t);
      char name[64];
      std::snprintf(name, sizeof name, "2 deaths: %s after 3, taker after %d", c.name, t);
      if (!Sanitized()) ok &= Expect(name, true, rl::sched_bound, 0, 1);
      ok &= Expect(name, true, rl::sched_random, Budget(20000));
    }
  }
  PrintStats();
  return ok;
}

// ---------------------------------------------------------------------------------
// Mutants. Each weakens one thing; the checker must find a failing execution.

struct Mutant {
  const char* name;
  void (*mutate)(Config&);
  void (*scenario)();
  uint64_t iterations;  // random-scheduler budget (a catch usually comes far sooner)
  rl::scheduler_type_e sched = rl::sched_random;
  unsigned bound = 1;   // preemptions, for sched_bound
  // false: a weakening the model shows to be harmless (the comment says why); the
  // check then runs every death scenario and expects none to fail.
  bool expect_caught = true;
};

void Writers() { WritersScenario(); }
// The dead writer updates (present at stamp 1 -> 2) and dies after 3 stores: the
// begin, the length word and the version are new, the key and values are not.
void UpdateDiesMidPayload() { DeathScenario({Op::kPut}, {Op::kPut, Op::kErase}, true, 3); }
// The dead writer updates and dies right after its begin store.
void UpdateDiesAfterBegin() { DeathScenario({Op::kPut}, {Op::kPut, Op::kErase}, true, 1); }
// The (mutant) erase clears the tag and dies before committing the empty copy
// (after 1 store: the tag).
void EraseDiesAfterTag() { DeathScenario({Op::kErase}, {Op::kPut}, true, 1); }
// The (mutant) erase dies after its tag and begin stores.
void EraseDiesAfterTagAndBegin() { DeathScenario({Op::kErase}, {Op::kPut}, true, 2); }
// Insert, erase, re-insert; the (mutant) re-insert commits its copy, then dies before
// publishing its tag (7 stores: begin, 5 words, commit).
void ReinsertDiesBeforeTag() {
  DeathScenario({Op::kPut, Op::kErase, Op::kPut}, {Op::kPut}, false, 7);
}
void NoVerify(Config& c) { c.verify_after_recovery = false; }

// (a) to (g) are the ones asked for; all are caught, like (h) to (m). (n) and (o)
// are not caught, as expected: see the comment above them.
const Mutant kMutants[] = {
    // (a) The reader's acquire fence removed (s2 stays relaxed): s2 may be stale
    // although a payload word came from a write that began after s1.
    {"(a) reader fence removed", [](Config& c) { c.reader_fence = false; }, Writers,
     400000},
    // (a') No fence, but an acquire s2: an acquire load does not order the payload
    // loads before it.
    {"(a') reader fence -> acquire s2",
     [](Config& c) {
       c.reader_fence = false;
       c.s2_load = rl::mo_acquire;
     },
     Writers, 400000},
    // (b) The writer's release fence after the begin store removed.
    {"(b) writer fence removed",
     [](Config& c) { c.copy.begin_fence = c.empty.begin_fence = false; }, Writers,
     400000},
    // (c) The commit store s + 2 relaxed: a reader that reads it may miss payload.
    {"(c) commit store relaxed",
     [](Config& c) { c.copy.commit_store = c.empty.commit_store = rl::mo_relaxed; },
     Writers, 400000},
    // (d) The begin store s + 1 relaxed: a reader that reads s + 1 reads the stable
    // copy, which the previous writer (another thread, through the lock) filled, and
    // may miss its words. (With a single writer thread Relacy would not catch it: it
    // counts that thread's relaxed s + 1 into the release sequence of its own earlier
    // commit, as C++11 did; C++20 does not, so the mutant is wrong there as well.)
    {"(d) begin store relaxed",
     [](Config& c) { c.copy.begin_store = c.empty.begin_store = rl::mo_relaxed; },
     Writers, 400000},
    // (e) Validation s2 <= s1 + 3: accepts a second write on the copy read.
    {"(e) validation s2 <= s1 + 3", [](Config& c) { c.wide_validation = true; },
     Writers, 400000},
    // (f1) Insert writes the copy, then the tag. No crash: a reader that matched an
    // old tag sees the re-inserted value, then the erase's cleared tag.
    {"(f1) insert: copy before tag", [](Config& c) { c.insert_copy_first = true; },
     Serial, 0, rl::sched_bound, 1},
    // (f1') The same, the re-insert dying between its commit and its tag: the key
    // was seen and is then absent for good.
    {"(f1') insert: copy before tag, dies",
     [](Config& c) {
       c.insert_copy_first = true;
       NoVerify(c);
     },
     ReinsertDiesBeforeTag, 400000},
    // (f2) Erase clears the tag, then writes the empty copy; it dies in between.
    // Caught by the damage check after recovery (tag 0, key present) ...
    {"(f2) erase: tag before copy, dies", [](Config& c) { c.erase_tag_first = true; },
     EraseDiesAfterTag, 400000},
    // ... and, without that check, by the reader: the taker's insert publishes a tag
    // on a slot still holding the erased key: absent, then the old value again.
    {"(f2') the same, reader-visible",
     [](Config& c) {
       c.erase_tag_first = true;
       NoVerify(c);
     },
     EraseDiesAfterTagAndBegin, 400000},
    // (g) Recovery stores s + 1: rolls forward into the half-written copy.
    {"(g) recovery stores s + 1", [](Config& c) { c.rollback_add = 1; },
     UpdateDiesMidPayload, 400000},
    {"(g') the same, dead after its begin only",
     [](Config& c) {
       c.rollback_add = 1;
       NoVerify(c);
     },
     UpdateDiesAfterBegin, 400000},
    // Beyond the list asked for:
    // The tag store relaxed (SetTag): a reader that sees a new tag may read the slot
    // as it was before the erase that preceded the insert.
    {"(h) tag store relaxed", [](Config& c) { c.tag_store = rl::mo_relaxed; }, Serial,
     0, rl::sched_bound, 1},
    // The reader's tag load relaxed.
    {"(i) reader tag load relaxed", [](Config& c) { c.tag_load = rl::mo_relaxed; },
     Serial, 0, rl::sched_bound, 1},
    // The reader's s1 load relaxed.
    {"(j) reader s1 load relaxed", [](Config& c) { c.s1_load = rl::mo_relaxed; },
     Writers, 400000},
    // The unlock store relaxed: the next holder may see stale slot state.
    {"(k) unlock store relaxed", [](Config& c) { c.unlock_store = rl::mo_relaxed; },
     Writers, 400000},
    // The death detection without ordering (the kernel's release of the OFD lock
    // made relaxed): recovery's own acquire load of the sequence does not make it
    // read the dead writer's last store.
    {"(l) death detection unordered",
     [](Config& c) { c.kernel_death_sync = false; }, UpdateDiesMidPayload, 400000},
    // The roll-back store s + 3 relaxed.
    {"(m) recovery store relaxed", [](Config& c) { c.recover_store = rl::mo_relaxed; },
     nullptr, 5000},
    // Harmless in the model: RecoverBucket's acquire load of the sequence, and the
    // release half of the lock CAS (which a taker's CAS would acquire), order nothing
    // that the death detection (kernel: the dead process's exit releases its OFD
    // lock, F_OFD_GETLK observes it) has not already ordered: the taker happens after
    // every store of the dead writer. Mutant (l) shows that this ordering is what
    // recovery rests on.
    {"(n) recovery seq load relaxed",
     [](Config& c) { c.recover_seq_load = rl::mo_relaxed; }, nullptr, 5000,
     rl::sched_random, 1, false},
    {"(o) lock CAS acquire only", [](Config& c) { c.lock_cas = rl::mo_acquire; },
     nullptr, 5000, rl::sched_random, 1, false},
};

bool CheckMutants(const char* only) {
  bool ok = true;
  for (const Mutant& m : kMutants) {
    if (only != nullptr && std::strncmp(m.name, only, std::strlen(only)) != 0) continue;
    if (m.scenario != nullptr) {
      g_cfg = Config{};
      m.mutate(g_cfg);
      m.scenario();
      ok &= Expect(m.name, /*want_pass=*/!m.expect_caught, m.sched, m.iterations,
                   m.bound);
      continue;
    }
    // Every death scenario at every crash point: exhaustive with one preemption,
    // then random.
    bool caught = false;
    uint64_t executions = 0;
    char why[256] = "";
    for (const DeathCase& c : kDeathCases) {
      for (int k = 0; k <= c.max_crash_at && !caught; ++k) {
        for (const rl::scheduler_type_e sched : {rl::sched_bound, rl::sched_random}) {
          if (sched == rl::sched_bound && Sanitized()) continue;
          g_cfg = Config{};
          m.mutate(g_cfg);
          DeathScenario(c.dead, c.taker, c.start_present, k);
          const RunResult r = Run(sched, Budget(m.iterations), 1);
          executions += r.iterations;
          if (!r.passed) {
            caught = true;
            std::snprintf(why, sizeof why, "%s, %s: %s", DeathName(c, k),
                          SchedName(sched), r.failure);
            break;
          }
        }
      }
    }
    g_total_iterations += executions;
    std::printf("%-46s %-13s %9llu executions  %s%s\n", m.name, "all deaths",
                static_cast<unsigned long long>(executions),
                caught ? "caught: " : "not caught",
                caught ? why : (m.expect_caught ? "" : " (expected: harmless)"));
    ok &= caught == m.expect_caught;
  }
  g_stats = Stats{};
  return ok;
}

}  // namespace model

extern "C" void __lsan_disable() __attribute__((weak));

// slot_model [writers|death|death2|mutants|all] [<mutant name prefix>] [-v]
// slot_model explore <writers|serial|death<case><crash_at>> <random|bound|full> <n>
//   (-v prints Relacy's output, with the history of a failing execution)
int main(int argc, char** argv) {
  using namespace model;
  const char* args[8] = {};
  int nargs = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-v") == 0) {
      g_verbose = true;
    } else if (nargs < 8) {
      args[nargs++] = argv[i];
    }
  }
  const char* mode = nargs > 0 ? args[0] : "all";
  auto is = [&](const char* m) { return std::strcmp(mode, m) == 0; };
  // Relacy never frees its fibers' stacks; LeakSanitizer (linked in the ASan build)
  // would report them at exit.
  if (&__lsan_disable != nullptr) __lsan_disable();
  if (Sanitized()) {
    std::printf(
        "sanitizer build (SHMDICT_SANITIZED): the model is compiled without sanitizer "
        "instrumentation (Relacy switches between its fibers' stacks with longjmp, "
        "which ASan and TSan cannot follow); its engine checks run at a tenth of "
        "their budget and preemption bound 1 (double deaths: random only), mutants in full "
        "(those shown harmless: a tenth)\n");
  }
  bool ok = true;
  if (is("writers") || is("all")) ok &= CheckWriters();
  if (is("death") || is("all")) ok &= CheckDeath();
  if (is("death2") || is("all")) ok &= CheckDoubleDeath();
  if (is("mutants") || is("all")) ok &= CheckMutants(nargs > 1 ? args[1] : nullptr);
  if (is("explore")) {
    g_cfg = Config{};
    const char* scn = nargs > 1 ? args[1] : "writers";
    const char* sched = nargs > 2 ? args[2] : "bound";
    const unsigned n = nargs > 3 ? static_cast<unsigned>(std::atoi(args[3])) : 1;
    if (std::strcmp(scn, "serial") == 0) {
      Serial();
    } else if (std::strncmp(scn, "death", 5) == 0 && std::strlen(scn) == 7 &&
               scn[5] >= '0' && scn[5] <= '3') {  // e.g. death23: case 2, crash_at 3
      const DeathCase& c = kDeathCases[scn[5] - '0'];
      DeathScenario(c.dead, c.taker, c.start_present, scn[6] - '0');
    } else {
      WritersScenario();
    }
    const rl::scheduler_type_e type = std::strcmp(sched, "bound") == 0  ? rl::sched_bound
                                      : std::strcmp(sched, "full") == 0 ? rl::sched_full
                                                                        : rl::sched_random;
    ok = Expect(scn, true, type, n, n);
    PrintStats();
  } else if (!is("writers") && !is("death") && !is("death2") && !is("mutants") &&
             !is("all")) {
    std::printf("unknown mode %s\n", mode);
    return 2;
  }
  std::printf("total explored executions: %llu\n",
              static_cast<unsigned long long>(g_total_iterations));
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
