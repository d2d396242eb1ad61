#include "tools/lincheck.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <unordered_map>
#include <utility>

namespace shmdict::lincheck {
namespace {

// The model state of one key. When a killed write took effect its version is unknown:
// `exact` is false, the version is at least `version`, and not any of `excluded`.
struct State {
  bool present = false;
  uint64_t value = 0;
  uint64_t version = 0;  // exact, or a lower bound; kept across erase (monotonicity)
  bool exact = true;
  std::vector<uint64_t> excluded;
  // A present entry with an expiry may vanish from gone_from on and has vanished by
  // gone_by (kNever: no expiry, or no upper bound).
  uint64_t gone_from = kNever;
  uint64_t gone_by = kNever;

  bool operator==(const State& o) const {
    return present == o.present && value == o.value && version == o.version &&
           exact == o.exact && excluded == o.excluded && gone_from == o.gone_from &&
           gone_by == o.gone_by;
  }
  uint64_t Hash() const {
    uint64_t h = (present ? 0x9E3779B97F4A7C15ull : 0) ^ (value * 0xBF58476D1CE4E5B9ull) ^
                 (version * 0x94D049BB133111EBull) ^ (exact ? 1 : 2) ^
                 (gone_from * 0xD6E8FEB86659FD93ull) ^ (gone_by * 0xA0761D6478BD642Full);
    for (uint64_t e : excluded) h = (h ^ e) * 0x9E3779B97F4A7C15ull;
    return h;
  }
};

// Whether the state's version can be (or is) exactly v; pins it if so.
bool PinVersion(State& s, uint64_t v) {
  if (s.exact) return s.version == v;
  if (v < s.version) return false;
  if (std::find(s.excluded.begin(), s.excluded.end(), v) != s.excluded.end()) return false;
  s.version = v;
  s.exact = true;
  s.excluded.clear();
  return true;
}

// A new version v given by a write: above the current (exact or lower-bound) version.
bool NewVersionOk(const State& s, uint64_t v) { return v > s.version; }

// The expiry bounds of an entry written by `op` (see lincheck.h).
void SetExpiry(State& s, const Operation& op, const Options& o) {
  if (op.ttl_ns == 0) {
    s.gone_from = s.gone_by = kNever;
    return;
  }
  s.gone_from = op.invoke_ns + op.ttl_ns > o.early_ns ? op.invoke_ns + op.ttl_ns - o.early_ns : 0;
  s.gone_by = op.return_ns == kNever ? kNever : op.return_ns + op.ttl_ns + o.late_ns;
}

void Write(State& s, const Operation& op, uint64_t version, const Options& o) {
  s.present = true;
  s.value = op.value;
  s.version = version;
  s.exact = true;
  s.excluded.clear();
  SetExpiry(s, op, o);
}

// A killed write that took effect: value known, version only bounded below.
void WriteUnknownVersion(State& s, const Operation& op, const Options& o) {
  s.present = true;
  s.value = op.value;
  s.version = s.version + 1;
  s.exact = false;
  s.excluded.clear();
  SetExpiry(s, op, o);
}

// Whether `op` may observe the entry present: it is, and had not surely expired when
// the operation began.
bool Alive(const State& s, const Operation& op) {
  return s.present && (s.gone_by == kNever || op.invoke_ns < s.gone_by);
}

// For an operation that observes the key absent: true if it is, or if it may have
// vanished by the operation's end (evicted, or expired), which it then does.
bool Absent(State& s, const Operation& op, const Options& o) {
  if (!s.present) return true;
  if (o.evictable || (s.gone_from != kNever && op.return_ns >= s.gone_from)) {
    s.present = false;
    s.gone_from = s.gone_by = kNever;
    return true;
  }
  return false;
}

// The sequential specification. Returns false if `op` with its recorded outcome is
// impossible in state `s`; otherwise applies it.
bool Step(State& s, const Operation& op, const Options& o) {
  // An entry surely expired before the operation began is gone.
  if (s.present && s.gone_by != kNever && op.invoke_ns >= s.gone_by) {
    s.present = false;
    s.gone_from = s.gone_by = kNever;
  }
  if (op.outcome == Outcome::kUnknown) {
    // Took effect here if it can (see lincheck.h for why that choice is complete).
    switch (op.kind) {
      case Kind::kGet:
        return true;
      case Kind::kPut:
        WriteUnknownVersion(s, op, o);
        return true;
      case Kind::kInsert:
        if (Absent(s, op, o)) WriteUnknownVersion(s, op, o);
        return true;
      case Kind::kReplace:
        if (s.present) WriteUnknownVersion(s, op, o);
        return true;
      case Kind::kTouch:
        if (s.present) {
          Operation same = op;
          same.value = s.value;
          WriteUnknownVersion(s, same, o);
        }
        return true;
      case Kind::kCompareAndSwap: {
        if (op.expected == 0) {
          if (Absent(s, op, o)) WriteUnknownVersion(s, op, o);
          return true;
        }
        State t = s;
        if (s.present && PinVersion(t, op.expected)) {
          s = t;
          WriteUnknownVersion(s, op, o);
        }
        return true;
      }
      case Kind::kErase:
        s.present = false;
        s.gone_from = s.gone_by = kNever;
        return true;
    }
    return false;
  }
  switch (op.kind) {
    case Kind::kGet:
      if (op.outcome == Outcome::kNotFound) return Absent(s, op, o);
      if (op.outcome != Outcome::kOk || !Alive(s, op) || s.value != op.value) return false;
      return PinVersion(s, op.version);
    case Kind::kPut:
      if (op.outcome != Outcome::kOk || !NewVersionOk(s, op.version)) return false;
      Write(s, op, op.version, o);
      return true;
    case Kind::kInsert:
      if (op.outcome == Outcome::kExists) return Alive(s, op);
      if (op.outcome != Outcome::kOk || !Absent(s, op, o) || !NewVersionOk(s, op.version)) {
        return false;
      }
      Write(s, op, op.version, o);
      return true;
    case Kind::kReplace:
      if (op.outcome == Outcome::kNotFound) return Absent(s, op, o);
      if (op.outcome != Outcome::kOk || !Alive(s, op) || !NewVersionOk(s, op.version)) {
        return false;
      }
      Write(s, op, op.version, o);
      return true;
    case Kind::kTouch: {
      if (op.outcome == Outcome::kNotFound) return Absent(s, op, o);
      if (op.outcome != Outcome::kOk || !Alive(s, op) || !NewVersionOk(s, op.version)) {
        return false;
      }
      Operation same = op;
      same.value = s.value;
      Write(s, same, op.version, o);
      return true;
    }
    case Kind::kCompareAndSwap:
      if (op.outcome == Outcome::kVersion) {
        // The current version (0 when absent) differs from the expected one.
        if (!s.present) return op.expected != 0;
        if (op.expected == 0) return Alive(s, op);
        // Present: the version differs, or else the entry vanished (expired or evicted)
        // and the current version 0 differs.
        if (s.exact) return s.version != op.expected || Absent(s, op, o);
        if (op.expected >= s.version &&
            std::find(s.excluded.begin(), s.excluded.end(), op.expected) ==
                s.excluded.end()) {
          s.excluded.push_back(op.expected);
          std::sort(s.excluded.begin(), s.excluded.end());
        }
        return true;
      }
      if (op.outcome != Outcome::kOk) return false;
      if (op.expected == 0) {
        if (!Absent(s, op, o) || !NewVersionOk(s, op.version)) return false;
      } else {
        if (!Alive(s, op) || !PinVersion(s, op.expected) || op.version <= op.expected) {
          return false;
        }
      }
      Write(s, op, op.version, o);
      return true;
    case Kind::kErase:
      if (op.outcome == Outcome::kNotFound) return Absent(s, op, o);
      if (op.outcome != Outcome::kOk || !Alive(s, op)) return false;
      s.present = false;
      s.gone_from = s.gone_by = kNever;
      return true;
  }
  return false;
}

struct Entry {
  int id;
  bool is_call;
  uint64_t time;
  Entry* match = nullptr;  // call -> its return
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

// Removes a call and its return from the list.
void Lift(Entry* call) {
  call->prev->next = call->next;
  if (call->next != nullptr) call->next->prev = call->prev;
  Entry* ret = call->match;
  ret->prev->next = ret->next;
  if (ret->next != nullptr) ret->next->prev = ret->prev;
}

// Puts them back (the exact inverse of Lift).
void Unlift(Entry* call) {
  Entry* ret = call->match;
  ret->prev->next = ret;
  if (ret->next != nullptr) ret->next->prev = ret;
  call->prev->next = call;
  if (call->next != nullptr) call->next->prev = call;
}

// A configuration of the search, compactly: operations are numbered in invocation
// order and linearized mostly in that order, so the set of linearized operations is
// stored as "all below `frontier`" plus the few above it.
struct CacheEntry {
  int frontier;
  std::vector<int> extras;
  State state;
};

}  // namespace

std::string Describe(const Operation& op) {
  static const char* kKinds[] = {"?",   "get",   "put",  "insert",
                                 "replace", "cas", "erase", "touch"};
  static const char* kOutcomes[] = {"ok", "not_found", "exists", "version", "unknown"};
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "%s(value=%llu expected=%llu ttl_ns=%llu) -> %s version=%llu [%llu, %s]",
                kKinds[static_cast<int>(op.kind) % 8],
                static_cast<unsigned long long>(op.value),
                static_cast<unsigned long long>(op.expected),
                static_cast<unsigned long long>(op.ttl_ns),
                kOutcomes[static_cast<int>(op.outcome) % 5],
                static_cast<unsigned long long>(op.version),
                static_cast<unsigned long long>(op.invoke_ns),
                op.return_ns == kNever ? "never"
                                       : std::to_string(op.return_ns).c_str());
  return buf;
}

Result CheckKey(const std::vector<Operation>& full_history, uint64_t max_steps,
                const Options& options) {
  Result result;
  // A read that never returned observed nothing and changed nothing: leave it out.
  std::vector<Operation> history;
  history.reserve(full_history.size());
  for (const Operation& op : full_history) {
    if (op.kind == Kind::kGet && op.outcome == Outcome::kUnknown) continue;
    history.push_back(op);
  }
  std::stable_sort(history.begin(), history.end(),
                   [](const Operation& a, const Operation& b) {
                     return a.invoke_ns < b.invoke_ns;
                   });
  const int n = static_cast<int>(history.size());
  if (n == 0) {
    result.linearizable = true;
    return result;
  }
  // Events in time order; at equal times calls first (equal stamps are concurrent).
  std::vector<Entry> entries;
  entries.reserve(2 * n + 1);
  for (int i = 0; i < n; ++i) {
    entries.push_back({i, true, history[i].invoke_ns});
    entries.push_back({i, false, history[i].return_ns});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.is_call && !b.is_call;
  });
  std::vector<Entry*> call_of(n), return_of(n);
  for (Entry& e : entries) (e.is_call ? call_of : return_of)[e.id] = &e;
  for (int i = 0; i < n; ++i) call_of[i]->match = return_of[i];
  entries.push_back({-1, false, 0});  // the head sentinel
  Entry* head = &entries.back();
  Entry* prev = head;
  for (size_t i = 0; i + 1 < entries.size(); ++i) {
    prev->next = &entries[i];
    entries[i].prev = prev;
    prev = &entries[i];
  }

  std::mt19937_64 rng(12345);
  std::vector<uint64_t> op_hash(n);
  for (uint64_t& h : op_hash) h = rng();
  int frontier = 0;  // every operation below it is linearized
  std::vector<int> extras;  // linearized operations above the frontier, sorted
  uint64_t lin_hash = 0;
  std::unordered_map<uint64_t, std::vector<CacheEntry>> cache;
  struct Frame {
    Entry* call;
    State state;
    int frontier;
    std::vector<int> extras;
  };
  std::vector<Frame> calls;
  State state;
  int best_depth = 0;
  int stuck_at = -1;

  Entry* entry = head->next;
  while (head->next != nullptr) {
    if (max_steps != 0 && result.steps >= max_steps) {
      result.message = "search bound reached after " + std::to_string(result.steps) +
                       " steps (inconclusive)";
      return result;
    }
    ++result.steps;
    if (entry->is_call) {
      State next = state;
      if (Step(next, history[entry->id], options)) {
        const int id = entry->id;
        const int old_frontier = frontier;
        std::vector<int> old_extras = extras;
        if (id == frontier) {
          // Advance past every linearized operation that follows.
          frontier = id + 1;
          size_t consumed = 0;
          while (consumed < extras.size() && extras[consumed] == frontier) {
            ++consumed;
            ++frontier;
          }
          extras.erase(extras.begin(), extras.begin() + consumed);
        } else {
          extras.insert(std::lower_bound(extras.begin(), extras.end(), id), id);
        }
        const uint64_t h = lin_hash ^ op_hash[id] ^ next.Hash();
        std::vector<CacheEntry>& bucket = cache[h];
        bool seen = false;
        for (const CacheEntry& c : bucket) {
          if (c.frontier == frontier && c.state == next && c.extras == extras) {
            seen = true;
            break;
          }
        }
        if (seen) {
          frontier = old_frontier;
          extras = std::move(old_extras);
        } else {
          bucket.push_back({frontier, extras, next});
          calls.push_back({entry, state, old_frontier, std::move(old_extras)});
          state = std::move(next);
          lin_hash ^= op_hash[id];
          Lift(entry);
          if (static_cast<int>(calls.size()) > best_depth) best_depth = int(calls.size());
          entry = head->next;
          continue;
        }
      }
      entry = entry->next;
    } else {
      // A return: its operation must be linearized before anything after it.
      if (stuck_at < 0 || static_cast<int>(calls.size()) >= best_depth) stuck_at = entry->id;
      if (calls.empty()) {
        result.message = "no linearization: stuck at " + Describe(history[stuck_at]) +
                         " after linearizing at most " + std::to_string(best_depth) +
                         " of " + std::to_string(n) + " operations";
        return result;
      }
      Frame f = std::move(calls.back());
      calls.pop_back();
      const int id = f.call->id;
      frontier = f.frontier;
      extras = std::move(f.extras);
      lin_hash ^= op_hash[id];
      state = std::move(f.state);
      Unlift(f.call);
      entry = f.call->next;
    }
  }
  result.linearizable = true;
  return result;
}

}  // namespace shmdict::lincheck
