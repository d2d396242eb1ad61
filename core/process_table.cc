// The process table: which processes write to a table, whether the holder of a bucket
// lock is alive, and what a child inherits across fork(). See "Writer locks and
// crashes" in core/table.h.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common.h"
#include "core/table.h"

namespace shmdict::internal {

int MoveAboveStdio(int* fd) {
  if (*fd > 2) return 0;
  const int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  const int err = errno;
  close(*fd);
  *fd = moved;
  return moved < 0 ? err : 0;
}

// ---------------------------------------------------------------------------------
// Fork handling. A child inherits its parent's file descriptors, and with them the
// parent's OFD lock on its process-table entry. The child must neither use its
// parent's entry (a lock it takes would look alive while the parent lives, and the
// parent's locks would look alive while the child lives) nor keep the parent's
// descriptor open. The atfork child handler therefore closes each table's
// entry-holding descriptor and marks the table unregistered; its next write claims a
// fresh entry.

namespace {

std::mutex g_registry_mu;  // guards g_registry and every Table's registration
std::set<Table*>* g_registry = nullptr;
std::once_flag g_atfork_once;

void AtForkPrepare() { g_registry_mu.lock(); }
void AtForkParent() { g_registry_mu.unlock(); }

}  // namespace

// Friend-free hook used by the child handler; defined below.
void ForgetRegistrationInChild(Table* t);

namespace {
void AtForkChild() {
  if (g_registry != nullptr) {
    for (Table* t : *g_registry) ForgetRegistrationInChild(t);
    g_registry->clear();
  }
  g_registry_mu.unlock();
}
}  // namespace

// ---------------------------------------------------------------------------------
// Writer registration (process table)

namespace {

struct flock ByteLock(short type, uint64_t offset) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}

}  // namespace

absl::Status Table::EnsureRegistered() {
  // Acquire: pairs with the release store below (another thread registered).
  if (registered_.load(std::memory_order_acquire)) return absl::OkStatus();
  std::call_once(g_atfork_once,
                 [] { pthread_atfork(AtForkPrepare, AtForkParent, AtForkChild); });
  std::lock_guard<std::mutex> guard(g_registry_mu);
  if (registered_.load(std::memory_order_relaxed)) return absl::OkStatus();

  // A descriptor of our own (its own open file description) to hold the entry lock.
  int pfd = -1;
  const std::string self = absl::StrCat("/proc/self/fd/", fd_);
  pfd = open(self.c_str(), O_RDWR | O_CLOEXEC);
  if (pfd < 0) pfd = open(path_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (pfd < 0) return ErrnoError(absl::StrCat("reopening ", path_), errno);
  // Never 0, 1 or 2: a program that runs with those closed and later opens or dup2()s
  // onto them (stdin, stdout, stderr) would replace our descriptor.
  if (const int err = MoveAboveStdio(&pfd); err != 0) {
    return ErrnoError("moving a descriptor above 2", err);
  }
  struct stat st;
  if (fstat(pfd, &st) != 0 || uint64_t(st.st_dev) != file_dev_ ||
      uint64_t(st.st_ino) != file_ino_) {
    close(pfd);
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path_, " was replaced by another file since it was opened"));
  }
  auto* procs = reinterpret_cast<ProcEntry*>(base_ + layout_.proc_table_offset);
  const uint32_t start = static_cast<uint32_t>(getpid()) % kProcEntries;
  for (uint32_t k = 0; k < kProcEntries; ++k) {
    const uint32_t idx = (start + k) % kProcEntries;
    struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
    if (fcntl(pfd, F_OFD_SETLK, &fl) != 0) {
      if (errno == EAGAIN || errno == EACCES) continue;  // held by a live process
      const int err = errno;
      close(pfd);
      return ErrnoError("locking a process-table entry", err);
    }
    ProcEntry& e = procs[idx];
    // Acq_rel RMW: its release half publishes the new incarnation after we hold the
    // entry's byte lock, and pairs with the acquire load in HolderIsDead, which must
    // never see our incarnation without our byte lock being visible to F_OFD_GETLK
    // (the kernel orders that); its acquire half orders us after the previous
    // claimant's bump, so incarnations of one entry never repeat.
    uint32_t inc = e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (inc == 0) inc = e.incarnation.fetch_add(1, std::memory_order_acq_rel) + 1;
    // Relaxed: informational only.
    e.pid.store(static_cast<uint32_t>(getpid()), std::memory_order_relaxed);
    e.claimed_unix_ns.store(NowUnixNs(), std::memory_order_relaxed);
    proc_fd_ = pfd;
    proc_index_ = static_cast<int32_t>(idx);
    proc_incarnation_ = inc;
    lock_word_ = (uint64_t{idx} + 1) << 32 | inc;
    if (g_registry == nullptr) g_registry = new std::set<Table*>();
    g_registry->insert(this);
    // Release: pairs with the acquire load at the top; the fields above are visible
    // to any thread that sees registered_ == true.
    registered_.store(true, std::memory_order_release);
    return absl::OkStatus();
  }
  close(pfd);
  return Err(ErrorCode::kFull,
             absl::StrCat("process table full: ", kProcEntries,
                          " live processes have this table open for writing"));
}

void ForgetRegistrationInChild(Table* t) { t->ForgetRegistrationAfterFork(); }

void Table::ReleaseRegistration() {
  {
    std::lock_guard<std::mutex> guard(g_registry_mu);
    if (g_registry != nullptr) g_registry->erase(this);
  }
  if (proc_fd_ >= 0) close(proc_fd_);  // releases our process-table entry
  proc_fd_ = -1;
}

void Table::ForgetRegistrationAfterFork() {
  // Runs in the child after fork, single-threaded; only async-signal-safe calls.
  if (proc_fd_ >= 0) close(proc_fd_);
  proc_fd_ = -1;
  proc_index_ = -1;
  proc_incarnation_ = 0;
  lock_word_ = 0;
  // Relaxed: the child is single-threaded here.
  registered_.store(false, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------
// Bucket locks

bool Table::HolderIsDead(uint64_t word) const {
  const uint64_t idx1 = word >> 32;
  const uint32_t inc = static_cast<uint32_t>(word);
  if (idx1 == 0 || idx1 > kProcEntries) return true;  // not a holder: scribbled word
  if (word == lock_word_) return false;  // another thread of this process
  const uint64_t idx = idx1 - 1;
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  // Acquire: pairs with the claimant's release fetch_add. An entry whose incarnation
  // moved on was reclaimed, which needs its byte lock, which the kernel frees only
  // when the holder is gone: the lock's holder is dead.
  if (procs[idx].incarnation.load(std::memory_order_acquire) != inc) return true;
  struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
  if (fcntl(fd_, F_OFD_GETLK, &fl) != 0) {
    // Cannot tell: assume alive. A descriptor closed behind our back is as bad as one
    // replaced: say so, so that writers give up instead of waiting forever.
    if (errno == EBADF) NoteDescriptorLost();
    return false;
  }
  if (fl.l_type != F_UNLCK) return false;
  // F_UNLCK: nobody holds the entry's byte, so the process that claimed this
  // incarnation is gone (it held the byte from before its claim until its death) -
  // provided fd_ still is the table. The application may have closed it and reused
  // the number (dup2 onto it, a double close elsewhere); then the answer is about
  // another file, and believing it would steal a live writer's lock.
  if (!DescriptorIsTable(fd_)) {
    NoteDescriptorLost();
    return false;  // fail safe: never take a lock over on an answer about another file
  }
  return true;
}

bool Table::DescriptorIsTable(int fd) const {
  struct stat st;
  return fstat(fd, &st) == 0 && uint64_t(st.st_dev) == file_dev_ &&
         uint64_t(st.st_ino) == file_ino_;
}

void Table::NoteDescriptorLost() const {
  // Relaxed: a flag for this handle's writers, who return kBadFile once they see it;
  // nothing else is published with it.
  descriptor_lost_.store(true, std::memory_order_relaxed);
}

uint32_t Table::LiveProcessCount() const {
  uint32_t live = 0;
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t idx = 0; idx < kProcEntries; ++idx) {
    // Relaxed: a statistic; an entry never claimed has incarnation 0.
    if (procs[idx].incarnation.load(std::memory_order_relaxed) == 0) continue;
    if (static_cast<int32_t>(idx) == proc_index_) {
      ++live;
      continue;
    }
    struct flock fl = ByteLock(F_WRLCK, layout_.proc_table_offset + idx * sizeof(ProcEntry));
    if (fcntl(fd_, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) ++live;
  }
  return live;
}

std::vector<ProcessInfo> Table::Processes() const {
  std::vector<ProcessInfo> out;
  const auto* procs = reinterpret_cast<const ProcEntry*>(base_ + layout_.proc_table_offset);
  for (uint32_t idx = 0; idx < kProcEntries; ++idx) {
    // Relaxed (all four loads): a report; nothing is derived from the values but the
    // listing. An entry never claimed has incarnation 0.
    const uint32_t inc = procs[idx].incarnation.load(std::memory_order_relaxed);
    if (inc == 0) continue;
    ProcessInfo p;
    p.index = idx;
    p.incarnation = inc;
    p.pid = procs[idx].pid.load(std::memory_order_relaxed);
    p.claimed_unix_ns = procs[idx].claimed_unix_ns.load(std::memory_order_relaxed);
    p.self = static_cast<int32_t>(idx) == proc_index_;
    p.live = p.self || !HolderIsDead((uint64_t{idx} + 1) << 32 | inc);
    out.push_back(p);
  }
  return out;
}


}  // namespace shmdict::internal
