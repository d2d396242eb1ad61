// shmdict's stress harness: writer and reader processes on one table, optional chaos
// (writers killed with SIGKILL and respawned, writers stopped and continued), every
// operation logged, and a checker that reads the logs and the table at the end.
//
//   tools/bazel run -c opt //tools:stress -- --duration=300 --kill_min_ms=5 --kill_max_ms=50
//
// What it reports (and exits non-zero on any violation):
//   - torn values: every value carries its own check (its key, its unique id, a length
//     and bytes derived from the id); a read that fails the check is torn;
//   - per-key linearizability of the whole history, killed operations included
//     (tools/lincheck.h: sound and complete);
//   - lost acknowledged writes (the final state of every key is part of the history
//     as a final read, so a lost write is a linearizability violation too);
//   - fetch-add totals: each counter equals its acknowledged increments plus some of
//     the killed ones, and acknowledged results are distinct (not with --eviction=lrs,
//     where a counter may be evicted and start again from 0);
//   - with --ttl_percent, expiry: an entry reads as absent only from its deadline on
//     (write invocation + ttl, less a millisecond of the deadline's rounding) and
//     always from --expiry_late_ms after it (tools/lincheck.h); with
//     --eviction=lrs, any entry may vanish, but none comes back and no stale value is
//     ever read;
//   - reader progress: reads per second, latency percentiles, and the longest gap
//     between two consecutive reads of one reader;
//   - kills, stops, recoveries, operations checked; the table verified at the end.
//
// Logs: each process incarnation writes fixed-size records into its own memory-mapped
// file; a record is marked invoked before the operation and returned after it, so a
// process killed mid-operation leaves an invoked record with no return. The kernel
// keeps a dead process's stores to a shared file mapping, so the logs survive it.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/lincheck.h"

ABSL_FLAG(std::string, path, "", "table file (default: /dev/shm/shmdict-stress-PID)");
ABSL_FLAG(std::string, log_dir, "", "where the per-process logs go (default: a new "
                                    "directory under $TEST_TMPDIR or /tmp)");
ABSL_FLAG(bool, keep_logs, false, "keep the logs after a clean run");
ABSL_FLAG(int, writers, 2, "writer processes");
ABSL_FLAG(int, readers, 2, "reader processes");
ABSL_FLAG(int, keys, 256, "register keys (written, read, erased)");
ABSL_FLAG(int, counters, 4, "counter keys (fetch-add only)");
ABSL_FLAG(int, min_value, 16, "smallest value, bytes (>= 16)");
ABSL_FLAG(int, max_value, 512, "largest value, bytes");
ABSL_FLAG(double, duration, 10, "seconds of load");
ABSL_FLAG(std::string, mix, "put=35,insert=10,replace=10,erase=10,cas=20,fetch_add=15",
          "writers' operation mix (weights; also touch)");
ABSL_FLAG(int, ttl_percent, 0,
          "percent of put, insert, replace and touch operations given a time to live");
ABSL_FLAG(int, ttl_min_ms, 1, "shortest time to live given");
ABSL_FLAG(int, ttl_max_ms, 50, "longest time to live given");
ABSL_FLAG(int, expiry_late_ms, 30,
          "the checker's bound on how late an expiry may be seen: the coarse clock's lag "
          "(3-8 ms, at most 16 ms measured on a 2-vCPU KVM guest) plus a margin");
ABSL_FLAG(std::string, eviction, "none", "the table's eviction policy: none or lrs");
ABSL_FLAG(uint64_t, capacity, 0,
          "the table's capacity (default: twice the keys and counters); with lrs, less "
          "than --keys keeps the table full and evicting");
ABSL_FLAG(int, kill_min_ms, 0, "chaos: kill a random writer every [min, max] ms (0: off)");
ABSL_FLAG(int, kill_max_ms, 0, "chaos: see --kill_min_ms");
ABSL_FLAG(int, stop_every_ms, 0, "chaos: SIGSTOP a random writer this often (0: off)");
ABSL_FLAG(int, stop_ms, 20, "chaos: how long a stopped writer stays stopped");
ABSL_FLAG(int, read_log_every, 1, "log one read in N for the checker (latency counts all)");
ABSL_FLAG(uint64_t, seed, 0, "random seed (0: from the clock); printed");
ABSL_FLAG(bool, json, false, "print the report as JSON");

namespace {

using shmdict::lincheck::Kind;
using shmdict::lincheck::Outcome;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// ---------------------------------------------------------------------------------
// Logs

constexpr uint32_t kInvoked = 1;
constexpr uint32_t kReturned = 2;
constexpr uint8_t kFetchAdd = 100;  // a Kind outside lincheck's, for counters
constexpr uint8_t kTorn = 200;      // outcome of a read whose value failed its check

struct Record {
  uint32_t state;  // 0, kInvoked, kReturned; accessed through std::atomic_ref
  uint8_t kind;
  uint8_t outcome;
  uint16_t reserved;
  uint32_t key;
  uint32_t ttl_ms;  // writes and touch: the time to live given (0: none)
  uint64_t invoke_ns;
  uint64_t return_ns;
  uint64_t value;     // id written or read
  uint64_t expected;  // CAS
  uint64_t version;
  int64_t result;     // fetch-add's new value
};
static_assert(sizeof(Record) == 64);

constexpr size_t kLogRecords = 1 << 20;  // 64 MiB of address space per incarnation

class Log {
 public:
  // Creates the log file at its full (sparse) size. The parent does this before it
  // spawns the process the log belongs to, so a process killed before its first
  // operation still leaves a readable (empty) log.
  static bool Create(const std::string& file) {
    const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const bool ok = ftruncate(fd, kLogRecords * sizeof(Record)) == 0;
    close(fd);
    return ok;
  }
  // Maps the log that Create made.
  bool Open(const std::string& file) {
    const int fd = open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    void* p = mmap(nullptr, kLogRecords * sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
    close(fd);
    if (p == MAP_FAILED) return false;
    records_ = static_cast<Record*>(p);
    return true;
  }
  // Null when the log is full.
  Record* Invoke(uint8_t kind, uint32_t key, uint64_t value, uint64_t expected,
                 uint32_t ttl_ms = 0) {
    if (next_ >= kLogRecords) return nullptr;
    Record* r = &records_[next_++];
    r->kind = kind;
    r->key = key;
    r->ttl_ms = ttl_ms;
    r->value = value;
    r->expected = expected;
    r->invoke_ns = NowNs();
    // Release: the fields above are complete before the record counts as invoked (the
    // checker reads logs only after the process is gone, so this is for clarity).
    std::atomic_ref<uint32_t>(r->state).store(kInvoked, std::memory_order_release);
    return r;
  }
  static void Return(Record* r, uint8_t outcome, uint64_t value, uint64_t version,
                     int64_t result) {
    if (r == nullptr) return;
    r->return_ns = NowNs();
    r->outcome = outcome;
    r->value = value;
    r->version = version;
    r->result = result;
    // Release: as in Invoke.
    std::atomic_ref<uint32_t>(r->state).store(kReturned, std::memory_order_release);
  }
  bool full() const { return next_ >= kLogRecords; }

 private:
  Record* records_ = nullptr;
  size_t next_ = 0;
};

// ---------------------------------------------------------------------------------
// Self-checking values

std::string KeyName(uint32_t k) { return "k" + std::to_string(k); }
std::string CounterName(uint32_t c) { return "c" + std::to_string(c); }

size_t ValueLength(uint64_t id, int min_len, int max_len) {
  return size_t(min_len) + (id * 0x9E3779B97F4A7C15ull >> 33) % size_t(max_len - min_len + 1);
}

std::string MakeValue(uint32_t key, uint64_t id, int min_len, int max_len) {
  std::string v(ValueLength(id, min_len, max_len), '\0');
  std::memcpy(v.data(), &id, 8);
  std::memcpy(v.data() + 8, &key, 4);
  const uint32_t len = static_cast<uint32_t>(v.size());
  std::memcpy(v.data() + 12, &len, 4);
  for (size_t i = 16; i < v.size(); ++i) v[i] = char((id * 131 + key * 31 + i) & 0xFF);
  return v;
}

// The value's id, or 0 if it is not a well-formed value of `key`.
uint64_t CheckValue(uint32_t key, const std::string& v, int min_len, int max_len) {
  if (v.size() < 16) return 0;
  uint64_t id;
  std::memcpy(&id, v.data(), 8);
  if (id == 0 || v != MakeValue(key, id, min_len, max_len)) return 0;
  return id;
}

// ---------------------------------------------------------------------------------
// Shared state of the run (an anonymous shared mapping)

constexpr int kMaxReaders = 64;
constexpr int kHistogramBuckets = 64 * 8;  // log2 with 8 sub-buckets

struct ReaderStats {
  std::atomic<uint64_t> reads;
  std::atomic<uint64_t> torn;
  std::atomic<uint64_t> max_latency_ns;
  std::atomic<uint64_t> max_gap_ns;
  std::atomic<uint64_t> histogram[kHistogramBuckets];
};

struct Shared {
  std::atomic<int> stop;
  std::atomic<uint64_t> writer_torn;
  std::atomic<uint64_t> unexpected_errors;
  std::atomic<uint64_t> logs_full;
  ReaderStats readers[kMaxReaders];
};

int Bucket(uint64_t ns) {
  if (ns < 8) return int(ns);
  const int lg = 63 - __builtin_clzll(ns);
  const int sub = int((ns >> (lg - 3)) & 7);
  return std::min(kHistogramBuckets - 1, (lg - 2) * 8 + sub);
}

uint64_t BucketUpperNs(int b) {
  if (b < 8) return uint64_t(b);
  const int lg = b / 8 + 2;
  const int sub = b % 8;
  return (uint64_t(8 + sub + 1) << (lg - 3)) - 1;
}

struct Config {
  std::string path;
  std::string log_dir;
  int keys, counters, min_value, max_value;
  std::vector<std::pair<std::string, int>> mix;
  int read_log_every;
  uint64_t seed;
  int ttl_percent, ttl_min_ms, ttl_max_ms, expiry_late_ms;
  bool lrs;
};

void Unexpected(Shared* sh, const char* what, const absl::Status& s) {
  sh->unexpected_errors.fetch_add(1);
  std::fprintf(stderr, "stress: unexpected error in %s: %s\n", what,
               std::string(s.message()).c_str());
}

Outcome OutcomeOf(const absl::Status& s) {
  switch (shmdict::ErrorCodeOf(s)) {
    case shmdict::ErrorCode::kOk:
      return Outcome::kOk;
    case shmdict::ErrorCode::kNotFound:
      return Outcome::kNotFound;
    case shmdict::ErrorCode::kExists:
      return Outcome::kExists;
    case shmdict::ErrorCode::kVersion:
      return Outcome::kVersion;
    default:
      return Outcome::kUnknown;
  }
}

// ---------------------------------------------------------------------------------
// Processes

[[noreturn]] void WriterMain(const Config& cfg, Shared* sh, uint64_t uid) {
  Log log;
  if (!log.Open(cfg.log_dir + "/w" + std::to_string(uid) + ".log")) _exit(2);
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(cfg.path, shmdict::OpenOptions());
  if (!d.ok()) _exit(3);
  std::mt19937_64 rng(cfg.seed ^ (uid * 0x9E3779B97F4A7C15ull));
  int total_weight = 0;
  for (const auto& [name, w] : cfg.mix) total_weight += w;
  uint64_t seq = 0;
  while (sh->stop.load(std::memory_order_relaxed) == 0) {
    if (log.full()) {
      sh->logs_full.fetch_add(1);
      while (sh->stop.load(std::memory_order_relaxed) == 0) usleep(1000);
      break;
    }
    int pick = int(rng() % uint64_t(total_weight));
    std::string op;
    for (const auto& [name, w] : cfg.mix) {
      if (pick < w) {
        op = name;
        break;
      }
      pick -= w;
    }
    if (op == "fetch_add") {
      const uint32_t c = uint32_t(rng() % uint64_t(cfg.counters));
      Record* r = log.Invoke(kFetchAdd, c, 0, 0);
      uint64_t version = 0;
      absl::StatusOr<int64_t> v = d->FetchAdd(CounterName(c), 1, &version);
      if (!v.ok()) Unexpected(sh, "fetch_add", v.status());
      Log::Return(r, v.ok() ? uint8_t(Outcome::kOk) : uint8_t(Outcome::kUnknown), 0, version,
                  v.ok() ? *v : 0);
      continue;
    }
    const uint32_t k = uint32_t(rng() % uint64_t(cfg.keys));
    const std::string key = KeyName(k);
    const uint64_t id = (uid << 32) | ++seq;
    // A time to live for put, insert, replace and touch (0: none).
    uint32_t ttl_ms = 0;
    if (int(rng() % 100) < cfg.ttl_percent) {
      ttl_ms = uint32_t(cfg.ttl_min_ms +
                        int(rng() % uint64_t(cfg.ttl_max_ms - cfg.ttl_min_ms + 1)));
    }
    const absl::Duration ttl =
        ttl_ms == 0 ? absl::InfiniteDuration() : absl::Milliseconds(ttl_ms);
    if (op == "touch") {
      Record* r = log.Invoke(uint8_t(Kind::kTouch), k, 0, 0, ttl_ms);
      absl::StatusOr<uint64_t> v = d->Touch(key, ttl);
      const Outcome outcome = OutcomeOf(v.status());
      if (outcome == Outcome::kUnknown) Unexpected(sh, "touch", v.status());
      Log::Return(r, uint8_t(outcome), 0, v.ok() ? *v : 0, 0);
      continue;
    }
    if (op == "erase") {
      Record* r = log.Invoke(uint8_t(Kind::kErase), k, 0, 0);
      absl::Status s = d->Erase(key);
      if (OutcomeOf(s) == Outcome::kUnknown) Unexpected(sh, "erase", s);
      Log::Return(r, uint8_t(OutcomeOf(s)), 0, 0, 0);
      continue;
    }
    uint64_t expected = 0;
    if (op == "cas") {
      // Read first (a logged read), then swap against the version seen.
      Record* r = log.Invoke(uint8_t(Kind::kGet), k, 0, 0);
      uint64_t version = 0;
      absl::StatusOr<std::string> cur = d->Get(key, &version);
      uint64_t read_id = 0;
      uint8_t outcome = uint8_t(OutcomeOf(cur.status()));
      if (cur.ok()) {
        read_id = CheckValue(k, *cur, cfg.min_value, cfg.max_value);
        if (read_id == 0) {
          sh->writer_torn.fetch_add(1);
          outcome = kTorn;
        }
      } else if (outcome == uint8_t(Outcome::kUnknown)) {
        Unexpected(sh, "get", cur.status());
      }
      Log::Return(r, outcome, read_id, version, 0);
      expected = cur.ok() ? version : 0;
    }
    const std::string value = MakeValue(k, id, cfg.min_value, cfg.max_value);
    const Kind kind = op == "put"       ? Kind::kPut
                      : op == "insert"  ? Kind::kInsert
                      : op == "replace" ? Kind::kReplace
                                        : Kind::kCompareAndSwap;
    if (kind == Kind::kCompareAndSwap) ttl_ms = 0;
    Record* r = log.Invoke(uint8_t(kind), k, id, expected, ttl_ms);
    absl::StatusOr<uint64_t> v;
    switch (kind) {
      case Kind::kPut:
        v = d->Set(key, value, {.ttl = ttl});
        break;
      case Kind::kInsert:
        v = d->Set(key, value, {.ttl = ttl, .if_absent = true});
        break;
      case Kind::kReplace:
        v = d->Set(key, value, {.ttl = ttl, .if_present = true});
        break;
      default:
        v = d->CompareAndSwap(key, expected, value);
        break;
    }
    const Outcome outcome = OutcomeOf(v.status());
    if (outcome == Outcome::kUnknown) Unexpected(sh, op.c_str(), v.status());
    Log::Return(r, uint8_t(outcome), id, v.ok() ? *v : 0, 0);
  }
  _exit(0);
}

[[noreturn]] void ReaderMain(const Config& cfg, Shared* sh, int index, uint64_t uid) {
  Log log;
  if (!log.Open(cfg.log_dir + "/r" + std::to_string(uid) + ".log")) _exit(2);
  shmdict::OpenOptions o;
  o.read_only = true;
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(cfg.path, o);
  if (!d.ok()) _exit(3);
  ReaderStats& st = sh->readers[index];
  std::mt19937_64 rng(cfg.seed ^ (uid * 0xBF58476D1CE4E5B9ull));
  std::vector<char> buf(size_t(cfg.max_value));
  uint64_t last_return = NowNs(), n = 0, max_latency = 0, max_gap = 0;
  std::vector<uint64_t> hist(kHistogramBuckets, 0);
  uint64_t torn = 0;
  while (sh->stop.load(std::memory_order_relaxed) == 0) {
    const uint32_t k = uint32_t(rng() % uint64_t(cfg.keys));
    const std::string key = KeyName(k);
    const bool logged = (n % uint64_t(cfg.read_log_every)) == 0 && !log.full();
    Record* r = logged ? log.Invoke(uint8_t(Kind::kGet), k, 0, 0) : nullptr;
    const uint64_t t0 = r != nullptr ? r->invoke_ns : NowNs();
    size_t len = 0;
    uint64_t version = 0;
    absl::Status s = d->GetInto(key, buf.data(), buf.size(), &len, &version);
    const uint64_t t1 = NowNs();
    uint8_t outcome = uint8_t(OutcomeOf(s));
    uint64_t id = 0;
    if (s.ok()) {
      id = CheckValue(k, std::string(buf.data(), len), cfg.min_value, cfg.max_value);
      if (id == 0) {
        ++torn;
        outcome = kTorn;
      }
    } else if (outcome == uint8_t(Outcome::kUnknown)) {
      Unexpected(sh, "reader get", s);
    }
    Log::Return(r, outcome, id, version, 0);
    ++n;
    hist[size_t(Bucket(t1 - t0))]++;
    max_latency = std::max(max_latency, t1 - t0);
    max_gap = std::max(max_gap, t1 - last_return);
    last_return = t1;
  }
  st.reads.store(n);
  st.torn.store(torn);
  st.max_latency_ns.store(max_latency);
  st.max_gap_ns.store(max_gap);
  for (int b = 0; b < kHistogramBuckets; ++b) st.histogram[b].store(hist[size_t(b)]);
  _exit(0);
}

template <typename Fn>
pid_t Spawn(Fn fn) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) fn();
  return pid;
}

void SleepNs(uint64_t ns) {
  timespec ts{time_t(ns / 1000000000u), long(ns % 1000000000u)};
  nanosleep(&ts, nullptr);
}

// ---------------------------------------------------------------------------------
// The checker

struct Report {
  uint64_t kills = 0, stops = 0, writer_incarnations = 0;
  uint64_t operations = 0, killed_operations = 0, keys_checked = 0;
  uint64_t torn = 0, lin_violations = 0, counter_violations = 0, unexpected = 0;
  uint64_t lost_counter_increments = 0;
  uint64_t recoveries = 0, repaired_at_end = 0, verify_damage = 0;
  uint64_t reads = 0, logs_full = 0, search_steps = 0;
  double seconds = 0, reads_per_second = 0;
  uint64_t p50_ns = 0, p99_ns = 0, p999_ns = 0, max_latency_ns = 0, max_gap_ns = 0;
  std::vector<std::string> messages;
  bool ok() const {
    return torn == 0 && lin_violations == 0 && counter_violations == 0 && unexpected == 0 &&
           verify_damage == 0;
  }
};

bool ReadLog(const std::string& file, std::vector<Record>* out) {
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const size_t size = kLogRecords * sizeof(Record);
  void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return false;
  const Record* r = static_cast<const Record*>(p);
  for (size_t i = 0; i < kLogRecords; ++i) {
    // Acquire: pairs with the release stores in Log (the writer is gone by now).
    const uint32_t state =
        std::atomic_ref<uint32_t>(const_cast<uint32_t&>(r[i].state)).load(std::memory_order_acquire);
    if (state == 0) break;
    out->push_back(r[i]);
  }
  munmap(p, size);
  return true;
}

void Check(const Config& cfg, const std::vector<std::string>& logs, shmdict::Dict& d,
           uint64_t end_ns, Report* rep) {
  std::vector<std::vector<shmdict::lincheck::Operation>> per_key(size_t(cfg.keys));
  struct Counter {
    uint64_t acked = 0, killed = 0;
    std::vector<int64_t> results;
  };
  std::vector<Counter> counters(size_t(cfg.counters));
  for (const std::string& file : logs) {
    std::vector<Record> records;
    if (!ReadLog(file, &records)) {
      rep->messages.push_back("cannot read log " + file);
      ++rep->unexpected;
      continue;
    }
    for (const Record& r : records) {
      const uint32_t state = r.state;
      ++rep->operations;
      if (state != kReturned) ++rep->killed_operations;
      if (r.kind == kFetchAdd) {
        if (r.key >= counters.size()) continue;
        Counter& c = counters[r.key];
        if (state == kReturned && r.outcome == uint8_t(Outcome::kOk)) {
          ++c.acked;
          c.results.push_back(r.result);
        } else {
          ++c.killed;
        }
        continue;
      }
      if (r.key >= per_key.size()) continue;
      if (state == kReturned && r.outcome == kTorn) continue;  // counted by the processes
      shmdict::lincheck::Operation op;
      op.kind = static_cast<Kind>(r.kind);
      op.invoke_ns = r.invoke_ns;
      op.value = r.value;
      op.expected = r.expected;
      op.ttl_ns = uint64_t(r.ttl_ms) * 1000000u;
      if (state == kReturned) {
        op.outcome = static_cast<Outcome>(r.outcome);
        op.return_ns = r.return_ns;
        op.version = r.version;
      }
      per_key[r.key].push_back(op);
    }
  }
  // The final state of every key, read after everything stopped, is a final read.
  for (uint32_t k = 0; k < uint32_t(cfg.keys); ++k) {
    uint64_t version = 0;
    shmdict::lincheck::Operation op;
    op.kind = Kind::kGet;
    // Stamped as it happens: entries go on expiring after the run stopped.
    op.invoke_ns = std::max(end_ns, NowNs());
    absl::StatusOr<std::string> v = d.Get(KeyName(k), &version);
    op.return_ns = NowNs() + 1;
    if (v.ok()) {
      op.outcome = Outcome::kOk;
      op.value = CheckValue(k, *v, cfg.min_value, cfg.max_value);
      op.version = version;
      if (op.value == 0) {
        ++rep->torn;
        rep->messages.push_back("final value of " + KeyName(k) + " is torn");
        continue;
      }
    } else {
      op.outcome = Outcome::kNotFound;
    }
    per_key[k].push_back(op);
  }
  // Expiry bounds (tools/lincheck.h). The log's times are CLOCK_MONOTONIC, the
  // deadlines CLOCK_REALTIME; over a run the two advance together (to well under a
  // millisecond). Early: the deadline is the precise clock's millisecond, rounded
  // down, plus the ttl; plus a millisecond for the two clocks' drift. Late: readers
  // see the deadline through the coarse clock (core/clock.h), whose lag behind the
  // precise one is --expiry_late_ms at most.
  shmdict::lincheck::Options lin;
  lin.evictable = cfg.lrs;
  lin.early_ns = 2000000;
  lin.late_ns = uint64_t(cfg.expiry_late_ms) * 1000000u;
  for (uint32_t k = 0; k < uint32_t(cfg.keys); ++k) {
    shmdict::lincheck::Result r =
        shmdict::lincheck::CheckKey(per_key[k], 2000000000, lin);
    rep->search_steps += r.steps;
    ++rep->keys_checked;
    if (!r.linearizable) {
      ++rep->lin_violations;
      if (rep->messages.size() < 20) {
        rep->messages.push_back(KeyName(k) + " (" + std::to_string(per_key[k].size()) +
                                " operations) is not linearizable: " + r.message);
      }
    }
  }
  for (uint32_t c = 0; c < uint32_t(cfg.counters) && !cfg.lrs; ++c) {
    Counter& ctr = counters[c];
    absl::StatusOr<std::string> v = d.Get(CounterName(c));
    int64_t final_value = 0;
    if (v.ok() && v->size() == 8) std::memcpy(&final_value, v->data(), 8);
    const bool in_range = final_value >= int64_t(ctr.acked) &&
                          final_value <= int64_t(ctr.acked + ctr.killed);
    std::sort(ctr.results.begin(), ctr.results.end());
    const bool distinct =
        std::adjacent_find(ctr.results.begin(), ctr.results.end()) == ctr.results.end();
    const bool bounded = ctr.results.empty() ||
                         (ctr.results.front() >= 1 && ctr.results.back() <= final_value);
    if (!in_range || !distinct || !bounded) {
      ++rep->counter_violations;
      rep->messages.push_back(CounterName(c) + ": final " + std::to_string(final_value) +
                              ", acknowledged increments " + std::to_string(ctr.acked) +
                              ", killed " + std::to_string(ctr.killed) +
                              (distinct ? "" : ", duplicate results") +
                              (bounded ? "" : ", results out of range"));
    }
  }
}

std::string Json(const Report& r) {
  char buf[2048];
  std::snprintf(
      buf, sizeof(buf),
      "{\"ok\":%s,\"seconds\":%.2f,\"kills\":%" PRIu64 ",\"stops\":%" PRIu64
      ",\"writer_incarnations\":%" PRIu64 ",\"operations\":%" PRIu64
      ",\"killed_operations\":%" PRIu64 ",\"keys_checked\":%" PRIu64
      ",\"search_steps\":%" PRIu64 ",\"torn\":%" PRIu64 ",\"linearizability_violations\":%" PRIu64
      ",\"counter_violations\":%" PRIu64 ",\"unexpected_errors\":%" PRIu64
      ",\"recoveries\":%" PRIu64 ",\"repaired_at_end\":%" PRIu64 ",\"verify_damage\":%" PRIu64
      ",\"reads\":%" PRIu64 ",\"reads_per_second\":%.0f,\"read_p50_ns\":%" PRIu64
      ",\"read_p99_ns\":%" PRIu64 ",\"read_p999_ns\":%" PRIu64 ",\"read_max_ns\":%" PRIu64
      ",\"reader_max_gap_ns\":%" PRIu64 ",\"logs_full\":%" PRIu64 "}",
      r.ok() ? "true" : "false", r.seconds, r.kills, r.stops, r.writer_incarnations,
      r.operations, r.killed_operations, r.keys_checked, r.search_steps, r.torn,
      r.lin_violations, r.counter_violations, r.unexpected, r.recoveries, r.repaired_at_end,
      r.verify_damage, r.reads, r.reads_per_second, r.p50_ns, r.p99_ns, r.p999_ns,
      r.max_latency_ns, r.max_gap_ns, r.logs_full);
  return buf;
}

std::vector<std::pair<std::string, int>> ParseMix(const std::string& text) {
  std::vector<std::pair<std::string, int>> mix;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return {};
    const std::string name = item.substr(0, eq);
    const int weight = std::atoi(item.c_str() + eq + 1);
    if (name != "put" && name != "insert" && name != "replace" && name != "erase" &&
        name != "cas" && name != "fetch_add" && name != "touch") {
      return {};
    }
    if (weight < 0) return {};
    if (weight > 0) mix.emplace_back(name, weight);
    start = end + 1;
  }
  return mix;
}

int Fail(const char* message) {
  std::fprintf(stderr, "stress: %s\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shmdict stress harness: writer and reader processes on one table, optional "
      "chaos, and a linearizability checker.\n  stress [--duration=S] [--writers=N] "
      "[--readers=N] [--kill_min_ms=A --kill_max_ms=B] [--json] ...");
  absl::ParseCommandLine(argc, argv);
  Config cfg;
  cfg.keys = absl::GetFlag(FLAGS_keys);
  cfg.counters = absl::GetFlag(FLAGS_counters);
  cfg.min_value = absl::GetFlag(FLAGS_min_value);
  cfg.max_value = absl::GetFlag(FLAGS_max_value);
  cfg.read_log_every = absl::GetFlag(FLAGS_read_log_every);
  cfg.mix = ParseMix(absl::GetFlag(FLAGS_mix));
  cfg.seed = absl::GetFlag(FLAGS_seed);
  if (cfg.seed == 0) cfg.seed = NowNs();
  cfg.ttl_percent = absl::GetFlag(FLAGS_ttl_percent);
  cfg.ttl_min_ms = absl::GetFlag(FLAGS_ttl_min_ms);
  cfg.ttl_max_ms = absl::GetFlag(FLAGS_ttl_max_ms);
  cfg.expiry_late_ms = absl::GetFlag(FLAGS_expiry_late_ms);
  if (cfg.expiry_late_ms < 0) return Fail("--expiry_late_ms must be >= 0");
  const std::string eviction = absl::GetFlag(FLAGS_eviction);
  if (eviction != "none" && eviction != "lrs") return Fail("--eviction: none or lrs");
  cfg.lrs = eviction == "lrs";
  if (cfg.ttl_percent < 0 || cfg.ttl_percent > 100) return Fail("--ttl_percent: 0 to 100");
  if (cfg.ttl_min_ms < 1 || cfg.ttl_max_ms < cfg.ttl_min_ms) {
    return Fail("--ttl_min_ms must be >= 1 and <= --ttl_max_ms");
  }
  uint64_t capacity = absl::GetFlag(FLAGS_capacity);
  if (capacity == 0) capacity = uint64_t(cfg.keys + cfg.counters) * 2;
  const int writers = absl::GetFlag(FLAGS_writers);
  const int readers = absl::GetFlag(FLAGS_readers);
  const int kill_min = absl::GetFlag(FLAGS_kill_min_ms);
  const int kill_max = std::max(kill_min, absl::GetFlag(FLAGS_kill_max_ms));
  const int stop_every = absl::GetFlag(FLAGS_stop_every_ms);
  const int stop_ms = absl::GetFlag(FLAGS_stop_ms);
  const double duration = absl::GetFlag(FLAGS_duration);
  if (cfg.mix.empty()) return Fail("--mix: want name=weight,... with names put, insert, "
                                   "replace, erase, cas, fetch_add, touch");
  if (cfg.keys < 1 || cfg.counters < 1) return Fail("--keys and --counters must be >= 1");
  if (cfg.min_value < 16 || cfg.max_value < cfg.min_value) {
    return Fail("--min_value must be >= 16 and <= --max_value");
  }
  if (writers < 1 || readers < 0 || readers > kMaxReaders) {
    return Fail("--writers must be >= 1 and --readers in [0, 64]");
  }
  if (duration <= 0) return Fail("--duration must be > 0");
  if (cfg.read_log_every < 1) return Fail("--read_log_every must be >= 1");

  cfg.path = absl::GetFlag(FLAGS_path);
  if (cfg.path.empty()) cfg.path = "/dev/shm/shmdict-stress-" + std::to_string(getpid());
  cfg.log_dir = absl::GetFlag(FLAGS_log_dir);
  if (cfg.log_dir.empty()) {
    const char* tmp = getenv("TEST_TMPDIR");
    cfg.log_dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/shmdict-stress-" +
                  std::to_string(getpid());
  }
  mkdir(cfg.log_dir.c_str(), 0700);

  absl::StatusOr<shmdict::Dict> d =
      shmdict::Dict::Open(cfg.path, {.create = true,
                                     .exclusive = true,
                                     .capacity = capacity,
                                     .max_key_size = 16,
                                     .max_value_size = uint32_t(cfg.max_value),
                                     .eviction = cfg.lrs ? shmdict::Eviction::kLrs
                                                         : shmdict::Eviction::kNone});
  if (!d.ok()) {
    std::fprintf(stderr, "stress: cannot create %s: %s\n", cfg.path.c_str(),
                 std::string(d.status().message()).c_str());
    return 2;
  }
  auto* sh = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (sh == MAP_FAILED) return Fail("mmap of the shared state failed");
  new (sh) Shared();

  if (!absl::GetFlag(FLAGS_json)) {
    std::printf("stress: seed %" PRIu64 ", %d writers, %d readers, %d keys + %d counters, "
                "values %d-%d B, %.1f s\n",
                cfg.seed, writers, readers, cfg.keys, cfg.counters, cfg.min_value,
                cfg.max_value, duration);
    std::printf("        table: capacity %" PRIu64 ", eviction %s; %d%% of writes with a "
                "time to live of %d-%d ms\n",
                capacity, cfg.lrs ? "lrs (counters not checked: they may be evicted)" : "none",
                cfg.ttl_percent, cfg.ttl_min_ms, cfg.ttl_max_ms);
    if (kill_min > 0) {
      std::printf("        chaos: a writer killed every %d-%d ms\n", kill_min, kill_max);
    }
    if (stop_every > 0) {
      std::printf("        chaos: a writer stopped for %d ms every %d ms\n", stop_ms,
                  stop_every);
    }
    std::fflush(stdout);
  }

  Report rep;
  std::vector<std::string> logs;
  uint64_t next_uid = 1;
  std::vector<pid_t> writer_pids(static_cast<size_t>(writers));
  std::vector<pid_t> reader_pids(static_cast<size_t>(readers));
  auto spawn_writer = [&](int i) {
    const uint64_t uid = next_uid++;
    logs.push_back(cfg.log_dir + "/w" + std::to_string(uid) + ".log");
    if (!Log::Create(logs.back())) {
      std::fprintf(stderr, "stress: cannot create %s: %s\n", logs.back().c_str(),
                   strerror(errno));
      std::exit(2);
    }
    writer_pids[size_t(i)] = Spawn([&] { WriterMain(cfg, sh, uid); });
    ++rep.writer_incarnations;
  };
  for (int i = 0; i < writers; ++i) spawn_writer(i);
  for (int i = 0; i < readers; ++i) {
    const uint64_t uid = next_uid++;
    logs.push_back(cfg.log_dir + "/r" + std::to_string(uid) + ".log");
    if (!Log::Create(logs.back())) {
      std::fprintf(stderr, "stress: cannot create %s: %s\n", logs.back().c_str(),
                   strerror(errno));
      std::exit(2);
    }
    reader_pids[size_t(i)] = Spawn([&] { ReaderMain(cfg, sh, i, uid); });
  }

  std::mt19937_64 rng(cfg.seed);
  const uint64_t start = NowNs();
  const uint64_t end = start + uint64_t(duration * 1e9);
  uint64_t next_kill = kill_min > 0 ? start + uint64_t(kill_min + rng() % uint64_t(kill_max - kill_min + 1)) * 1000000 : ~uint64_t{0};
  uint64_t next_stop = stop_every > 0 ? start + uint64_t(stop_every) * 1000000 : ~uint64_t{0};
  int stopped = -1;
  uint64_t resume_at = 0;
  for (uint64_t now = NowNs(); now < end; now = NowNs()) {
    if (stopped >= 0 && now >= resume_at) {
      kill(writer_pids[size_t(stopped)], SIGCONT);
      stopped = -1;
    }
    if (now >= next_kill) {
      const int i = int(rng() % uint64_t(writers));
      if (i == stopped) {
        kill(writer_pids[size_t(i)], SIGCONT);
        stopped = -1;
      }
      kill(writer_pids[size_t(i)], SIGKILL);
      waitpid(writer_pids[size_t(i)], nullptr, 0);
      ++rep.kills;
      spawn_writer(i);
      next_kill = now + uint64_t(kill_min + rng() % uint64_t(kill_max - kill_min + 1)) * 1000000;
    }
    if (now >= next_stop && stopped < 0) {
      stopped = int(rng() % uint64_t(writers));
      kill(writer_pids[size_t(stopped)], SIGSTOP);
      ++rep.stops;
      resume_at = now + uint64_t(stop_ms) * 1000000;
      next_stop = now + uint64_t(stop_every) * 1000000;
    }
    uint64_t wake = std::min({end, next_kill, next_stop, stopped >= 0 ? resume_at : end});
    if (wake > now) SleepNs(std::min<uint64_t>(wake - now, 50000000));
  }
  if (stopped >= 0) kill(writer_pids[size_t(stopped)], SIGCONT);
  sh->stop.store(1);
  for (pid_t pid : writer_pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++rep.unexpected;
      rep.messages.push_back("a writer exited abnormally (status " + std::to_string(status) + ")");
    }
  }
  for (pid_t pid : reader_pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++rep.unexpected;
      rep.messages.push_back("a reader exited abnormally (status " + std::to_string(status) + ")");
    }
  }
  const uint64_t end_ns = NowNs();
  rep.seconds = double(end_ns - start) / 1e9;

  Check(cfg, logs, *d, end_ns, &rep);
  shmdict::internal::Table* table = shmdict::internal::TableOf(*d);
  rep.recoveries = d->GetStats().recoveries;
  absl::StatusOr<uint64_t> repaired = table->RepairDeadLocks();
  rep.repaired_at_end = repaired.ok() ? *repaired : 0;
  const shmdict::internal::VerifyReport vr = table->Verify();
  rep.verify_damage = vr.damage + vr.dead_locks;
  for (const std::string& m : vr.messages) rep.messages.push_back("verify: " + m);
  rep.torn += sh->writer_torn.load();
  rep.unexpected += sh->unexpected_errors.load();
  rep.logs_full = sh->logs_full.load();

  std::vector<uint64_t> hist(kHistogramBuckets, 0);
  for (int i = 0; i < readers; ++i) {
    const ReaderStats& st = sh->readers[i];
    rep.reads += st.reads.load();
    rep.torn += st.torn.load();
    rep.max_latency_ns = std::max(rep.max_latency_ns, st.max_latency_ns.load());
    rep.max_gap_ns = std::max(rep.max_gap_ns, st.max_gap_ns.load());
    for (int b = 0; b < kHistogramBuckets; ++b) hist[size_t(b)] += st.histogram[b].load();
  }
  rep.reads_per_second = readers > 0 ? double(rep.reads) / rep.seconds : 0;
  auto percentile = [&](double q) -> uint64_t {
    const uint64_t target = uint64_t(std::ceil(q * double(rep.reads)));
    uint64_t seen = 0;
    for (int b = 0; b < kHistogramBuckets; ++b) {
      seen += hist[size_t(b)];
      if (seen >= target && seen > 0) return BucketUpperNs(b);
    }
    return 0;
  };
  rep.p50_ns = percentile(0.5);
  rep.p99_ns = percentile(0.99);
  rep.p999_ns = percentile(0.999);

  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", Json(rep).c_str());
  } else {
    std::printf("\nstress report (%.1f s)\n", rep.seconds);
    std::printf("  chaos: %" PRIu64 " kills, %" PRIu64 " stops, %" PRIu64
                " writer processes in all; %" PRIu64 " bucket recoveries by writers, %" PRIu64
                " repaired at the end\n",
                rep.kills, rep.stops, rep.writer_incarnations, rep.recoveries,
                rep.repaired_at_end);
    std::printf("  checked: %" PRIu64 " operations (%" PRIu64
                " killed in flight) on %" PRIu64 " keys + %d counters, %" PRIu64
                " search steps\n",
                rep.operations, rep.killed_operations, rep.keys_checked, cfg.counters,
                rep.search_steps);
    std::printf("  violations: torn %" PRIu64 ", linearizability %" PRIu64 ", counters %" PRIu64
                ", unexpected errors %" PRIu64 ", verify %" PRIu64 "\n",
                rep.torn, rep.lin_violations, rep.counter_violations, rep.unexpected,
                rep.verify_damage);
    std::printf("  readers: %" PRIu64 " reads, %.0f reads/s; latency p50 %.2f us, p99 %.2f us, "
                "p99.9 %.2f us, max %.2f us; longest gap between two reads %.2f ms\n",
                rep.reads, rep.reads_per_second, rep.p50_ns / 1e3, rep.p99_ns / 1e3,
                rep.p999_ns / 1e3, rep.max_latency_ns / 1e3, rep.max_gap_ns / 1e6);
    if (rep.logs_full > 0) {
      std::printf("  note: %" PRIu64 " writer logs filled up; those writers idled\n",
                  rep.logs_full);
    }
    for (const std::string& m : rep.messages) std::printf("  ! %s\n", m.c_str());
    std::printf("%s\n", rep.ok() ? "PASS" : "FAIL");
  }
  (void)shmdict::Dict::Unlink(cfg.path);
  if (rep.ok() && !absl::GetFlag(FLAGS_keep_logs)) {
    for (const std::string& f : logs) unlink(f.c_str());
    rmdir(cfg.log_dir.c_str());
  } else if (!rep.ok()) {
    std::fprintf(stderr, "stress: logs kept in %s\n", cfg.log_dir.c_str());
  }
  return rep.ok() ? 0 : 1;
}
