// A linearizability checker for the histories of one shmdict key.
//
// The sequential specification is a versioned register with erase: the key is absent
// or holds (value, version); every successful write gives a version above every
// earlier version of the key (also across erase); Get returns the value and its
// version. Values written are unique (the stress harness numbers them), so a read
// names the write it read from.
//
// Algorithm: Wing & Gong's search for a linearization, with Lowe's memoization of
// (set of linearized operations, model state) pairs ("Testing for linearizability",
// Concurrency and Computation 2017; the algorithm of Porcupine and Knossos's "wgl").
// It is sound and complete: it explores, depth first, every order in which an
// operation whose invocation precedes the earliest pending return can be linearized
// next, backtracking on a model mismatch, and prunes only configurations (same
// linearized set, same state) already known to fail, which cannot succeed later
// either, because what remains to be done from a configuration depends only on that
// pair. A history is accepted iff some path linearizes every completed operation.
//
// Operations whose process was killed before they returned have no return: they may
// have taken effect at any point after their invocation, or not at all. They are
// given a return after everything else. If such an operation's effect is possible
// where it is linearized, it takes effect there; "no effect" is covered by the search
// linearizing it after every completed operation, where its effect is unobservable,
// which its infinite return always allows. A killed write's version is unknown but
// above the previous one: the state carries a lower bound until a later read names
// it.
//
// Expiry and eviction (a cache table). A write may give the entry a time to live: the
// entry then reads as absent from some moment in [invoke + ttl - early, return + ttl +
// late] on (the engine computes the deadline at an unknown moment of the write, and
// its readers see it through a coarse clock); in the model, the entry may vanish at
// any point from the earliest of those times, and must have vanished by the latest.
// With eviction, a present entry may vanish at any point (another key's insert evicts
// it). Vanishing is taken only when an operation observes the key absent, which keeps
// the search deterministic; an operation that observes the entry present needs a
// linearization point before its latest expiry, i.e. an invocation before it.
//
// Histories are checked key by key: linearizability is compositional (Herlihy & Wing
// 1990), so a history is linearizable iff each key's sub-history is.
#ifndef SHMDICT_TOOLS_LINCHECK_H_
#define SHMDICT_TOOLS_LINCHECK_H_

#include <cstdint>
#include <string>
#include <vector>

namespace shmdict::lincheck {

enum class Kind : uint8_t {
  kGet = 1,
  kPut = 2,
  kInsert = 3,
  kReplace = 4,
  kCompareAndSwap = 5,
  kErase = 6,
  kTouch = 7,  // a new expiry, same value, new version; kNotFound when absent
};

enum class Outcome : uint8_t {
  kOk = 0,
  kNotFound = 1,  // Get, Replace, Erase: the key was absent
  kExists = 2,    // Insert: the key was present
  kVersion = 3,   // CompareAndSwap: the version differed
  kUnknown = 4,   // the process died before the operation returned
};

inline constexpr uint64_t kNever = ~uint64_t{0};

struct Operation {
  Kind kind = Kind::kGet;
  Outcome outcome = Outcome::kUnknown;
  uint64_t invoke_ns = 0;
  uint64_t return_ns = kNever;  // kNever for kUnknown
  uint64_t value = 0;     // the value written (writes), or read (Get kOk); never 0
  uint64_t expected = 0;  // CompareAndSwap's expected version (0: absent)
  uint64_t version = 0;   // the version returned (writes and Get with kOk)
  uint64_t ttl_ns = 0;    // writes and Touch: the time to live given (0: none)
};

// How entries may vanish without an erase (see above).
struct Options {
  bool evictable = false;  // an lrs table: any present entry may be evicted
  uint64_t early_ns = 0;   // expiry: may read absent from invoke + ttl - early_ns on
  uint64_t late_ns = 0;    // expiry: reads absent from return + ttl + late_ns on
};

struct Result {
  bool linearizable = false;
  uint64_t steps = 0;  // search steps taken
  std::string message;  // why not, when not
};

// Checks one key's history. `max_steps` bounds the search (0: no bound); a search that
// hits the bound reports linearizable = false with a message saying so.
Result CheckKey(const std::vector<Operation>& history, uint64_t max_steps = 0,
                const Options& options = {});

std::string Describe(const Operation& op);

}  // namespace shmdict::lincheck

#endif  // SHMDICT_TOOLS_LINCHECK_H_
