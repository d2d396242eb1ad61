// Writers hold a bucket lock for the write and nothing else: no error status is built
// (statuses with messages allocate) and no futex wake is made while a lock is held.
// The test interposes operator new and syscall(2) and, while armed, checks whether the
// key's buckets are locked (the test is single-threaded: a held lock is ours).
#include <dlfcn.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "api/errors.h"
#include "core/layout.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/table_util.h"
#include "tests/test_util.h"

namespace {

// The two lock words watched while armed (null: disarmed).
std::atomic<const std::atomic<uint64_t>*> g_lock1{nullptr};
std::atomic<const std::atomic<uint64_t>*> g_lock2{nullptr};
std::atomic<int> g_allocations{0}, g_allocations_locked{0};
std::atomic<int> g_wakes{0}, g_wakes_locked{0};

bool Locked() {
  const auto* a = g_lock1.load();
  const auto* b = g_lock2.load();
  return (a != nullptr && a->load() != 0) || (b != nullptr && b->load() != 0);
}
bool Armed() { return g_lock1.load() != nullptr; }

}  // namespace

// The replacement pair allocates with malloc and frees with free; GCC's
// -Wmismatched-new-delete cannot see that they are a pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(size_t n) {
  if (Armed()) {
    g_allocations.fetch_add(1);
    if (Locked()) g_allocations_locked.fetch_add(1);
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

extern "C" long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_futex && (a[1] & FUTEX_CMD_MASK) == FUTEX_WAKE && Armed()) {
    g_wakes.fetch_add(1);
    if (Locked()) g_wakes_locked.fetch_add(1);
  }
  using Fn = long (*)(long, ...);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "syscall"));
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

namespace shmdict::internal {
namespace {

TEST(UnderLockTest, NoStatusNorWakeIsMadeWhileABucketIsLocked) {
  ::shmdict::testing::TempTable tt;
  std::unique_ptr<Table> t =
      ::shmdict::testing::OpenTable(tt.path(), ::shmdict::testing::CreateOptions(100, 16, 64));
  ASSERT_NE(t, nullptr);
  absl::StatusOr<uint64_t> v1 = t->Write(WriteMode::kPut, "k", "v", 0);
  ASSERT_TRUE(v1.ok()) << v1.status();
  uint64_t b1, b2;
  t->BucketsOf("k", &b1, &b2);
  BucketMeta& m1 = ::shmdict::testing::BucketMetaOf(*t, b1);
  BucketMeta& m2 = ::shmdict::testing::BucketMetaOf(*t, b2);
  // A waiter announced itself on the key's left bucket: writers wake it.
  m1.change_seq.fetch_or(1);

  g_lock1.store(&m1.lock);
  g_lock2.store(&m2.lock);
  absl::StatusOr<uint64_t> cas = t->Write(WriteMode::kCompareAndSwap, "k", "w", *v1 + 100);
  absl::StatusOr<uint64_t> ins = t->Write(WriteMode::kInsert, "k", "w", 0);
  absl::StatusOr<uint64_t> put = t->Write(WriteMode::kPut, "k", "w", 0);
  absl::Status erased = t->Erase("k");
  absl::Status erase = t->Erase("k");
  absl::StatusOr<uint64_t> rep = t->Write(WriteMode::kReplace, "k", "w", 0);
  g_lock1.store(nullptr);
  g_lock2.store(nullptr);

  EXPECT_EQ(ErrorCodeOf(cas.status()), ErrorCode::kVersion);
  EXPECT_EQ(ErrorCodeOf(ins.status()), ErrorCode::kExists);
  EXPECT_EQ(ErrorCodeOf(rep.status()), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorCodeOf(erase), ErrorCode::kNotFound);
  EXPECT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE(erased.ok()) << erased;
  // The events happened (so the checks below can fail)...
  EXPECT_GE(g_allocations.load(), 3);
  EXPECT_GE(g_wakes.load(), 1);
  // ...and none while a lock was held.
  EXPECT_EQ(g_allocations_locked.load(), 0);
  EXPECT_EQ(g_wakes_locked.load(), 0);
}

}  // namespace
}  // namespace shmdict::internal
