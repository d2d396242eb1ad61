// The shmdict demo: reader processes and a writer process share one table; the writer
// is killed with SIGKILL in the middle of a write; the readers never notice, the next
// writer repairs the dead writer's bucket, and nothing committed is lost.
//
//   tools/bazel run //tools:demo
//
// Every value carries its own check (its key, a sequence number, and bytes derived
// from both), so a torn or half-written value would be caught by the readers.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/table.h"

namespace {

constexpr int kKeys = 1000;
constexpr int kReaders = 3;
constexpr uint32_t kValueSize = 16 * 1024;  // large values: a write takes a while

// State the demo's processes share besides the table: stop flag, per-reader counters,
// and the writers' ledger of acknowledged writes (the newest sequence number per key
// that Put returned for). Lives in an anonymous shared mapping.
struct Shared {
  std::atomic<int> stop;
  std::atomic<uint64_t> reads[kReaders];
  std::atomic<uint64_t> bad_values[kReaders];
  std::atomic<uint64_t> max_gap_ns[kReaders];
  std::atomic<uint64_t> writes;
  std::atomic<uint64_t> acked_seq[kKeys];
};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

uint64_t g_start_ns = 0;

void Say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Say(const char* fmt, ...) {
  std::printf("[%5.2fs] ", double(NowNs() - g_start_ns) / 1e9);
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::printf("\n");
  std::fflush(stdout);
}

std::string Key(int k) { return "sensor/" + std::to_string(k); }

// Word i of a value: word 0 is the sequence number, word 1 the key, the rest a mix of
// both and i, so a value made of parts of two writes fails Check.
uint64_t Word(int k, uint64_t seq, size_t i) {
  if (i == 0) return seq;
  if (i == 1) return uint64_t(k);
  return (seq * 0x9E3779B97F4A7C15ull) ^ (uint64_t(k) << 32) ^ i;
}

std::string Value(int k, uint64_t seq) {
  std::string v(kValueSize, '\0');
  for (size_t i = 0; i < kValueSize / 8; ++i) {
    const uint64_t w = Word(k, seq, i);
    std::memcpy(v.data() + 8 * i, &w, 8);
  }
  return v;
}

// The sequence number of a well-formed value of key k, or -1.
int64_t Check(int k, const char* v, size_t len) {
  if (len != kValueSize) return -1;
  uint64_t seq;
  std::memcpy(&seq, v, 8);
  for (size_t i = 1; i < kValueSize / 8; ++i) {
    uint64_t w;
    std::memcpy(&w, v + 8 * i, 8);
    if (w != Word(k, seq, i)) return -1;
  }
  return int64_t(seq);
}

[[noreturn]] void Reader(const std::string& path, Shared* sh, int id) {
  shmdict::OpenOptions o;
  o.read_only = true;  // readers need no write access at all
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(path, o);
  if (!d.ok()) _exit(2);
  std::mt19937 rng(id);
  std::vector<char> buf(kValueSize);
  uint64_t last = NowNs();
  while (sh->stop.load(std::memory_order_relaxed) == 0) {
    const int k = int(rng() % kKeys);
    size_t len = 0;
    absl::Status s = d->GetInto(Key(k), buf.data(), buf.size(), &len);
    if (!s.ok() || Check(k, buf.data(), len) < 0) {
      sh->bad_values[id].fetch_add(1, std::memory_order_relaxed);
    }
    sh->reads[id].fetch_add(1, std::memory_order_relaxed);
    const uint64_t now = NowNs();
    if (now - last > sh->max_gap_ns[id].load(std::memory_order_relaxed)) {
      sh->max_gap_ns[id].store(now - last, std::memory_order_relaxed);
    }
    last = now;
  }
  _exit(0);
}

[[noreturn]] void Writer(const std::string& path, Shared* sh, uint64_t first_seq) {
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(path, shmdict::OpenOptions());
  if (!d.ok()) _exit(2);
  std::mt19937 rng(static_cast<uint32_t>(getpid()));
  for (uint64_t seq = first_seq; sh->stop.load(std::memory_order_relaxed) == 0; ++seq) {
    const int k = int(rng() % kKeys);
    if (!d->Put(Key(k), Value(k, seq)).ok()) _exit(3);
    // Acknowledged: record it. (A write killed before this line may or may not have
    // committed; one recorded here must survive.)
    uint64_t prev = sh->acked_seq[k].load(std::memory_order_relaxed);
    while (prev < seq && !sh->acked_seq[k].compare_exchange_weak(prev, seq)) {
    }
    sh->writes.fetch_add(1, std::memory_order_relaxed);
  }
  _exit(0);
}

template <typename Fn>
pid_t Spawn(Fn fn) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) fn();
  return pid;
}

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  g_start_ns = NowNs();
  const std::string path = argc > 1 ? argv[1] : "/dev/shm/shmdict-demo-" + std::to_string(getpid());
  auto* sh = static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (sh == MAP_FAILED) return 1;
  new (sh) Shared();

  std::printf("shmdict demo: %d reader processes and writer processes share one table.\n"
              "The writer is killed with SIGKILL in the middle of a write.\n\n",
              kReaders);
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(
      path, {.create = true,
             .exclusive = true,
             .capacity = kKeys,
             .max_key_size = 32,
             .max_value_size = kValueSize});
  if (!d.ok()) {
    std::fprintf(stderr, "demo: cannot create %s: %s\n", path.c_str(),
                 std::string(d.status().message()).c_str());
    return 1;
  }
  for (int k = 0; k < kKeys; ++k) {
    if (!d->Put(Key(k), Value(k, 0)).ok()) return 1;
  }
  Say("created %s: %d keys of %u-byte values", path.c_str(), kKeys, kValueSize);

  std::vector<pid_t> readers;
  for (int i = 0; i < kReaders; ++i) readers.push_back(Spawn([&] { Reader(path, sh, i); }));
  Say("started %d readers (read-only mappings), each reading random keys nonstop", kReaders);

  shmdict::internal::Table* table = shmdict::internal::TableOf(*d);
  int attempts = 0;
  shmdict::internal::VerifyReport after_kill;
  uint64_t seq_base = 1;
  pid_t writer = -1;
  // Kill writers until one dies mid-write (most kills land there: a write of 16 KiB
  // values is most of what the writer does). Each attempt uses fresh sequence numbers.
  for (attempts = 1; attempts <= 20; ++attempts, seq_base += uint64_t{1} << 40) {
    writer = Spawn([&] { Writer(path, sh, seq_base); });
    Say("writer pid %d started: rewriting random keys nonstop", int(writer));
    SleepMs(300);
    kill(writer, SIGKILL);
    waitpid(writer, nullptr, 0);
    after_kill = table->Verify();
    if (after_kill.dead_locks > 0) break;
    Say("killed writer %d between two writes; trying again", int(writer));
  }
  Say("KILLED writer pid %d with SIGKILL after %" PRIu64 " writes", int(writer),
      sh->writes.load());
  Say("  it died holding %" PRIu64 " bucket lock(s), with %" PRIu64
      " slot(s) half-written (odd sequence)",
      after_kill.dead_locks, after_kill.odd_slots);

  const uint64_t reads_at_kill = sh->reads[0] + sh->reads[1] + sh->reads[2];
  SleepMs(300);
  const uint64_t reads_after = sh->reads[0] + sh->reads[1] + sh->reads[2];
  Say("readers carry on: %" PRIu64 " reads in the 0.3 s after the kill, no lock taken",
      reads_after - reads_at_kill);

  const uint64_t recoveries_before = d->GetStats().recoveries;
  const pid_t writer2 = Spawn([&] { Writer(path, sh, seq_base + (uint64_t{1} << 40)); });
  Say("new writer pid %d started", int(writer2));
  SleepMs(500);
  // Some buckets the dead writer held may not have been needed yet: repair the rest the
  // same way (what `shmdict verify --repair` does).
  sh->stop.store(1);
  waitpid(writer2, nullptr, 0);
  const uint64_t recoveries_by_writer = d->GetStats().recoveries - recoveries_before;
  absl::StatusOr<uint64_t> repaired = table->RepairDeadLocks();
  Say("the new writer found the dead owner's lock(s), repaired and took over %" PRIu64
      " bucket(s) by itself%s",
      recoveries_by_writer,
      repaired.ok() && *repaired > 0 ? " (the rest repaired by the demo at the end)" : "");
  for (pid_t r : readers) waitpid(r, nullptr, 0);

  // Nothing committed is lost: every key holds a well-formed value at least as new as
  // the last write acknowledged for it.
  int intact = 0;
  for (int k = 0; k < kKeys; ++k) {
    absl::StatusOr<std::string> v = d->Get(Key(k));
    if (v.ok() && Check(k, v->data(), v->size()) >= int64_t(sh->acked_seq[k].load())) {
      ++intact;
    }
  }
  const shmdict::internal::VerifyReport final_report = table->Verify();
  uint64_t reads = 0, bad = 0, max_gap = 0;
  for (int i = 0; i < kReaders; ++i) {
    reads += sh->reads[i];
    bad += sh->bad_values[i];
    max_gap = std::max<uint64_t>(max_gap, sh->max_gap_ns[i]);
  }
  std::printf("\nResult\n");
  const double seconds = double(NowNs() - g_start_ns) / 1e9;
  std::printf("  reads: %" PRIu64 " (%.0f per second per reader, each checking all %u "
              "bytes), torn or missing values seen: %" PRIu64 "\n",
              reads, double(reads) / seconds / kReaders, kValueSize, bad);
  std::printf("  longest pause between two reads of one reader: %.2f ms (includes the "
              "OS scheduling %d processes on %ld cores)\n",
              double(max_gap) / 1e6, kReaders + 2, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  writes acknowledged: %" PRIu64 "; keys holding their last acknowledged "
              "write (or a newer one): %d of %d\n",
              sh->writes.load(), intact, kKeys);
  std::printf("  table verified after the repair: %s\n",
              final_report.clean() ? "clean" : "DAMAGED");
  const bool ok = bad == 0 && intact == kKeys && final_report.clean() &&
                  after_kill.dead_locks > 0;
  std::printf("\n%s\n", ok ? "OK: readers never waited or saw a torn value, and nothing "
                             "committed was lost."
                           : "FAILED: see above.");
  (void)shmdict::Dict::Unlink(path);
  return ok ? 0 : 1;
}
