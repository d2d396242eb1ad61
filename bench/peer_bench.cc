// shmdict against its peers, every figure measured in one run with the same keys and
// values (bench/workload.h): bench/run_all.sh runs it, docs/BENCHMARKS.md shows the
// results. One JSON object per line on --out, one per figure, with the repetitions and
// their median.
//
//   peer_bench [--quick | --smoke] [--suites=point,sizes,values,mixed,hotslot,evict]
//              [--engines=shmdict,shmdict_ttl,shmdict_so,naive_seqlock,boost_interprocess,lmdb,
//                         std_unordered_map,absl_flat_hash_map,memcached,redis]
//              [--memcached=127.0.0.1:PORT] [--redis=127.0.0.1:PORT] [--out=FILE]
//              [--libshmdict=PATH]
//
// Stores: shmdict through its C++ API, linked statically (shmdict); the same engine
// through libshmdict.so, loaded with dlopen and called through the C API as C programs
// and FFI users call it (shmdict_so; --libshmdict, default: the library built with this
// binary); a naive single-copy seqlock table in shared memory, with no crash safety
// (naive_seqlock, the reference); Boost.Interprocess, LMDB, std::unordered_map,
// absl::flat_hash_map, memcached and Redis (bench/peer_*.h).
//
// Gets are measured two ways (bench/workload.h, "Dependent chains"): as throughput,
// independent gets over a precomputed key stream, which the CPU overlaps; and as
// latency, the same keys, each get's key waiting for the value the previous get
// returned (get_hit_latency, get_miss_latency). The floor beside them is a latency:
// one dependent random access over a working set as large as shmdict's file.
//
// Suites
//   point    a table of --keys keys (default 1M) of 16-byte keys and 64-byte values in
//            every store at once, the stores' repetitions interleaved (the network
//            stores in a group of their own, after the others): get hit and get miss
//            (throughput and latency), put (update), erase and insert (of --keys/8
//            keys taken out and put back), the same reads and puts over 64 hot keys,
//            get hit with Zipf-skewed keys (s = 0.99); for shmdict also Dict::Get
//            (returns a std::string) and Dict::GetMany in batches of 8, 16 and 64 (and
//            shmdict_get_many through the .so); and the floor.
//   sizes    get hit (throughput and latency) from 1K to 16M keys, one store at a
//            time, and the floor
//   values   get hit and put with values of 8 B to 64 KiB
//   mixed    two processes: a forked writer rewrites random keys nonstop while the
//            reader times every get (throughput, p50/p99/p99.9/max), alone and with the
//            writer, for the stores that processes share
//   hotslot  the writer rewrites the very key the reader reads: successful reads per
//            second and the retry fraction, shmdict vs a single-copy seqlock
//   evict    shmdict only: a put of a new key into an lrs table kept full (each one
//            evicts the least recently stored entry of its buckets) against a put
//            (update) in a table of the same capacity, their repetitions interleaved
// The store shmdict_ttl is shmdict with every entry written with a time to live of an
// hour: its gets against shmdict's are what reading an expiry costs.
// Special modes (one store, then exit):
//   --syscall_probe=STORE  loads a table, warms up, then runs --probe_ops gets and puts
//            between marker system calls (write(-1, "shmdict-bench-marker ...")), so
//            that `strace -f` shows exactly the system calls of the steady-state loops
//   --profile_probe        --probe_ops operations (--profile_op, default get hits) of
//            --profile_engine (shmdict or shmdict_so) at --keys keys inside the C
//            function shmdict_bench_profile_loop, for callgrind's --toggle-collect
//
// Values are checked (bench/workload.h CheckValue) outside the timed loops after loading
// and after the measurements, and on every read of the mixed and hot-slot tests
// (outside the timed region of each read). Any wrong, missing or torn value stops the
// run with exit status 1; so does a get loop that finds fewer (or more) keys than it
// should.
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "api/shmdict.h"
#include "bench/floor.h"
#include "bench/hot_slot.h"
#include "bench/peer.h"
#include "bench/peer_boost.h"
#include "bench/peer_lmdb.h"
#include "bench/peer_maps.h"
#include "bench/peer_net.h"
#include "bench/peer_seqlock.h"
#include "bench/peer_shmdict.h"
#include "bench/peer_shmdict_so.h"
#include "bench/workload.h"
#include "core/layout.h"

ABSL_FLAG(std::string, suites, "point,sizes,values,mixed,hotslot,evict",
          "comma-separated suites to run");
ABSL_FLAG(std::string, engines,
          "shmdict,shmdict_ttl,shmdict_so,naive_seqlock,boost_interprocess,lmdb,"
          "std_unordered_map,absl_flat_hash_map,memcached,redis",
          "comma-separated stores; memcached and redis need --memcached / --redis");
ABSL_FLAG(std::string, libshmdict, "",
          "libshmdict.so for the shmdict_so store (default: the one built with this binary)");
ABSL_FLAG(std::string, memcached, "", "memcached server, host:port");
ABSL_FLAG(std::string, redis, "", "Redis server, host:port");
ABSL_FLAG(std::string, out, "", "JSON-lines output file (default: stdout)");
ABSL_FLAG(bool, quick, false, "small sizes, one repetition: a smoke run of everything");
ABSL_FLAG(bool, smoke, false, "tiny sizes, for the test that checks the binary works");
ABSL_FLAG(int, reps, 0, "repetitions of each figure (default 5; --quick 1)");
ABSL_FLAG(uint64_t, keys, 0, "keys of the point and mixed suites (default 1M)");
ABSL_FLAG(std::string, sizes, "", "table sizes of the sizes suite (keys)");
ABSL_FLAG(std::string, value_sizes, "", "value sizes of the values suite (bytes)");
ABSL_FLAG(int, phase_ms, 0, "length of each timed phase of the mixed and hotslot suites");
ABSL_FLAG(std::string, name_prefix, "",
          "prefix of the files in /dev/shm (default shmdict-peer-bench-PID)");
ABSL_FLAG(std::string, syscall_probe, "", "store to run the system-call probe on");
ABSL_FLAG(uint64_t, probe_ops, 100000,
          "operations per loop of the system-call probe and of the profile probe");
ABSL_FLAG(bool, profile_probe, false,
          "run --probe_ops shmdict operations --profile_op for callgrind, then exit");
ABSL_FLAG(std::string, profile_engine, "shmdict",
          "the store of --profile_probe: shmdict or shmdict_so");
ABSL_FLAG(std::string, profile_op, "get_hit/uniform",
          "the operation of --profile_probe, as name/distribution (get_hit/uniform, "
          "put/uniform, get_many_16/uniform, get_hit/hot64, ...)");

namespace shmdict::bench {
namespace {

// ---------------------------------------------------------------------------------
// Settings and output

struct Settings {
  int reps = 5;
  uint64_t keys = uint64_t{1} << 20;
  size_t ops_local = size_t{1} << 20;  // per repetition, shared-memory / in-process
  size_t ops_net = size_t{1} << 14;    // per repetition, network stores
  int64_t phase_ns = 2'000'000'000;
  std::vector<uint64_t> sizes;
  std::vector<uint32_t> value_sizes;
  uint64_t value_sweep_bytes = uint64_t{256} << 20;  // keys * value size, at most
  std::set<std::string> engines;
  std::set<std::string> suites;
  std::string memcached;
  std::string redis;
  std::string prefix;
  int instance = 0;  // numbers the stores' files
};

FILE* g_out = stdout;

void Emit(const JsonLine& line) {
  std::fprintf(g_out, "%s\n", line.Done().c_str());
  std::fflush(g_out);
}

void Progress(const std::string& message) {
  std::fprintf(stderr, "peer_bench: %s\n", message.c_str());
  std::fflush(stderr);
}

// ---------------------------------------------------------------------------------
// The workload of one table: its keys, the order they are loaded in, and the streams.

constexpr size_t kHotKeys = 64;
constexpr double kZipfS = 0.99;

struct TableWorkload {
  uint64_t keys = 0;
  uint32_t value_size = 0;
  std::vector<uint64_t> load_order;  // [0, keys), shuffled
  KeyStream hits;                    // uniform over [0, keys)
  KeyStream misses;                  // uniform over [keys, 2 * keys)
  KeyStream hot_hits;                // uniform over 64 present keys
  KeyStream hot_misses;              // uniform over 64 absent keys
  KeyStream zipf;                    // Zipf(0.99) over the present keys
  KeyStream batch;                   // distinct present keys, to erase and insert back
  bool has_extras = false;           // hot, zipf and batch streams built

  static TableWorkload Make(uint64_t keys, uint32_t value_size, bool extras,
                            size_t batch_length) {
    TableWorkload w;
    w.keys = keys;
    w.value_size = value_size;
    std::mt19937_64 rng(0x5EED0000 ^ keys);
    w.load_order.resize(keys);
    std::iota(w.load_order.begin(), w.load_order.end(), 0);
    std::shuffle(w.load_order.begin(), w.load_order.end(), rng);
    const size_t length = StreamLength(keys);
    w.hits = KeyStream::Uniform(0, keys, length, rng());
    w.misses = KeyStream::Uniform(keys, keys, length, rng());
    if (!extras) return w;
    w.has_extras = true;
    // The hot keys: 64 of the present keys (load_order is a random permutation), and
    // 64 absent ones.
    std::vector<uint64_t> ids(length);
    std::uniform_int_distribution<size_t> pick(0, kHotKeys - 1);
    const size_t hot = std::min<size_t>(kHotKeys, keys);
    for (uint64_t& id : ids) id = w.load_order[pick(rng) % hot];
    w.hot_hits = KeyStream::FromIds(ids);
    for (uint64_t& id : ids) id = keys + pick(rng);
    w.hot_misses = KeyStream::FromIds(ids);
    // Zipf: rank r is key load_order[r], so the popular keys are scattered.
    const Zipf zipf(keys, kZipfS);
    for (uint64_t& id : ids) id = w.load_order[zipf.Sample(rng)];
    w.zipf = KeyStream::FromIds(std::move(ids));
    // The batch: the last batch_length keys of another random permutation.
    std::vector<uint64_t> perm = w.load_order;
    std::shuffle(perm.begin(), perm.end(), rng);
    perm.resize(std::min<size_t>(batch_length, keys));
    w.batch = KeyStream::FromIds(std::move(perm));
    return w;
  }
};

// The largest power of two <= x (x >= 1).
size_t FloorPow2(size_t x) {
  size_t p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}

// ---------------------------------------------------------------------------------
// Timed loops, one template instance per store: nothing virtual on the measured path.

enum class Op {
  kGetHit,
  kGetMiss,
  kGetHitLatency,   // dependent chains (bench/workload.h)
  kGetMissLatency,
  kPut,
  kHotGetHit,
  kHotGetMiss,
  kHotPut,
  kZipfGetHit,
  kGetString,  // shmdict: Dict::Get, returning a std::string
  kGetMany8,   // shmdict: Dict::GetMany in batches (shmdict_so: shmdict_get_many)
  kGetMany16,
  kGetMany64,
};

struct OpInfo {
  Op op;
  const char* name;
  const char* dist;
};

constexpr OpInfo kPointOps[] = {
    {Op::kGetHit, "get_hit", "uniform"},       {Op::kGetMiss, "get_miss", "uniform"},
    {Op::kGetHitLatency, "get_hit_latency", "uniform"},
    {Op::kGetMissLatency, "get_miss_latency", "uniform"},
    {Op::kPut, "put", "uniform"},              {Op::kHotGetHit, "get_hit", "hot64"},
    {Op::kHotGetMiss, "get_miss", "hot64"},    {Op::kHotPut, "put", "hot64"},
    {Op::kZipfGetHit, "get_hit", "zipf0.99"},  {Op::kGetString, "get_string_hit", "uniform"},
    {Op::kGetMany8, "get_many_8", "uniform"},  {Op::kGetMany16, "get_many_16", "uniform"},
    {Op::kGetMany64, "get_many_64", "uniform"},
};

template <class P>
double TimeGets(P& p, const KeyStream& s, size_t ops, size_t* pos, char* buf, size_t cap,
                bool expect_found) {
  size_t found = 0;
  size_t q = *pos;
  const int64_t t0 = NowNs();
  for (size_t i = 0; i < ops; ++i) {
    size_t len = 0;
    found += p.Get(s.key(q), buf, cap, &len) ? 1 : 0;
    Escape(buf);
    q = s.Next(q);
  }
  const int64_t t1 = NowNs();
  *pos = q;
  if (found != (expect_found ? ops : 0)) {
    Die(absl::StrCat(P::kName, ": ", found, " of ", ops, " gets found their key, expected ",
                     expect_found ? ops : 0));
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(ops);
}

// Gets as a dependent chain (bench/workload.h): each get's key waits for the previous
// get's value (hits) or result and a load fence (misses). Dies if a get finds a key
// it should not, or misses one it should, or returns a value that is not well formed.
template <bool kHits, class P>
double TimeDependentGets(P& p, const KeyStream& s, size_t ops, size_t* pos, char* buf,
                         size_t cap) {
  size_t found = 0;
  uint64_t bad = 0;
  size_t q = *pos;
  const int64_t t0 = NowNs();
  for (size_t i = 0; i < ops; ++i) {
    size_t len = 0;
    const bool hit = p.Get(s.key(q), buf, cap, &len);
    found += hit ? 1 : 0;
    uint64_t dependency;
    if constexpr (kHits) {
      dependency = ValueDependency(buf, len);
    } else {
      dependency = hit ? 1 : 0;
      LoadFence();
    }
    bad |= dependency;
    q = s.After(q, dependency);
  }
  const int64_t t1 = NowNs();
  *pos = q;
  if (found != (kHits ? ops : 0) || bad != 0) {
    Die(absl::StrCat(P::kName, ": dependent chain: ", found, " of ", ops,
                     " gets found their key, expected ", kHits ? ops : 0,
                     bad != 0 ? "; a value read was not well formed" : ""));
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(ops);
}

template <class P>
double TimePuts(P& p, const KeyStream& s, size_t ops, size_t* pos, ValueMaker& values,
                uint64_t* revision) {
  size_t q = *pos;
  uint64_t rev = *revision;
  const int64_t t0 = NowNs();
  for (size_t i = 0; i < ops; ++i) {
    p.Put(s.key(q), values.Make(s.id(q), ++rev));
    q = s.Next(q);
  }
  const int64_t t1 = NowNs();
  *pos = q;
  *revision = rev;
  return static_cast<double>(t1 - t0) / static_cast<double>(ops);
}

// ---------------------------------------------------------------------------------
// The floor (bench/floor.h) over as many bytes as shmdict's file for the same table.

uint64_t ShmdictFileSize(uint64_t keys, uint32_t value_size) {
  absl::StatusOr<internal::Layout> l =
      internal::ComputeLayout(keys, static_cast<uint32_t>(kKeySize), value_size);
  if (!l.ok()) Die("layout: " + l.status().ToString());
  return l->file_size;
}

// ---------------------------------------------------------------------------------
// A store (or the floor) with its position in each stream: the measurement driver
// interleaves the repetitions of several of them through this interface, one virtual
// call per repetition.

struct MixedResult {
  double reads_per_s = 0;
  double writes_per_s = 0;  // the writer's, during the reader's window
  uint64_t samples = 0;
  double p50_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  // The reader's CPU time over its wall time in the window, and the times the kernel
  // took its CPU away: on a shared 2-vCPU machine a second busy process also competes
  // for CPU time, which this separates from memory interference.
  double cpu_share = 0;
  int64_t preemptions = 0;
  std::vector<uint32_t> ticks;  // every get's latency, in time-stamp counter ticks
};

// The calling process's CPU time (ns) and involuntary context switches so far.
void CpuUsage(int64_t* cpu_ns, int64_t* preemptions) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  *cpu_ns = (int64_t{u.ru_utime.tv_sec} + u.ru_stime.tv_sec) * 1'000'000'000 +
            (int64_t{u.ru_utime.tv_usec} + u.ru_stime.tv_usec) * 1000;
  *preemptions = u.ru_nivcsw;
}

class Runner {
 public:
  virtual ~Runner() = default;
  virtual std::string name() const = 0;
  virtual bool network() const { return false; }
  virtual bool Supports(Op op) const = 0;
  // ns per operation of one repetition of `ops` operations.
  virtual double Measure(Op op, size_t ops) = 0;
  // Erases the first `n` keys of the batch stream, then inserts them back: ns per
  // erase and ns per insert.
  virtual std::pair<double, double> MeasureEraseInsert(size_t n) = 0;
  // Checks present and absent keys' values; dies on any mismatch.
  virtual void Verify(const char* when) = 0;
  virtual bool SharedBetweenProcesses() const { return false; }
  virtual MixedResult RunMixed(bool with_writer, int64_t duration_ns) {
    Die(name() + " is not shared between processes");
  }
};

// The floor, measured under the get-hit ops (throughput and latency alike: it is a
// latency either way), so that it is interleaved with the gets it is compared with.
class FloorRunner final : public Runner {
 public:
  explicit FloorRunner(uint64_t bytes) {
    std::string error;
    chase_ = PointerChase::Make(bytes, 0xF100F ^ bytes, &error);
    if (chase_ == nullptr) Die("the floor: " + error);
  }
  std::string name() const override { return "floor_dependent_access"; }
  bool Supports(Op op) const override {
    return op == Op::kGetHit || op == Op::kGetHitLatency;
  }
  double Measure(Op, size_t ops) override { return chase_->Time(ops); }
  std::pair<double, double> MeasureEraseInsert(size_t) override { return {0, 0}; }
  void Verify(const char*) override {}
  uint64_t bytes() const { return chase_->bytes(); }

 private:
  std::unique_ptr<PointerChase> chase_;
};

// Shared between a reader and its forked writer (anonymous shared memory).
struct WriterControl {
  // Set by the parent to stop the writer (relaxed: a flag polled in a loop; nothing is
  // published with it).
  std::atomic<int> stop;
  // The writer's completed writes. Stored only by the writer, relaxed: a counter read
  // for throughput, not a publication.
  std::atomic<uint64_t> writes;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

WriterControl* MapWriterControl() {
  void* p = mmap(nullptr, sizeof(WriterControl), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Die(std::string("mmap: ") + strerror(errno));
  return new (p) WriterControl{};
}

// Forks a child that runs `body` (which must return only when told to stop) and then
// exits; the child dies with its parent.
template <class Body>
pid_t ForkWriter(Body body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) Die(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    MarkChildProcess();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    body();
    _exit(0);
  }
  return pid;
}

// Waits until the writer has written `min_writes` times (or dies trying).
void AwaitWriter(const WriterControl* ctl, pid_t pid, uint64_t min_writes) {
  const int64_t deadline = NowNs() + 60'000'000'000;
  // Relaxed: the write counter, nothing published with it (WriterControl).
  while (ctl->writes.load(std::memory_order_relaxed) < min_writes) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) Die("the writer process exited early");
    if (NowNs() > deadline) Die("the writer process made no progress for 60 s");
    usleep(1000);
  }
}

void StopWriter(WriterControl* ctl, pid_t pid) {
  // Relaxed: the stop flag, nothing published with it (WriterControl).
  ctl->stop.store(1, std::memory_order_relaxed);
  const int64_t deadline = NowNs() + 30'000'000'000;
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) Die(std::string("waitpid: ") + strerror(errno));
    if (NowNs() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      Die("the writer process did not stop within 30 s");
    }
    usleep(1000);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("the writer process failed (see its message above)");
  }
}

void Summarize(MixedResult& r, int64_t wall_ns) {
  r.samples = r.ticks.size();
  r.reads_per_s = static_cast<double>(r.samples) * 1e9 / static_cast<double>(wall_ns);
  std::vector<uint32_t> t = r.ticks;
  const double tpn = TicksPerNs();
  r.p50_ns = static_cast<double>(Quantile(t, 0.50)) / tpn;
  r.p99_ns = static_cast<double>(Quantile(t, 0.99)) / tpn;
  r.p999_ns = static_cast<double>(Quantile(t, 0.999)) / tpn;
  r.max_ns = static_cast<double>(Quantile(t, 1.0)) / tpn;
}

template <class P>
class PeerRunner final : public Runner {
 public:
  PeerRunner(std::unique_ptr<P> peer, const TableWorkload* w, bool network)
      : peer_(std::move(peer)),
        w_(w),
        network_(network),
        buf_(w->value_size),
        values_(w->value_size) {}

  std::string name() const override { return std::string(P::kName); }
  bool network() const override { return network_; }
  P& peer() { return *peer_; }

  bool Supports(Op op) const override {
    switch (op) {
      case Op::kGetHit:
      case Op::kGetMiss:
      case Op::kGetHitLatency:
      case Op::kGetMissLatency:
      case Op::kPut:
        return true;
      case Op::kHotGetHit:
      case Op::kHotGetMiss:
      case Op::kHotPut:
      case Op::kZipfGetHit:
        return w_->has_extras;
      case Op::kGetString:
        return std::is_same_v<P, ShmdictPeer>;
      case Op::kGetMany8:
      case Op::kGetMany16:
      case Op::kGetMany64:
        return std::is_same_v<P, ShmdictPeer> || std::is_same_v<P, ShmdictSoPeer>;
    }
    return false;
  }

  double Measure(Op op, size_t ops) override {
    const size_t cap = buf_.size();
    switch (op) {
      case Op::kGetHit:
        return TimeGets(*peer_, w_->hits, ops, &pos_hits_, buf_.data(), cap, true);
      case Op::kGetMiss:
        return TimeGets(*peer_, w_->misses, ops, &pos_misses_, buf_.data(), cap, false);
      case Op::kGetHitLatency:
        return TimeDependentGets<true>(*peer_, w_->hits, ops, &pos_hits_, buf_.data(), cap);
      case Op::kGetMissLatency:
        return TimeDependentGets<false>(*peer_, w_->misses, ops, &pos_misses_, buf_.data(),
                                        cap);
      case Op::kPut:
        return TimePuts(*peer_, w_->hits, ops, &pos_puts_, values_, &revision_);
      case Op::kHotGetHit:
        return TimeGets(*peer_, w_->hot_hits, ops, &pos_hot_, buf_.data(), cap, true);
      case Op::kHotGetMiss:
        return TimeGets(*peer_, w_->hot_misses, ops, &pos_hot_miss_, buf_.data(), cap,
                        false);
      case Op::kHotPut:
        return TimePuts(*peer_, w_->hot_hits, ops, &pos_hot_put_, values_, &revision_);
      case Op::kZipfGetHit:
        return TimeGets(*peer_, w_->zipf, ops, &pos_zipf_, buf_.data(), cap, true);
      case Op::kGetString:
      case Op::kGetMany8:
      case Op::kGetMany16:
      case Op::kGetMany64:
        if constexpr (std::is_same_v<P, ShmdictPeer>) return MeasureShmdict(op, ops);
        if constexpr (std::is_same_v<P, ShmdictSoPeer>) return MeasureGetManySo(op, ops);
        break;
    }
    Die(name() + ": operation not supported");
  }

  std::pair<double, double> MeasureEraseInsert(size_t n) override {
    n = std::min(n, w_->batch.length());
    int64_t t0 = NowNs();
    for (size_t i = 0; i < n; ++i) {
      if (!peer_->Erase(w_->batch.key(i))) Die(name() + ": erase of a present key failed");
    }
    int64_t t1 = NowNs();
    const double erase_ns = static_cast<double>(t1 - t0) / static_cast<double>(n);
    t0 = NowNs();
    for (size_t i = 0; i < n; ++i) {
      if (!peer_->Insert(w_->batch.key(i), values_.Make(w_->batch.id(i), ++revision_))) {
        Die(name() + ": insert of an absent key failed");
      }
    }
    t1 = NowNs();
    return {erase_ns, static_cast<double>(t1 - t0) / static_cast<double>(n)};
  }

  void Verify(const char* when) override {
    const uint64_t n = w_->keys;
    const uint64_t sample = std::min<uint64_t>(n, network_ ? 500 : 5000);
    size_t len = 0;
    for (uint64_t i = 0; i < sample; ++i) {
      const uint64_t id = n <= sample ? i : w_->load_order[i];
      const std::string key = KeyString(id);
      if (!peer_->Get(key, buf_.data(), buf_.size(), &len)) {
        Die(absl::StrCat(name(), " (", when, "): key ", key, " (number ", id, ") is missing"));
      }
      if (!CheckValue(buf_.data(), len, w_->value_size, id)) {
        Die(absl::StrCat(name(), " (", when, "): key ", key, " has a wrong value"));
      }
    }
    for (uint64_t i = 0; i < std::min<uint64_t>(sample, 500); ++i) {
      if (peer_->Get(KeyString(n + i), buf_.data(), buf_.size(), &len)) {
        Die(absl::StrCat(name(), " (", when, "): absent key number ", n + i, " found"));
      }
    }
  }

  bool SharedBetweenProcesses() const override {
    return !std::is_same_v<P, StdMapPeer> && !std::is_same_v<P, AbslMapPeer>;
  }

  MixedResult RunMixed(bool with_writer, int64_t duration_ns) override {
    if constexpr (std::is_same_v<P, StdMapPeer> || std::is_same_v<P, AbslMapPeer>) {
      Die(name() + " is not shared between processes");
    } else {
      WriterControl* ctl = MapWriterControl();
      pid_t pid = -1;
      if (with_writer) {
        const KeyStream& s = w_->hits;
        const size_t start = s.length() / 2;  // not the reader's keys in lockstep
        pid = ForkWriter([&] {
          std::unique_ptr<P> writer = peer_->OpenAgain();
          ValueMaker values(w_->value_size);
          uint64_t rev = uint64_t{1} << 31;  // distinct from the parent's revisions
          uint64_t writes = 0;
          size_t q = start;
          // Relaxed: the stop flag, nothing published with it (WriterControl).
          while (ctl->stop.load(std::memory_order_relaxed) == 0) {
            writer->Put(s.key(q), values.Make(s.id(q), ++rev));
            q = s.Next(q);
            // Relaxed: the write counter, nothing published with it (WriterControl).
            ctl->writes.store(++writes, std::memory_order_relaxed);
          }
        });
        AwaitWriter(ctl, pid, 100);
      }
      MixedResult r;
      // Room for every get at up to 30 M gets/s (the loop stops early if it fills up).
      const size_t cap_samples = std::min<size_t>(
          network_ ? (size_t{1} << 20) : (size_t{1} << 24),
          static_cast<size_t>(static_cast<double>(duration_ns) * 0.03) + 1024);
      r.ticks.assign(cap_samples, 0);  // allocated and faulted in before timing
      size_t n = 0;
      const double tpn = TicksPerNs();
      const KeyStream& s = w_->hits;
      size_t q = pos_hits_;
      // Relaxed: the write counter, nothing published with it (WriterControl).
      const uint64_t w0 = ctl->writes.load(std::memory_order_relaxed);
      int64_t cpu0 = 0, nivcsw0 = 0;
      CpuUsage(&cpu0, &nivcsw0);
      const int64_t wall0 = NowNs();
      const uint64_t deadline = Ticks() + static_cast<uint64_t>(duration_ns * tpn);
      size_t len = 0;
      while (true) {
        const uint64_t t0 = Ticks();
        const bool found = peer_->Get(s.key(q), buf_.data(), buf_.size(), &len);
        const uint64_t t1 = Ticks();
        if (!found || !CheckValue(buf_.data(), len, w_->value_size, s.id(q))) {
          if (pid > 0) kill(pid, SIGKILL);
          Die(absl::StrCat(name(), ": mixed test: key number ", s.id(q),
                           found ? " read a wrong or torn value" : " is missing"));
        }
        r.ticks[n++] = static_cast<uint32_t>(std::min<uint64_t>(t1 - t0, UINT32_MAX));
        q = s.Next(q);
        if (t1 >= deadline || n == cap_samples) break;
      }
      r.ticks.resize(n);
      const int64_t wall = NowNs() - wall0;
      // Relaxed: the write counter, nothing published with it (WriterControl).
      const uint64_t w1 = ctl->writes.load(std::memory_order_relaxed);
      int64_t cpu1 = 0, nivcsw1 = 0;
      CpuUsage(&cpu1, &nivcsw1);
      r.cpu_share = static_cast<double>(cpu1 - cpu0) / static_cast<double>(wall);
      r.preemptions = nivcsw1 - nivcsw0;
      pos_hits_ = q;
      if (with_writer) StopWriter(ctl, pid);
      munmap(ctl, sizeof(WriterControl));
      Summarize(r, wall);
      r.writes_per_s = static_cast<double>(w1 - w0) * 1e9 / static_cast<double>(wall);
      return r;
    }
  }

 private:
  double MeasureShmdict(Op op, size_t ops) {
    const Dict& d = peer_->dict();
    const KeyStream& s = w_->hits;
    if (op == Op::kGetString) {
      size_t q = pos_hits_;
      size_t found = 0;
      const int64_t t0 = NowNs();
      for (size_t i = 0; i < ops; ++i) {
        absl::StatusOr<std::string> v = d.Get(s.key(q));
        found += v.ok() ? 1 : 0;
        Escape(&v);
        q = s.Next(q);
      }
      const int64_t t1 = NowNs();
      pos_hits_ = q;
      if (found != ops) Die("shmdict: Dict::Get missed present keys");
      return static_cast<double>(t1 - t0) / static_cast<double>(ops);
    }
    const size_t b = op == Op::kGetMany8 ? 8 : op == Op::kGetMany16 ? 16 : 64;
    std::vector<std::string_view> keys(b);
    std::vector<char> storage(b * buf_.size());
    std::vector<absl::Span<char>> bufs;
    for (size_t j = 0; j < b; ++j) {
      bufs.emplace_back(storage.data() + j * buf_.size(), buf_.size());
    }
    std::vector<GetManyResult> results(b);
    const size_t batches = std::max<size_t>(ops / b, 1);
    size_t q = pos_hits_;
    size_t found = 0;
    const int64_t t0 = NowNs();
    for (size_t i = 0; i < batches; ++i) {
      for (size_t j = 0; j < b; ++j) {
        keys[j] = s.key(q);
        q = s.Next(q);
      }
      const absl::StatusOr<size_t> n = d.GetMany(keys, bufs, absl::MakeSpan(results));
      if (!n.ok()) Die("shmdict: GetMany: " + n.status().ToString());
      found += *n;
      Escape(storage.data());
    }
    const int64_t t1 = NowNs();
    pos_hits_ = q;
    if (found != batches * b) Die("shmdict: GetMany missed present keys");
    return static_cast<double>(t1 - t0) / static_cast<double>(batches * b);
  }

  // shmdict_get_many through libshmdict.so, in batches as MeasureShmdict's GetMany.
  double MeasureGetManySo(Op op, size_t ops) {
    if (op == Op::kGetString) Die(name() + ": operation not supported");
    const KeyStream& s = w_->hits;
    const size_t b = op == Op::kGetMany8 ? 8 : op == Op::kGetMany16 ? 16 : 64;
    std::vector<const void*> keys(b);
    const std::vector<size_t> key_lens(b, kKeySize);
    std::vector<char> storage(b * buf_.size());
    std::vector<void*> values(b);
    for (size_t j = 0; j < b; ++j) values[j] = storage.data() + j * buf_.size();
    const std::vector<size_t> caps(b, buf_.size());
    std::vector<size_t> lens(b);
    std::vector<int> results(b);
    const size_t batches = std::max<size_t>(ops / b, 1);
    size_t q = pos_hits_;
    size_t found = 0;
    const int64_t t0 = NowNs();
    for (size_t i = 0; i < batches; ++i) {
      for (size_t j = 0; j < b; ++j) {
        keys[j] = s.key(q).data();
        q = s.Next(q);
      }
      found += peer_->GetMany(b, keys.data(), key_lens.data(), values.data(), caps.data(),
                              lens.data(), results.data());
      Escape(storage.data());
    }
    const int64_t t1 = NowNs();
    pos_hits_ = q;
    if (found != batches * b) Die("shmdict_so: shmdict_get_many missed present keys");
    return static_cast<double>(t1 - t0) / static_cast<double>(batches * b);
  }

  std::unique_ptr<P> peer_;
  const TableWorkload* w_;
  bool network_;
  std::vector<char> buf_;
  ValueMaker values_;
  uint64_t revision_ = 0;
  size_t pos_hits_ = 0, pos_misses_ = 0, pos_puts_ = 0, pos_hot_ = 0, pos_hot_miss_ = 0,
         pos_hot_put_ = 0, pos_zipf_ = 0;
};

// Creates, loads and verifies one store for `w`.
template <class P>
std::unique_ptr<Runner> MakePeerRunner(Settings& st, const TableWorkload& w,
                                       const std::string& server, bool network) {
  PeerConfig c;
  c.name = absl::StrCat(st.prefix, "-", st.instance++, "-", P::kName);
  c.keys = w.keys;
  c.value_size = w.value_size;
  c.server = server;
  const int64_t t0 = NowNs();
  std::unique_ptr<P> p = P::Create(c);
  ValueMaker values(w.value_size);
  p->Load(w.load_order, values);
  auto r = std::make_unique<PeerRunner<P>>(std::move(p), &w, network);
  r->Verify("after loading");
  Progress(absl::StrCat("loaded ", P::kName, ": ", w.keys, " keys of ", w.value_size,
                        " B in ", (NowNs() - t0) / 1'000'000, " ms"));
  return r;
}

std::unique_ptr<Runner> MakeRunner(Settings& st, const std::string& engine,
                                   const TableWorkload& w) {
  if (engine == "shmdict") return MakePeerRunner<ShmdictPeer>(st, w, "", false);
  if (engine == "shmdict_ttl") return MakePeerRunner<ShmdictTtlPeer>(st, w, "", false);
  if (engine == "shmdict_so") return MakePeerRunner<ShmdictSoPeer>(st, w, "", false);
  if (engine == "naive_seqlock") return MakePeerRunner<NaiveSeqlockPeer>(st, w, "", false);
  if (engine == "boost_interprocess") return MakePeerRunner<BoostPeer>(st, w, "", false);
  if (engine == "lmdb") return MakePeerRunner<LmdbPeer>(st, w, "", false);
  if (engine == "std_unordered_map") return MakePeerRunner<StdMapPeer>(st, w, "", false);
  if (engine == "absl_flat_hash_map") return MakePeerRunner<AbslMapPeer>(st, w, "", false);
  if (engine == "memcached") {
    return MakePeerRunner<MemcachedPeer>(st, w, st.memcached, true);
  }
  if (engine == "redis") return MakePeerRunner<RedisPeer>(st, w, st.redis, true);
  Die("unknown store \"" + engine + "\"");
}

const std::vector<std::string>& AllEngines() {
  static const std::vector<std::string> kAll = {
      "shmdict",           "shmdict_ttl",        "shmdict_so",        "naive_seqlock",
      "boost_interprocess", "lmdb",              "std_unordered_map", "absl_flat_hash_map",
      "memcached",         "redis"};
  return kAll;
}

// The selected engines, in the canonical order.
std::vector<std::string> Selected(const Settings& st, bool local_only) {
  std::vector<std::string> r;
  for (const std::string& e : AllEngines()) {
    if (st.engines.count(e) == 0) continue;
    if (local_only && (e == "memcached" || e == "redis")) continue;
    r.push_back(e);
  }
  return r;
}

size_t OpsFor(const Settings& st, const Runner& r) {
  return r.network() ? st.ops_net : st.ops_local;
}

// ---------------------------------------------------------------------------------
// Suites

JsonLine Record(const char* suite, const std::string& engine, const char* op,
                const char* dist, uint64_t keys, uint32_t value_size, size_t ops,
                const std::vector<double>& reps) {
  JsonLine j;
  j.Str("suite", suite)
      .Str("engine", engine)
      .Str("op", op)
      .Str("dist", dist)
      .Int("keys", static_cast<int64_t>(keys))
      .Int("value_size", value_size)
      .Int("ops_per_rep", static_cast<int64_t>(ops))
      .Num("ns_per_op", Median(reps))
      .NumArray("reps_ns", reps);
  return j;
}

void RunMixedSuite(Settings& st, std::vector<std::unique_ptr<Runner>>& runners,
                   const TableWorkload& w) {
  for (auto& r : runners) {
    if (!r->SharedBetweenProcesses()) continue;
    for (bool with_writer : {false, true}) {
      std::vector<double> rps, wps, p50, p99, p999, mx, cpu, rpcs, preempt;
      std::vector<uint32_t> pooled;
      for (int rep = 0; rep < st.reps; ++rep) {
        MixedResult m = r->RunMixed(with_writer, st.phase_ns);
        rps.push_back(m.reads_per_s);
        wps.push_back(m.writes_per_s);
        p50.push_back(m.p50_ns);
        p99.push_back(m.p99_ns);
        p999.push_back(m.p999_ns);
        mx.push_back(m.max_ns);
        cpu.push_back(m.cpu_share);
        rpcs.push_back(m.cpu_share > 0 ? m.reads_per_s / m.cpu_share : 0);
        preempt.push_back(static_cast<double>(m.preemptions));
        pooled.insert(pooled.end(), m.ticks.begin(), m.ticks.end());
      }
      r->Verify("after the mixed test");
      // The pooled latency distribution, for the plot: quantiles at 1 - 10^-x.
      std::string curve = "[";
      const double tpn = TicksPerNs();
      const double qs[] = {0.0,   0.1,    0.25,    0.5,     0.75,     0.9,     0.95,
                           0.99,  0.995,  0.999,   0.9995,  0.9999,   0.99999, 0.999999,
                           1.0};
      for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); ++i) {
        if (i > 0) curve += ",";
        const double v = static_cast<double>(Quantile(pooled, qs[i])) / tpn;
        curve += absl::StrCat("[", qs[i], ",", v, "]");
      }
      curve += "]";
      JsonLine j;
      j.Str("suite", "mixed")
          .Str("engine", r->name())
          .Str("phase", with_writer ? "writer" : "solo")
          .Int("keys", static_cast<int64_t>(w.keys))
          .Int("value_size", w.value_size)
          .Num("duration_s", static_cast<double>(st.phase_ns) / 1e9)
          .Num("reads_per_s", Median(rps))
          .Num("writer_writes_per_s", Median(wps))
          .Num("p50_ns", Median(p50))
          .Num("p99_ns", Median(p99))
          .Num("p999_ns", Median(p999))
          .Num("max_ns", Median(mx))
          .Num("reader_cpu_share", Median(cpu))
          .Num("reads_per_cpu_s", Median(rpcs))
          .Num("reader_preemptions", Median(preempt))
          .Int("samples", static_cast<int64_t>(pooled.size()))
          .NumArray("reps_reads_per_s", rps)
          .NumArray("reps_p99_ns", p99)
          .Raw("curve", curve);
      Emit(j);
      Progress(absl::StrCat("mixed ", r->name(), with_writer ? " with writer" : " solo",
                            ": ", static_cast<int64_t>(Median(rps)), " reads/s, p99 ",
                            static_cast<int64_t>(Median(p99)), " ns"));
    }
  }
}

void RunPointSuite(Settings& st) {
  const std::vector<std::string> engines = Selected(st, false);
  if (engines.empty()) return;
  const size_t batch_local = FloorPow2(std::max<uint64_t>(st.keys / 8, 1));
  const TableWorkload w = TableWorkload::Make(st.keys, 64, true, batch_local);
  std::vector<std::unique_ptr<Runner>> runners;
  for (const std::string& e : engines) runners.push_back(MakeRunner(st, e, w));
  auto floor = std::make_unique<FloorRunner>(ShmdictFileSize(w.keys, w.value_size));
  const std::string floor_name = floor->name();
  runners.push_back(std::move(floor));

  if (st.suites.count("point") == 0) {
    if (st.suites.count("mixed")) RunMixedSuite(st, runners, w);
    return;
  }
  for (const OpInfo& info : kPointOps) {
    // Warm-up, then the repetitions, interleaved across stores: first the stores in
    // shared or local memory (and the floor), then the network stores among
    // themselves. A network loop (a system call per request, a server process on the
    // other vCPU) disturbs the loop measured right after it (docs/BENCHMARKS.md says
    // by how much).
    std::map<std::string, std::vector<double>> reps;
    for (const bool network_group : {false, true}) {
      for (auto& r : runners) {
        if (r->network() == network_group && r->Supports(info.op)) {
          r->Measure(info.op, OpsFor(st, *r) / 4);
        }
      }
      for (int rep = 0; rep < st.reps; ++rep) {
        for (auto& r : runners) {
          if (r->network() == network_group && r->Supports(info.op)) {
            reps[r->name()].push_back(r->Measure(info.op, OpsFor(st, *r)));
          }
        }
      }
    }
    for (auto& r : runners) {
      if (!r->Supports(info.op)) continue;
      JsonLine j = Record("point", r->name(), info.name, info.dist, w.keys, w.value_size,
                          OpsFor(st, *r), reps[r->name()]);
      if (r->name() == floor_name) {
        j.Int("working_set_bytes",
              static_cast<int64_t>(static_cast<FloorRunner&>(*r).bytes()));
      }
      Emit(j);
    }
    Progress(absl::StrCat("point ", info.name, " ", info.dist, " done"));
  }
  // Erase and insert: take a batch of keys out, put them back.
  {
    std::map<std::string, std::vector<double>> erase, insert;
    std::map<std::string, size_t> count;
    for (int rep = 0; rep < st.reps; ++rep) {
      for (auto& r : runners) {
        if (r->name() == floor_name) continue;
        const size_t n = r->network() ? std::min(batch_local, st.ops_net) : batch_local;
        auto [e, i] = r->MeasureEraseInsert(n);
        erase[r->name()].push_back(e);
        insert[r->name()].push_back(i);
        count[r->name()] = n;
      }
    }
    for (auto& r : runners) {
      if (r->name() == floor_name) continue;
      Emit(Record("point", r->name(), "erase", "uniform", w.keys, w.value_size,
                  count[r->name()], erase[r->name()]));
      Emit(Record("point", r->name(), "insert", "uniform", w.keys, w.value_size,
                  count[r->name()], insert[r->name()]));
    }
    Progress("point erase/insert done");
  }
  for (auto& r : runners) r->Verify("after the point suite");
  if (st.suites.count("mixed")) RunMixedSuite(st, runners, w);
}

// A put that evicts against a put that updates (see "evict" above). The lrs table gets
// 1.6 times its capacity in distinct keys first (its 1.25 slots per key of capacity
// all full, up to the few bucket pairs that fill last); every timed put is then of a
// new key. The evictions per timed put are reported beside the time.
void RunEvictSuite(Settings& st) {
  if (st.engines.count("shmdict") == 0) return;
  const uint64_t n = st.keys;
  auto open = [&](const char* what, Eviction eviction) {
    const std::string path =
        absl::StrCat("/dev/shm/", st.prefix, "-", st.instance++, "-evict-", what);
    OpenOptions o;
    o.create = true;
    o.exclusive = true;
    o.capacity = n;
    o.max_key_size = kKeySize;
    o.max_value_size = 64;
    o.eviction = eviction;
    absl::StatusOr<Dict> d = Dict::Open(path, o);
    if (!d.ok()) Die("evict: creating " + path + ": " + d.status().ToString());
    RegisterForRemoval(path);
    return std::make_pair(std::move(*d), path);
  };
  auto [plain, plain_path] = open("plain", Eviction::kNone);
  auto [lrs, lrs_path] = open("lrs", Eviction::kLrs);
  ValueMaker values(64);
  char key[kKeySize];
  auto put = [&](Dict& d, uint64_t id, uint64_t revision) {
    MakeKey(id, key);
    const absl::StatusOr<uint64_t> v = d.Put(std::string_view(key, kKeySize),
                                             values.Make(id, revision));
    if (!v.ok()) Die("evict: put: " + v.status().ToString());
  };
  for (uint64_t id = 0; id < n; ++id) put(plain, id, 0);
  uint64_t next_new = 0;
  for (; next_new < n + n * 6 / 10; ++next_new) put(lrs, next_new, 0);
  const KeyStream updates = KeyStream::Uniform(0, n, st.ops_local, 0xE71C7);
  size_t pos = 0;
  uint64_t revision = 1;
  auto time_updates = [&](size_t ops) {
    const int64_t t0 = NowNs();
    for (size_t i = 0; i < ops; ++i) {
      const absl::StatusOr<uint64_t> v =
          plain.Put(updates.key(pos), values.Make(updates.id(pos), revision));
      if (!v.ok()) Die("evict: update: " + v.status().ToString());
      pos = updates.Next(pos);
    }
    ++revision;
    return static_cast<double>(NowNs() - t0) / static_cast<double>(ops);
  };
  auto time_evicting = [&](size_t ops) {
    const int64_t t0 = NowNs();
    for (size_t i = 0; i < ops; ++i) put(lrs, next_new++, 0);
    return static_cast<double>(NowNs() - t0) / static_cast<double>(ops);
  };
  time_updates(st.ops_local / 4);
  time_evicting(st.ops_local / 4);
  std::vector<double> update_reps, evict_reps;
  const uint64_t evictions_before = lrs.GetStats().evictions;
  for (int rep = 0; rep < st.reps; ++rep) {
    update_reps.push_back(time_updates(st.ops_local));
    evict_reps.push_back(time_evicting(st.ops_local));
  }
  const uint64_t evictions = lrs.GetStats().evictions - evictions_before;
  Emit(Record("evict", "shmdict", "put", "uniform", n, 64, st.ops_local, update_reps));
  JsonLine j = Record("evict", "shmdict", "put_evict", "new keys", n, 64, st.ops_local,
                      evict_reps);
  j.Num("evictions_per_put",
        static_cast<double>(evictions) / static_cast<double>(st.ops_local * st.reps));
  Emit(j);
  for (const std::string& path : {plain_path, lrs_path}) {
    (void)Dict::Unlink(path);
    ForgetRemoval(path);
  }
  Progress(absl::StrCat("evict: put ", static_cast<int64_t>(Median(update_reps)),
                        " ns, put that evicts ", static_cast<int64_t>(Median(evict_reps)),
                        " ns"));
}

void RunSizesSuite(Settings& st) {
  std::vector<std::string> engines = Selected(st, true);
  for (uint64_t keys : st.sizes) {
    const TableWorkload w = TableWorkload::Make(keys, 64, false, 0);
    {
      FloorRunner floor(ShmdictFileSize(keys, 64));
      floor.Measure(Op::kGetHit, st.ops_local / 4);
      std::vector<double> reps;
      for (int rep = 0; rep < st.reps; ++rep) reps.push_back(floor.Measure(Op::kGetHit, st.ops_local));
      JsonLine j = Record("sizes", floor.name(), "get_hit", "uniform", keys, 64, st.ops_local, reps);
      j.Int("working_set_bytes", static_cast<int64_t>(floor.bytes()));
      Emit(j);
    }
    for (const std::string& e : engines) {
      std::unique_ptr<Runner> r = MakeRunner(st, e, w);
      // Throughput and latency, their repetitions interleaved.
      r->Measure(Op::kGetHit, st.ops_local / 4);
      r->Measure(Op::kGetHitLatency, st.ops_local / 4);
      std::vector<double> reps, latency_reps;
      for (int rep = 0; rep < st.reps; ++rep) {
        reps.push_back(r->Measure(Op::kGetHit, st.ops_local));
        latency_reps.push_back(r->Measure(Op::kGetHitLatency, st.ops_local));
      }
      Emit(Record("sizes", r->name(), "get_hit", "uniform", keys, 64, st.ops_local, reps));
      Emit(Record("sizes", r->name(), "get_hit_latency", "uniform", keys, 64, st.ops_local,
                  latency_reps));
    }
    Progress(absl::StrCat("sizes ", keys, " done"));
  }
}

void RunValuesSuite(Settings& st) {
  std::vector<std::string> engines = Selected(st, true);
  for (uint32_t vsize : st.value_sizes) {
    const uint64_t keys =
        std::max<uint64_t>(1024, std::min<uint64_t>(st.keys, st.value_sweep_bytes / vsize));
    const size_t ops = std::clamp<size_t>((size_t{1} << 30) / vsize, st.ops_local / 64,
                                          st.ops_local);
    const TableWorkload w = TableWorkload::Make(keys, vsize, false, 0);
    for (const std::string& e : engines) {
      std::unique_ptr<Runner> r = MakeRunner(st, e, w);
      for (Op op : {Op::kGetHit, Op::kPut}) {
        r->Measure(op, ops / 4);
        std::vector<double> reps;
        for (int rep = 0; rep < st.reps; ++rep) reps.push_back(r->Measure(op, ops));
        Emit(Record("values", r->name(), op == Op::kGetHit ? "get_hit" : "put", "uniform",
                    keys, vsize, ops, reps));
      }
      r->Verify("after the values suite");
    }
    Progress(absl::StrCat("values ", vsize, " B done"));
  }
}

// The hot-slot test. One key, rewritten nonstop by a forked writer.
struct HotSlotResult {
  double reads_per_s = 0;     // successful reads
  double attempts_per_s = 0;  // read attempts (successes + retries)
  double writes_per_s = 0;
  double retry_fraction = 0;  // retries / attempts
};

// The single-copy seqlock, with its writer writing nonstop (pace_ns == 0) or one write
// every pace_ns.
HotSlotResult RunSeqlockHotSlot(int64_t duration_ns, double pace_ns) {
  void* mem = mmap(nullptr, sizeof(SingleCopySeqlock), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) Die(std::string("mmap: ") + strerror(errno));
  auto* lock = new (mem) SingleCopySeqlock{};
  ValueMaker values(kHotSlotValueSize);
  lock->Write(values.Make(0, 0).data());
  WriterControl* ctl = MapWriterControl();
  const double tpn = TicksPerNs();
  const pid_t pid = ForkWriter([&] {
    uint64_t rev = 0;
    uint64_t writes = 0;
    const uint64_t pace_ticks = static_cast<uint64_t>(pace_ns * tpn);
    uint64_t next = Ticks();
    // Relaxed: the stop flag, nothing published with it (WriterControl).
    while (ctl->stop.load(std::memory_order_relaxed) == 0) {
      if (pace_ticks > 0) {
        while (Ticks() < next) {
        }
        next += pace_ticks;
      }
      lock->Write(values.Make(0, ++rev).data());
      // Relaxed: the write counter, nothing published with it (WriterControl).
      ctl->writes.store(++writes, std::memory_order_relaxed);
    }
  });
  AwaitWriter(ctl, pid, 100);
  char out[kHotSlotValueSize];
  uint64_t attempts = 0, successes = 0;
  // Relaxed: the write counter, nothing published with it (WriterControl).
  const uint64_t w0 = ctl->writes.load(std::memory_order_relaxed);
  const int64_t t0 = NowNs();
  const uint64_t deadline = Ticks() + static_cast<uint64_t>(duration_ns * tpn);
  while (true) {
    for (int i = 0; i < 64; ++i) {
      ++attempts;
      if (lock->TryRead(out)) {
        ++successes;
        if (!CheckValue(out, sizeof(out), sizeof(out), 0)) {
          kill(pid, SIGKILL);
          Die("single-copy seqlock: a read passed its check but is torn");
        }
      }
    }
    if (Ticks() >= deadline) break;
  }
  const int64_t wall = NowNs() - t0;
  // Relaxed: the write counter, nothing published with it (WriterControl).
  const uint64_t w1 = ctl->writes.load(std::memory_order_relaxed);
  StopWriter(ctl, pid);
  munmap(ctl, sizeof(WriterControl));
  munmap(mem, sizeof(SingleCopySeqlock));
  HotSlotResult r;
  r.reads_per_s = static_cast<double>(successes) * 1e9 / static_cast<double>(wall);
  r.attempts_per_s = static_cast<double>(attempts) * 1e9 / static_cast<double>(wall);
  r.writes_per_s = static_cast<double>(w1 - w0) * 1e9 / static_cast<double>(wall);
  r.retry_fraction = attempts == 0 ? 0
                                   : static_cast<double>(attempts - successes) /
                                         static_cast<double>(attempts);
  return r;
}

// shmdict: two phases under one writer.
//   get:    Dict::GetInto of the hot key, as fast as it goes: successful reads per
//           second, and the retries inside GetInto from the engine's per-thread counter
//           (internal::ReadRetriesOfThisThread, read before and after the phase)
//   probe:  the slot protocol itself (ShmdictSlotProbe): attempts and retries, a
//           cross-check of the counter
struct ShmdictHotSlot {
  HotSlotResult get;
  HotSlotResult probe;
};

ShmdictHotSlot RunShmdictHotSlot(Settings& st, int64_t duration_ns) {
  PeerConfig c;
  c.name = absl::StrCat(st.prefix, "-", st.instance++, "-hotslot");
  c.keys = 1024;
  c.value_size = kHotSlotValueSize;
  std::unique_ptr<ShmdictPeer> p = ShmdictPeer::Create(c);
  ValueMaker values(kHotSlotValueSize);
  const std::string key = KeyString(0);
  p->Put(key, values.Make(0, 0));
  ShmdictSlotProbe probe;
  if (!probe.Attach(p->dict(), key)) Die("hot slot: cannot find the hot key's slot");
  WriterControl* ctl = MapWriterControl();
  const pid_t pid = ForkWriter([&] {
    std::unique_ptr<ShmdictPeer> w = p->OpenAgain();
    uint64_t rev = 0;
    uint64_t writes = 0;
    // Relaxed: the stop flag, nothing published with it (WriterControl).
    while (ctl->stop.load(std::memory_order_relaxed) == 0) {
      w->Put(key, values.Make(0, ++rev));
      // Relaxed: the write counter, nothing published with it (WriterControl).
      ctl->writes.store(++writes, std::memory_order_relaxed);
    }
  });
  AwaitWriter(ctl, pid, 100);
  const double tpn = TicksPerNs();
  char out[kHotSlotValueSize];
  auto fail = [&](const std::string& m) {
    kill(pid, SIGKILL);
    Die("shmdict hot slot: " + m);
  };
  ShmdictHotSlot r;
  // Phase 1: Get.
  {
    uint64_t reads = 0;
    // Relaxed: the write counter, nothing published with it (WriterControl).
    const uint64_t w0 = ctl->writes.load(std::memory_order_relaxed);
    const uint64_t retries0 = internal::ReadRetriesOfThisThread();
    const int64_t t0 = NowNs();
    const uint64_t deadline = Ticks() + static_cast<uint64_t>(duration_ns * tpn);
    size_t len = 0;
    while (true) {
      for (int i = 0; i < 64; ++i) {
        if (!p->Get(key, out, sizeof(out), &len)) fail("the hot key is missing");
        if (!CheckValue(out, len, sizeof(out), 0)) fail("Get returned a torn value");
        ++reads;
      }
      if (Ticks() >= deadline) break;
    }
    const int64_t wall = NowNs() - t0;
    const uint64_t retries = internal::ReadRetriesOfThisThread() - retries0;
    // Relaxed: the write counter, nothing published with it (WriterControl).
    const uint64_t w1 = ctl->writes.load(std::memory_order_relaxed);
    r.get.reads_per_s = static_cast<double>(reads) * 1e9 / static_cast<double>(wall);
    r.get.attempts_per_s =
        static_cast<double>(reads + retries) * 1e9 / static_cast<double>(wall);
    r.get.writes_per_s = static_cast<double>(w1 - w0) * 1e9 / static_cast<double>(wall);
    r.get.retry_fraction =
        static_cast<double>(retries) / static_cast<double>(reads + retries);
  }
  // Phase 2: the slot protocol, counting attempts.
  {
    uint64_t attempts = 0, successes = 0;
    // Relaxed: the write counter, nothing published with it (WriterControl).
    const uint64_t w0 = ctl->writes.load(std::memory_order_relaxed);
    const int64_t t0 = NowNs();
    const uint64_t deadline = Ticks() + static_cast<uint64_t>(duration_ns * tpn);
    while (true) {
      for (int i = 0; i < 64; ++i) {
        ++attempts;
        const ShmdictSlotProbe::Outcome o = probe.Read(out);
        if (o == ShmdictSlotProbe::kConsistent) {
          ++successes;
          if (!CheckValue(out, sizeof(out), sizeof(out), 0)) {
            fail("the slot protocol accepted a torn value");
          }
        } else if (o == ShmdictSlotProbe::kOtherKey) {
          fail("the hot key left its slot");
        }
      }
      if (Ticks() >= deadline) break;
    }
    const int64_t wall = NowNs() - t0;
    // Relaxed: the write counter, nothing published with it (WriterControl).
    const uint64_t w1 = ctl->writes.load(std::memory_order_relaxed);
    r.probe.reads_per_s = static_cast<double>(successes) * 1e9 / static_cast<double>(wall);
    r.probe.attempts_per_s = static_cast<double>(attempts) * 1e9 / static_cast<double>(wall);
    r.probe.writes_per_s = static_cast<double>(w1 - w0) * 1e9 / static_cast<double>(wall);
    r.probe.retry_fraction =
        static_cast<double>(attempts - successes) / static_cast<double>(attempts);
  }
  StopWriter(ctl, pid);
  munmap(ctl, sizeof(WriterControl));
  return r;
}

void RunHotSlotSuite(Settings& st) {
  if (st.engines.count("shmdict") == 0) return;
  std::vector<double> get_rps, get_aps, get_retry, get_wps, probe_rps, probe_aps, probe_retry,
      probe_wps;
  std::vector<double> sl_rps, sl_aps, sl_retry, sl_wps, pc_rps, pc_aps, pc_retry, pc_wps;
  for (int rep = 0; rep < st.reps; ++rep) {
    const ShmdictHotSlot s = RunShmdictHotSlot(st, st.phase_ns);
    get_rps.push_back(s.get.reads_per_s);
    get_aps.push_back(s.get.attempts_per_s);
    get_retry.push_back(s.get.retry_fraction);
    get_wps.push_back(s.get.writes_per_s);
    probe_rps.push_back(s.probe.reads_per_s);
    probe_aps.push_back(s.probe.attempts_per_s);
    probe_retry.push_back(s.probe.retry_fraction);
    probe_wps.push_back(s.probe.writes_per_s);
    const HotSlotResult n = RunSeqlockHotSlot(st.phase_ns, 0);
    sl_rps.push_back(n.reads_per_s);
    sl_aps.push_back(n.attempts_per_s);
    sl_retry.push_back(n.retry_fraction);
    sl_wps.push_back(n.writes_per_s);
    // The yardstick again with its writer paced to shmdict's writer's rate.
    const HotSlotResult pc = RunSeqlockHotSlot(st.phase_ns, 1e9 / s.get.writes_per_s);
    pc_rps.push_back(pc.reads_per_s);
    pc_aps.push_back(pc.attempts_per_s);
    pc_retry.push_back(pc.retry_fraction);
    pc_wps.push_back(pc.writes_per_s);
  }
  auto emit = [&](const char* engine, const char* method, const std::vector<double>& rps,
                  const std::vector<double>& aps, const std::vector<double>& retry,
                  const std::vector<double>& wps) {
    JsonLine j;
    j.Str("suite", "hot_slot")
        .Str("engine", engine)
        .Str("method", method)
        .Num("reads_per_s", Median(rps))
        .Num("attempts_per_s", Median(aps))
        .Num("retry_fraction", Median(retry))
        .Num("writer_writes_per_s", Median(wps))
        .NumArray("reps_reads_per_s", rps)
        .NumArray("reps_retry_fraction", retry);
    Emit(j);
  };
  emit("shmdict", "Dict::GetInto", get_rps, get_aps, get_retry, get_wps);
  emit("shmdict", "slot protocol probe", probe_rps, probe_aps, probe_retry, probe_wps);
  emit("seqlock_single_copy", "nonstop writer", sl_rps, sl_aps, sl_retry, sl_wps);
  emit("seqlock_single_copy", "writer paced to shmdict's write rate", pc_rps, pc_aps,
       pc_retry, pc_wps);
  Progress("hot slot done");
}

// ---------------------------------------------------------------------------------
// Probes for strace and callgrind

void Marker(const char* what) {
  const std::string m = absl::StrCat("shmdict-bench-marker ", what);
  // Fails with EBADF by design: only its appearance in strace's log matters.
  (void)!syscall(SYS_write, -1, m.data(), m.size());
}

template <class P>
void SyscallProbe(Settings& st, uint64_t ops, bool network) {
  const TableWorkload w = TableWorkload::Make(st.keys, 64, false, 0);
  const std::string server = std::is_same_v<P, MemcachedPeer> ? st.memcached : st.redis;
  std::unique_ptr<Runner> r = MakePeerRunner<P>(st, w, server, network);
  // Warm-up: every key read and written (pages faulted in, the writer registered,
  // connections established).
  const size_t warm = network ? ops : w.hits.length();
  r->Measure(Op::kGetHit, warm);
  r->Measure(Op::kPut, warm);
  Marker("get-begin");
  r->Measure(Op::kGetHit, ops);
  Marker("get-end");
  Marker("put-begin");
  r->Measure(Op::kPut, ops);
  Marker("put-end");
  r->Verify("after the probe");
}

void RunSyscallProbe(Settings& st, const std::string& engine, uint64_t ops) {
  if (engine == "shmdict") return SyscallProbe<ShmdictPeer>(st, ops, false);
  if (engine == "shmdict_so") return SyscallProbe<ShmdictSoPeer>(st, ops, false);
  if (engine == "naive_seqlock") return SyscallProbe<NaiveSeqlockPeer>(st, ops, false);
  if (engine == "boost_interprocess") return SyscallProbe<BoostPeer>(st, ops, false);
  if (engine == "lmdb") return SyscallProbe<LmdbPeer>(st, ops, false);
  if (engine == "std_unordered_map") return SyscallProbe<StdMapPeer>(st, ops, false);
  if (engine == "absl_flat_hash_map") return SyscallProbe<AbslMapPeer>(st, ops, false);
  if (engine == "memcached") return SyscallProbe<MemcachedPeer>(st, ops, true);
  if (engine == "redis") return SyscallProbe<RedisPeer>(st, ops, true);
  Die("unknown store \"" + engine + "\"");
}

struct ProfileContext {
  Runner* runner;
  Op op;
  size_t ops;
};

}  // namespace
}  // namespace shmdict::bench

// The loop callgrind collects (--toggle-collect=shmdict_bench_profile_loop).
extern "C" __attribute__((noinline)) void shmdict_bench_profile_loop(void* context) {
  auto* c = static_cast<shmdict::bench::ProfileContext*>(context);
  c->runner->Measure(c->op, c->ops);
}

namespace shmdict::bench {
namespace {

void RunProfileProbe(Settings& st, const std::string& engine, const std::string& op_name,
                     uint64_t ops) {
  const OpInfo* info = nullptr;
  for (const OpInfo& i : kPointOps) {
    if (op_name == absl::StrCat(i.name, "/", i.dist)) info = &i;
  }
  if (info == nullptr) {
    std::string names;
    for (const OpInfo& i : kPointOps) absl::StrAppend(&names, " ", i.name, "/", i.dist);
    Die("--profile_op: unknown operation \"" + op_name + "\"; one of:" + names);
  }
  const bool extras = std::string_view(info->dist) != "uniform";
  const TableWorkload w = TableWorkload::Make(st.keys, 64, extras, 1);
  std::unique_ptr<Runner> r;
  if (engine == "shmdict") {
    r = MakePeerRunner<ShmdictPeer>(st, w, "", false);
  } else if (engine == "shmdict_so") {
    r = MakePeerRunner<ShmdictSoPeer>(st, w, "", false);
  } else {
    Die("--profile_engine: \"" + engine + "\" is neither shmdict nor shmdict_so");
  }
  if (!r->Supports(info->op)) Die("--profile_op: " + op_name + " is not an operation of " + engine);
  r->Measure(info->op, std::min<size_t>(ops, w.hits.length()));  // warm-up
  ProfileContext c{r.get(), info->op, ops};
  shmdict_bench_profile_loop(&c);
}

std::vector<uint64_t> ParseList(const std::string& s, const char* flag) {
  std::vector<uint64_t> r;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    char* end = nullptr;
    const std::string p(part);
    const unsigned long long v = std::strtoull(p.c_str(), &end, 10);
    if (end == p.c_str() || *end != '\0' || v == 0) {
      Die(absl::StrCat("--", flag, ": \"", p, "\" is not a positive integer"));
    }
    r.push_back(v);
  }
  return r;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("shmdict against its peers; see bench/peer_bench.cc");
  absl::ParseCommandLine(argc, argv);
  Settings st;
  const bool quick = absl::GetFlag(FLAGS_quick);
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  if (quick && smoke) Die("--quick and --smoke exclude each other");
  st.sizes = {1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24};
  st.value_sizes = {8, 64, 512, 4096, 32768, 65536};
  if (quick) {
    st.reps = 1;
    st.keys = 1 << 18;
    st.ops_local = 1 << 16;
    st.ops_net = 1 << 11;
    st.phase_ns = 300'000'000;
    st.sizes = {1 << 10, 1 << 14, 1 << 18};
    st.value_sizes = {8, 64, 4096, 65536};
    st.value_sweep_bytes = uint64_t{32} << 20;
  }
  if (smoke) {
    st.reps = 1;
    st.keys = 1 << 12;
    st.ops_local = 1 << 12;
    st.ops_net = 1 << 8;
    st.phase_ns = 50'000'000;
    st.sizes = {1 << 10, 1 << 12};
    st.value_sizes = {8, 4096};
    st.value_sweep_bytes = uint64_t{4} << 20;
  }
  if (absl::GetFlag(FLAGS_reps) > 0) st.reps = absl::GetFlag(FLAGS_reps);
  if (absl::GetFlag(FLAGS_keys) > 0) st.keys = absl::GetFlag(FLAGS_keys);
  if (absl::GetFlag(FLAGS_phase_ms) > 0) {
    st.phase_ns = int64_t{absl::GetFlag(FLAGS_phase_ms)} * 1'000'000;
  }
  if (!absl::GetFlag(FLAGS_sizes).empty()) {
    st.sizes = ParseList(absl::GetFlag(FLAGS_sizes), "sizes");
  }
  if (!absl::GetFlag(FLAGS_value_sizes).empty()) {
    st.value_sizes.clear();
    for (uint64_t v : ParseList(absl::GetFlag(FLAGS_value_sizes), "value_sizes")) {
      if (v % 8 != 0 || v > (uint64_t{64} << 20)) {
        Die(absl::StrCat("--value_sizes: ", v, " is not a multiple of 8 up to 64 MiB"));
      }
      st.value_sizes.push_back(static_cast<uint32_t>(v));
    }
  }
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_suites), ',', absl::SkipEmpty())) {
    static const std::set<std::string> kSuites = {"point", "sizes", "values", "mixed",
                                                  "hotslot", "evict"};
    if (kSuites.count(std::string(s)) == 0) Die(absl::StrCat("unknown suite \"", s, "\""));
    st.suites.insert(std::string(s));
  }
  for (absl::string_view e : absl::StrSplit(absl::GetFlag(FLAGS_engines), ',', absl::SkipEmpty())) {
    const std::string name(e);
    if (std::find(AllEngines().begin(), AllEngines().end(), name) == AllEngines().end()) {
      Die("unknown store \"" + name + "\"");
    }
    st.engines.insert(name);
  }
  ShmdictSoPeer::SetLibraryPath(absl::GetFlag(FLAGS_libshmdict));
  st.memcached = absl::GetFlag(FLAGS_memcached);
  st.redis = absl::GetFlag(FLAGS_redis);
  // Network stores without a server are left out (with a note), unless probed alone.
  if (absl::GetFlag(FLAGS_syscall_probe).empty()) {
    if (st.memcached.empty() && st.engines.erase("memcached")) {
      Progress("no --memcached server: memcached left out");
    }
    if (st.redis.empty() && st.engines.erase("redis")) {
      Progress("no --redis server: redis left out");
    }
  }
  st.prefix = absl::GetFlag(FLAGS_name_prefix);
  if (st.prefix.empty()) st.prefix = absl::StrCat("shmdict-peer-bench-", getpid());
  if (st.prefix.find('/') != std::string::npos) Die("--name_prefix must not contain '/'");

  if (!absl::GetFlag(FLAGS_out).empty()) {
    g_out = std::fopen(absl::GetFlag(FLAGS_out).c_str(), "w");
    if (g_out == nullptr) {
      Die("cannot write " + absl::GetFlag(FLAGS_out) + ": " + strerror(errno));
    }
  }
  TicksPerNs();  // calibrate before anything is timed

  if (absl::GetFlag(FLAGS_probe_ops) == 0) Die("--probe_ops must be at least 1");
  if (!absl::GetFlag(FLAGS_syscall_probe).empty()) {
    // Under strace, whose SIGTERM only detaches it: stop (and clean up) with it.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    RunSyscallProbe(st, absl::GetFlag(FLAGS_syscall_probe), absl::GetFlag(FLAGS_probe_ops));
    return 0;
  }
  if (absl::GetFlag(FLAGS_profile_probe)) {
    RunProfileProbe(st, absl::GetFlag(FLAGS_profile_engine), absl::GetFlag(FLAGS_profile_op),
                    absl::GetFlag(FLAGS_probe_ops));
    return 0;
  }

  {
    JsonLine j;
    j.Str("suite", "meta")
        .Num("ticks_per_ns", TicksPerNs())
        .Int("reps", st.reps)
        .Int("keys", static_cast<int64_t>(st.keys))
        .Int("ops_local", static_cast<int64_t>(st.ops_local))
        .Int("ops_net", static_cast<int64_t>(st.ops_net))
        .Num("phase_s", static_cast<double>(st.phase_ns) / 1e9)
        .Str("mode", smoke ? "smoke" : quick ? "quick" : "full");
    Emit(j);
  }
  if (st.suites.count("point") || st.suites.count("mixed")) RunPointSuite(st);
  if (st.suites.count("hotslot")) RunHotSlotSuite(st);
  if (st.suites.count("sizes")) RunSizesSuite(st);
  if (st.suites.count("values")) RunValuesSuite(st);
  if (st.suites.count("evict")) RunEvictSuite(st);
  if (g_out != stdout) std::fclose(g_out);
  return 0;
}

}  // namespace
}  // namespace shmdict::bench

int main(int argc, char** argv) { return shmdict::bench::Main(argc, argv); }
