// Hostile and malformed files: random bytes, truncations, flipped header bytes, forged
// headers (with a recomputed checksum), files that are not regular files, unsafe modes
// and owners, and a valid table whose buckets were scribbled over. shmdict must refuse
// each bad file with the right code and a message, and must never crash.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"
#include "api/shmdict.h"
#include "api/dict_access.h"
#include "core/layout.h"
#include "core/slot.h"
#include "core/table.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict {
namespace {

using ::shmdict::internal::ComputeLayout;
using ::shmdict::internal::FileHeader;
using ::shmdict::internal::ImmutableHeader;
using ::shmdict::internal::Layout;
using ::shmdict::testing::CreateOptions;
using ::shmdict::testing::ForkChild;
using ::shmdict::testing::ReadFile;
using ::shmdict::testing::TempTable;
using ::shmdict::testing::TestSeed;
using ::shmdict::testing::UmaskGuard;
using ::shmdict::testing::WaitChild;
using ::shmdict::testing::WriteFile;

constexpr size_t kChecksumOffset = offsetof(FileHeader, checksum);
constexpr size_t kImmutableEnd = kChecksumOffset + sizeof(uint64_t);  // 200
constexpr size_t kMutableOffset = offsetof(FileHeader, live);         // 256
static_assert(kChecksumOffset == sizeof(ImmutableHeader));

// ---------------------------------------------------------------------------------
// Options

OpenOptions Existing() { return OpenOptions(); }

OpenOptions ReadOnly() {
  OpenOptions o;
  o.read_only = true;
  return o;
}

OpenOptions AllowGroup(OpenOptions o = OpenOptions()) {
  o.allow_group = true;
  return o;
}

// ---------------------------------------------------------------------------------
// Assertions

std::string CodeName(ErrorCode code) { return std::string(ErrorCodeName(code)); }

// Success iff `status` carries exactly `want` and a non-empty message.
::testing::AssertionResult HasCode(const absl::Status& status, ErrorCode want) {
  if (status.ok()) {
    return ::testing::AssertionFailure() << "succeeded; expected " << CodeName(want);
  }
  const ErrorCode got = ErrorCodeOf(status);
  if (got != want) {
    return ::testing::AssertionFailure()
           << "got " << CodeName(got) << " (" << status << "); expected "
           << CodeName(want);
  }
  if (status.message().empty()) {
    return ::testing::AssertionFailure() << CodeName(got) << " with an empty message";
  }
  return ::testing::AssertionSuccess() << status;
}

template <typename T>
::testing::AssertionResult HasCode(const absl::StatusOr<T>& result, ErrorCode want) {
  return HasCode(result.status(), want);
}

// Success iff `status` is a key miss: kNotFound. (A miss carries no message: it is
// built without allocating.)
::testing::AssertionResult IsMiss(const absl::Status& status) {
  if (ErrorCodeOf(status) == ErrorCode::kNotFound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected a miss, got " << status;
}

template <typename T>
::testing::AssertionResult IsMiss(const absl::StatusOr<T>& result) {
  if (result.ok()) return ::testing::AssertionFailure() << "expected a miss, found it";
  return IsMiss(result.status());
}

// Success iff opening `path` with `options` fails with `want` and a message that
// contains `message_part`.
::testing::AssertionResult RefusedWith(const std::string& path, const OpenOptions& options,
                                       ErrorCode want,
                                       std::string_view message_part = "") {
  absl::StatusOr<Dict> d = Dict::Open(path, options);
  ::testing::AssertionResult r = HasCode(d, want);
  if (!r) return r;
  const absl::string_view message = d.status().message();
  if (message.find(absl::string_view(message_part.data(), message_part.size())) ==
      absl::string_view::npos) {
    return ::testing::AssertionFailure()
           << "message \"" << message << "\" does not mention \"" << message_part << "\"";
  }
  return r;
}

// Refused with `want` whether opened read-write, read-only or with create.
::testing::AssertionResult RefusedInEveryMode(const std::string& path, ErrorCode want,
                                              std::string_view message_part = "") {
  if (auto r = RefusedWith(path, Existing(), want, message_part); !r) {
    return r << " (read-write)";
  }
  if (auto r = RefusedWith(path, ReadOnly(), want, message_part); !r) {
    return r << " (read-only)";
  }
  if (auto r = RefusedWith(path, CreateOptions(), want, message_part); !r) {
    return r << " (create)";
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------
// Files

// Overwrites bytes of an existing file in place.
::testing::AssertionResult PatchFile(const std::string& path, uint64_t offset,
                                     std::string_view bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ::testing::AssertionFailure() << "open " << path << ": " << errno;
  const ssize_t n = pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) {
    return ::testing::AssertionFailure() << "pwrite " << path << ": " << errno;
  }
  return ::testing::AssertionSuccess();
}

std::string Key(int i) { return "key" + std::to_string(i); }
std::string Value(int i) { return "value-" + std::to_string(i * 7919); }

// Creates a valid table at `path` holding keys Key(0..n) and returns its bytes.
std::string MakeTable(const std::string& path, uint64_t capacity, uint32_t key,
                      uint32_t value, int n) {
  {
    absl::StatusOr<Dict> d = Dict::Open(path, CreateOptions(capacity, key, value));
    EXPECT_TRUE(d.ok()) << d.status();
    if (!d.ok()) return "";
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<uint64_t> v = d->Put(Key(i), Value(i));
      EXPECT_TRUE(v.ok()) << v.status();
    }
  }
  return ReadFile(path);
}

// The bytes of a valid table made as MakeTable makes it, at a path of its own that is
// removed again.
std::string ValidTableBytes(uint64_t capacity, uint32_t key, uint32_t value, int n) {
  TempTable valid("valid");
  return MakeTable(valid.path(), capacity, key, value, n);
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t w = rng();
    std::memcpy(bytes.data() + i, &w, std::min<size_t>(8, n - i));
  }
  return bytes;
}

ImmutableHeader FixedOf(std::string_view bytes) {
  ImmutableHeader f;
  std::memcpy(&f, bytes.data(), sizeof(f));
  return f;
}

uint64_t ChecksumOf(const ImmutableHeader& f) { return XXH3_64bits(&f, sizeof(f)); }

uint64_t StoredChecksum(std::string_view bytes) {
  uint64_t c;
  std::memcpy(&c, bytes.data() + kChecksumOffset, sizeof(c));
  return c;
}

// `bytes` with its immutable header replaced by `f` and a matching checksum.
std::string WithHeader(std::string bytes, const ImmutableHeader& f) {
  std::memcpy(bytes.data(), &f, sizeof(f));
  const uint64_t checksum = ChecksumOf(f);
  std::memcpy(bytes.data() + kChecksumOffset, &checksum, sizeof(checksum));
  return bytes;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Fails the test (by killing it) if a call blocks for longer than `seconds`.
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds) { alarm(seconds); }
  ~Watchdog() { alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

// ---------------------------------------------------------------------------------
// Files that are not tables

TEST(HostileFileTest, RandomBytesAreRejected) {
  std::mt19937_64 rng(TestSeed());
  const std::string table = ValidTableBytes(1000, 32, 64, 10);
  ASSERT_FALSE(table.empty());
  TempTable t;
  const size_t sizes[] = {1,    7,    8,    100,  191,   192,   200,          4095,
                          4096, 4097, 8192, 69632, 69633, 262144, table.size(), 1 << 20};
  for (const size_t size : sizes) {
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE(::testing::Message() << "size " << size << " round " << round);
      const std::string bytes = RandomBytes(rng, size);
      ASSERT_TRUE(WriteFile(t.path(), bytes));
      EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile));
      // Create did not replace the foreign file.
      EXPECT_EQ(ReadFile(t.path()), bytes);
    }
  }
}

TEST(HostileFileTest, RandomBytesBehindAValidMagicAreRejected) {
  std::mt19937_64 rng(TestSeed());
  const std::string table = ValidTableBytes(1000, 32, 64, 10);
  ASSERT_FALSE(table.empty());
  TempTable t;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    // Random bytes with the right magic, version and byte-order mark, the size of a
    // real table: only the checksum (or the unlikely layout) can catch them.
    std::string bytes = RandomBytes(rng, table.size());
    std::memcpy(bytes.data(), table.data(), offsetof(ImmutableHeader, header_size));
    ASSERT_TRUE(WriteFile(t.path(), bytes));
    EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "checksum"));
  }
}

TEST(HostileFileTest, ZeroLengthFileIsRejected) {
  TempTable t;
  ASSERT_TRUE(WriteFile(t.path(), ""));
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "too short"));
  EXPECT_TRUE(Exists(t.path()));
  EXPECT_EQ(ReadFile(t.path()), "");
}

TEST(HostileFileTest, ZerosAreRejected) {
  TempTable t;
  ASSERT_TRUE(WriteFile(t.path(), std::string(sizeof(FileHeader), '\0')));
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "magic"));
  ASSERT_TRUE(WriteFile(t.path(), std::string(sizeof(FileHeader) - 1, '\0')));
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile));
  ASSERT_TRUE(WriteFile(t.path(), std::string(1 << 20, '\0')));
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "magic"));
}

TEST(HostileFileTest, CreateOnAnExistingForeignFileLeavesItAlone) {
  TempTable t;
  const std::string precious = "precious data, not a table";
  ASSERT_TRUE(WriteFile(t.path(), precious));
  EXPECT_TRUE(RefusedWith(t.path(), CreateOptions(), ErrorCode::kBadFile));
  OpenOptions excl = CreateOptions();
  excl.exclusive = true;
  EXPECT_TRUE(RefusedWith(t.path(), excl, ErrorCode::kExists));
  EXPECT_EQ(ReadFile(t.path()), precious);
}

// ---------------------------------------------------------------------------------
// Truncated and extended tables

TEST(HostileFileTest, TruncatedFileIsRejected) {
  std::mt19937_64 rng(TestSeed());
  const std::string table = ValidTableBytes(1000, 32, 64, 100);
  ASSERT_FALSE(table.empty());
  absl::StatusOr<Layout> layout = ComputeLayout(1000, 32, 64);
  ASSERT_TRUE(layout.ok());
  ASSERT_EQ(table.size(), layout->file_size);
  ASSERT_GT(layout->buckets_offset + 1, 4097u);
  std::vector<uint64_t> lengths = {0,
                                   1,
                                   7,
                                   8,
                                   100,
                                   191,
                                   192,
                                   200,
                                   4095,
                                   4096,
                                   4097,
                                   layout->proc_table_offset + 64,
                                   layout->buckets_offset - 1,
                                   layout->buckets_offset,
                                   layout->buckets_offset + 1,
                                   layout->buckets_offset + layout->bucket_stride,
                                   layout->file_size - layout->bucket_stride,
                                   layout->file_size - 8,
                                   layout->file_size - 1};
  std::uniform_int_distribution<uint64_t> any_length(2, layout->file_size - 2);
  for (int i = 0; i < 50; ++i) lengths.push_back(any_length(rng));
  TempTable t;
  for (const uint64_t length : lengths) {
    SCOPED_TRACE(::testing::Message() << "truncated to " << length << " of "
                                      << layout->file_size << " bytes");
    ASSERT_TRUE(WriteFile(t.path(), std::string_view(table).substr(0, length)));
    EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile));
    EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kBadFile));
    EXPECT_TRUE(RefusedWith(t.path(), CreateOptions(1000, 32, 64), ErrorCode::kBadFile));
    if (length >= sizeof(FileHeader)) {
      // A valid header: the size is what gives it away, and the message says so.
      EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, "truncated"));
    }
  }
  // The untouched copy still opens: the refusals above are the truncation's doing.
  ASSERT_TRUE(WriteFile(t.path(), table));
  absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(Key(42)), Value(42));
}

TEST(HostileFileTest, ExtendedFileIsRejected) {
  const std::string table = ValidTableBytes(100, 16, 16, 10);
  ASSERT_FALSE(table.empty());
  TempTable t;
  for (const size_t extra : {size_t{1}, size_t{8}, size_t{4096}, table.size()}) {
    SCOPED_TRACE(::testing::Message() << "extended by " << extra << " bytes");
    ASSERT_TRUE(WriteFile(t.path(), table + std::string(extra, '\0')));
    EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "bytes long"));
  }
}

// ---------------------------------------------------------------------------------
// Damaged and forged headers

TEST(HostileFileTest, FlippedImmutableHeaderByteIsRejected) {
  TempTable t;
  const std::string table = MakeTable(t.path(), 1, 8, 8, 1);
  ASSERT_FALSE(table.empty());
  for (size_t offset = 0; offset < kImmutableEnd; ++offset) {
    for (const uint8_t mask : {uint8_t{0xFF}, uint8_t{0x01}}) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " xor " << int{mask});
      const char flipped = static_cast<char>(static_cast<uint8_t>(table[offset]) ^ mask);
      ASSERT_TRUE(PatchFile(t.path(), offset, std::string_view(&flipped, 1)));
      EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile));
      EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kBadFile));
      ASSERT_TRUE(PatchFile(t.path(), offset, std::string_view(&table[offset], 1)));
    }
  }
  // Restored byte by byte, the table opens again.
  EXPECT_EQ(ReadFile(t.path()), table);
  absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(Key(0)), Value(0));
}

TEST(HostileFileTest, FlippedMutableHeaderByteIsNotAnError) {
  TempTable t;
  const std::string table = MakeTable(t.path(), 1, 8, 8, 1);
  ASSERT_FALSE(table.empty());
  // Bytes 200..255 are padding and 256.. the statistics: neither is validated.
  for (size_t offset = kImmutableEnd; offset < sizeof(FileHeader); ++offset) {
    SCOPED_TRACE(::testing::Message() << "offset " << offset);
    const char flipped = static_cast<char>(~table[offset]);
    ASSERT_TRUE(PatchFile(t.path(), offset, std::string_view(&flipped, 1)));
    absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
    ASSERT_TRUE(d.ok()) << d.status();
    if (offset % 256 == 0 || offset == kMutableOffset + 7) {
      EXPECT_EQ(*d->Get(Key(0)), Value(0));
    }
    ASSERT_TRUE(PatchFile(t.path(), offset, std::string_view(&table[offset], 1)));
  }
  // All statistics bytes scribbled at once: still a valid table, writable too.
  ASSERT_TRUE(PatchFile(t.path(), kMutableOffset, std::string(64, '\xA5')));
  absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->GetStats().recoveries, 0xA5A5A5A5A5A5A5A5u);
  EXPECT_TRUE(d->Put(Key(0), "new").ok());
  EXPECT_EQ(*d->Get(Key(0)), "new");
}

TEST(HostileFileTest, ForgedHeaderWithRecomputedChecksumIsRejected) {
  const uint64_t capacity = 1000;
  const std::string table = ValidTableBytes(capacity, 32, 64, 10);
  ASSERT_FALSE(table.empty());
  const ImmutableHeader original = FixedOf(table);
  // Our checksum is the library's: a forged header below is refused for its content.
  ASSERT_EQ(ChecksumOf(original), StoredChecksum(table));
  absl::StatusOr<Layout> bigger = ComputeLayout(capacity * 10, 32, 64);
  absl::StatusOr<Layout> smaller = ComputeLayout(capacity / 10, 32, 64);
  ASSERT_TRUE(bigger.ok() && smaller.ok());
  ASSERT_NE(bigger->file_size, table.size());
  ASSERT_NE(smaller->file_size, table.size());
  auto set_layout = [](ImmutableHeader& f, const Layout& l) {
    f.capacity = l.capacity;
    f.bucket_count = l.bucket_count;
    f.copy_stride = l.copy_stride;
    f.slot_stride = l.slot_stride;
    f.bucket_stride = l.bucket_stride;
    f.proc_table_offset = l.proc_table_offset;
    f.buckets_offset = l.buckets_offset;
    f.file_size = l.file_size;
  };

  struct Forgery {
    const char* what;
    std::function<void(ImmutableHeader&)> forge;
    const char* message_part;
  };
  const std::vector<Forgery> forgeries = {
      {"bucket_count + 2", [](ImmutableHeader& f) { f.bucket_count += 2; }, "layout"},
      {"bucket_count 0", [](ImmutableHeader& f) { f.bucket_count = 0; }, "layout"},
      {"bucket_count huge", [](ImmutableHeader& f) { f.bucket_count = ~uint64_t{0}; },
       "layout"},
      {"file_size + 64", [](ImmutableHeader& f) { f.file_size += 64; }, "layout"},
      {"file_size 0", [](ImmutableHeader& f) { f.file_size = 0; }, "layout"},
      {"file_size huge", [](ImmutableHeader& f) { f.file_size = ~uint64_t{0}; }, "layout"},
      {"buckets_offset + 64", [](ImmutableHeader& f) { f.buckets_offset += 64; }, "layout"},
      {"buckets_offset 0", [](ImmutableHeader& f) { f.buckets_offset = 0; }, "layout"},
      {"proc_table_offset 0", [](ImmutableHeader& f) { f.proc_table_offset = 0; },
       "layout"},
      {"copy_stride + 8", [](ImmutableHeader& f) { f.copy_stride += 8; }, "layout"},
      {"slot_stride + 16", [](ImmutableHeader& f) { f.slot_stride += 16; }, "layout"},
      {"bucket_stride + 64", [](ImmutableHeader& f) { f.bucket_stride += 64; }, "layout"},
      {"bucket_stride 0", [](ImmutableHeader& f) { f.bucket_stride = 0; }, "layout"},
      {"max_key_size + 8", [](ImmutableHeader& f) { f.max_key_size += 8; }, "layout"},
      {"max_value_size * 2", [](ImmutableHeader& f) { f.max_value_size *= 2; }, "layout"},
      {"capacity * 100", [](ImmutableHeader& f) { f.capacity *= 100; }, "layout"},
      {"capacity 0", [](ImmutableHeader& f) { f.capacity = 0; }, "invalid parameters"},
      {"capacity over the limit",
       [](ImmutableHeader& f) { f.capacity = internal::kMaxCapacity + 1; },
       "invalid parameters"},
      {"max_key_size 0", [](ImmutableHeader& f) { f.max_key_size = 0; },
       "invalid parameters"},
      {"max_key_size over the limit",
       [](ImmutableHeader& f) { f.max_key_size = internal::kMaxKeySizeLimit + 1; },
       "invalid parameters"},
      {"max_value_size 0", [](ImmutableHeader& f) { f.max_value_size = 0; },
       "invalid parameters"},
      {"max_value_size over the limit",
       [](ImmutableHeader& f) { f.max_value_size = ~uint32_t{0}; }, "invalid parameters"},
      {"slots_per_bucket 8", [](ImmutableHeader& f) { f.slots_per_bucket = 8; },
       "not support"},
      {"proc_entries 512", [](ImmutableHeader& f) { f.proc_entries = 512; }, "not support"},
      {"proc_entry_size 128", [](ImmutableHeader& f) { f.proc_entry_size = 128; },
       "not support"},
      {"header_size 8192", [](ImmutableHeader& f) { f.header_size = 8192; }, "not support"},
      {"hash_algorithm 2", [](ImmutableHeader& f) { f.hash_algorithm = 2; }, "not support"},
      {"hash_algorithm 0", [](ImmutableHeader& f) { f.hash_algorithm = 0; }, "not support"},
      {"endian mark swapped",
       [](ImmutableHeader& f) { f.endian_mark = __builtin_bswap32(f.endian_mark); },
       "byte order"},
      {"consistent layout of a 10x table",
       [&](ImmutableHeader& f) { set_layout(f, *bigger); }, "truncated"},
      {"consistent layout of a 1/10 table",
       [&](ImmutableHeader& f) { set_layout(f, *smaller); }, "bytes long"},
  };
  TempTable t;
  for (const Forgery& forgery : forgeries) {
    SCOPED_TRACE(forgery.what);
    ImmutableHeader f = original;
    forgery.forge(f);
    ASSERT_NE(std::memcmp(&f, &original, sizeof(f)), 0) << "the forgery changed nothing";
    ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
    EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, forgery.message_part));
    EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kBadFile, forgery.message_part));
  }
  // Control: a forged header that changes nothing the reader relies on, with its
  // checksum recomputed, opens. So the checksum recomputed above was right.
  ImmutableHeader f = original;
  f.creator_pid ^= 0x5555;
  f.created_unix_ns += 1;
  ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
  absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(Key(3)), Value(3));
}

TEST(HostileFileTest, WrongFormatVersionIsRejectedNamingTheVersion) {
  const std::string table = ValidTableBytes(100, 16, 16, 1);
  ASSERT_FALSE(table.empty());
  TempTable t;
  for (const uint32_t version : {0u, 1u, 3u, 7u, 0x01000000u, ~0u}) {
    SCOPED_TRACE(::testing::Message() << "format version " << version);
    ImmutableHeader f = FixedOf(table);
    f.format_version = version;
    ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
    const std::string mention = "format version " + std::to_string(version);
    EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, mention));
    EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kBadFile, mention));
    EXPECT_TRUE(RefusedWith(t.path(), CreateOptions(100, 16, 16), ErrorCode::kBadFile, mention));
  }
}

// A file of the format before expiry (version 1) is refused with the way forward.
TEST(HostileFileTest, FormatVersionOneNamesDumpAndLoad) {
  const std::string table = ValidTableBytes(100, 16, 16, 1);
  ASSERT_FALSE(table.empty());
  TempTable t;
  ImmutableHeader f = FixedOf(table);
  f.format_version = 1;
  ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
  EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, "shmdict dump"));
  EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, "shmdict load"));
}

// An eviction policy this build does not know is refused.
TEST(HostileFileTest, UnknownEvictionPolicyIsRejected) {
  const std::string table = ValidTableBytes(100, 16, 16, 1);
  ASSERT_FALSE(table.empty());
  TempTable t;
  ImmutableHeader f = FixedOf(table);
  f.eviction = 2;
  ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
  EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kBadFile, "eviction policy"));
}

TEST(HostileFileTest, WrongMagicIsRejected) {
  const std::string table = ValidTableBytes(100, 16, 16, 1);
  ASSERT_FALSE(table.empty());
  TempTable t;
  for (const char* magic : {"SHMDICT2", "shmdict1", "SHMDICT\0", "\0HMDICT1", "XXXXXXXX"}) {
    SCOPED_TRACE(std::string(magic, 8));
    ImmutableHeader f = FixedOf(table);
    std::memcpy(f.magic, magic, sizeof(f.magic));
    ASSERT_TRUE(WriteFile(t.path(), WithHeader(table, f)));
    EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "magic"));
  }
}

// ---------------------------------------------------------------------------------
// Files that are not regular files

TEST(HostileFileTest, SymlinkToATableIsRejected) {
  TempTable target("target");
  ASSERT_FALSE(MakeTable(target.path(), 100, 16, 16, 1).empty());
  TempTable link("link");
  ASSERT_EQ(symlink(target.path().c_str(), link.path().c_str()), 0) << errno;
  EXPECT_TRUE(RefusedInEveryMode(link.path(), ErrorCode::kBadFile, "link"));
  EXPECT_TRUE(RefusedWith(link.path(), AllowGroup(), ErrorCode::kBadFile));
  // Unlink does not follow it either: both the link and its target stay.
  EXPECT_TRUE(HasCode(Dict::Unlink(link.path()), ErrorCode::kBadFile));
  EXPECT_TRUE(Exists(link.path()));
  EXPECT_TRUE(Exists(target.path()));
  // A dangling link is no better, even with create (which must not create the target).
  ASSERT_EQ(unlink(target.path().c_str()), 0);
  EXPECT_TRUE(RefusedInEveryMode(link.path(), ErrorCode::kBadFile));
  EXPECT_FALSE(Exists(target.path()));
}

TEST(HostileFileTest, FifoIsRejectedWithoutBlocking) {
  TempTable t;
  ASSERT_EQ(mkfifo(t.path().c_str(), 0600), 0) << errno;
  Watchdog watchdog(30);  // opening a FIFO without O_NONBLOCK would hang here
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile, "not a regular file"));
  EXPECT_TRUE(HasCode(Dict::Unlink(t.path()), ErrorCode::kBadFile));
  struct stat st;
  ASSERT_EQ(lstat(t.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(HostileFileTest, DirectoryIsRejected) {
  TempTable t;
  ASSERT_EQ(mkdir(t.path().c_str(), 0700), 0) << errno;
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile));
  EXPECT_TRUE(HasCode(Dict::Unlink(t.path()), ErrorCode::kBadFile));
  struct stat st;
  ASSERT_EQ(lstat(t.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  rmdir(t.path().c_str());
}

TEST(HostileFileTest, UnixSocketIsRejected) {
  TempTable t;
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  ASSERT_LT(t.path().size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, t.path().c_str(), t.path().size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << errno;
  ASSERT_EQ(fchmod(fd, 0600), 0);
  EXPECT_TRUE(RefusedInEveryMode(t.path(), ErrorCode::kBadFile));
  EXPECT_TRUE(HasCode(Dict::Unlink(t.path()), ErrorCode::kBadFile));
  EXPECT_TRUE(Exists(t.path()));
  close(fd);
}

TEST(HostileFileTest, CharacterDeviceIsRejected) {
  EXPECT_TRUE(RefusedWith("/dev/null", Existing(), ErrorCode::kBadFile));
  EXPECT_TRUE(RefusedWith("/dev/null", ReadOnly(), ErrorCode::kBadFile));
  EXPECT_TRUE(RefusedWith("/dev/zero", ReadOnly(), ErrorCode::kBadFile));
}

TEST(HostileFileTest, UnlinkLeavesFilesThatAreNotTablesInPlace) {
  std::mt19937_64 rng(TestSeed());
  TempTable t;
  for (const std::string& bytes :
       {std::string(), std::string("x"), std::string("SHMDICT"), RandomBytes(rng, 4096),
        std::string(8192, '\0')}) {
    SCOPED_TRACE(::testing::Message() << bytes.size() << " bytes");
    ASSERT_TRUE(WriteFile(t.path(), bytes));
    EXPECT_TRUE(HasCode(Dict::Unlink(t.path()), ErrorCode::kBadFile));
    EXPECT_EQ(ReadFile(t.path()), bytes) << "a foreign file was removed or changed";
  }
  EXPECT_TRUE(HasCode(Dict::Unlink(t.path() + ".absent"), ErrorCode::kNotFound));
}

// ---------------------------------------------------------------------------------
// Modes and owners

TEST(HostileFileTest, GroupWritableTableNeedsAllowGroup) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 1).empty());
  for (const mode_t mode : {0620, 0660, 0670, 0624}) {
    SCOPED_TRACE(::testing::Message() << "mode 0" << std::oct << mode);
    ASSERT_EQ(chmod(t.path().c_str(), mode), 0);
    EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kPermission, "group-writable"));
    EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kPermission, "group-writable"));
    absl::StatusOr<Dict> d = Dict::Open(t.path(), AllowGroup());
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d->Get(Key(0)), Value(0));
    EXPECT_TRUE(d->Put("written", "with allow_group").ok());
    absl::StatusOr<Dict> r = Dict::Open(t.path(), AllowGroup(ReadOnly()));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r->Get("written"), "with allow_group");
  }
}

TEST(HostileFileTest, WorldWritableTableIsAlwaysRefused) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 1).empty());
  for (const mode_t mode : {0602, 0606, 0622, 0666, 0777}) {
    SCOPED_TRACE(::testing::Message() << "mode 0" << std::oct << mode);
    ASSERT_EQ(chmod(t.path().c_str(), mode), 0);
    for (const OpenOptions& o : {Existing(), ReadOnly(), AllowGroup(), AllowGroup(ReadOnly()),
                                 AllowGroup(CreateOptions(100, 16, 16))}) {
      EXPECT_TRUE(RefusedWith(t.path(), o, ErrorCode::kPermission, "world-writable"));
    }
  }
  // Back to 0600 it opens: the mode was the only problem.
  ASSERT_EQ(chmod(t.path().c_str(), 0600), 0);
  EXPECT_TRUE(Dict::Open(t.path(), Existing()).ok());
}

TEST(HostileFileTest, TableOwnedByAnotherUserNeedsAllowGroup) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 1).empty());
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  if (chown(t.path().c_str(), 65534, static_cast<gid_t>(-1)) != 0) {
    GTEST_SKIP() << "cannot chown to uid 65534 here: " << strerror(errno);
  }
  EXPECT_TRUE(RefusedWith(t.path(), Existing(), ErrorCode::kPermission, "owned by uid 65534"));
  EXPECT_TRUE(RefusedWith(t.path(), ReadOnly(), ErrorCode::kPermission, "owned by uid 65534"));
  EXPECT_TRUE(
      RefusedWith(t.path(), CreateOptions(100, 16, 16), ErrorCode::kPermission, "owned by uid"));
  absl::StatusOr<Dict> d = Dict::Open(t.path(), AllowGroup());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(Key(0)), Value(0));
  // Foreign and group-writable: allowed together; world-writable: never.
  ASSERT_EQ(chmod(t.path().c_str(), 0660), 0);
  EXPECT_TRUE(Dict::Open(t.path(), AllowGroup()).ok());
  ASSERT_EQ(chmod(t.path().c_str(), 0662), 0);
  EXPECT_TRUE(RefusedWith(t.path(), AllowGroup(), ErrorCode::kPermission, "world-writable"));
  // Another user's file in a group that is not ours is not shared with us.
  ASSERT_EQ(chmod(t.path().c_str(), 0660), 0);
  if (chown(t.path().c_str(), static_cast<uid_t>(-1), 65534) != 0) {
    GTEST_SKIP() << "cannot chgrp to gid 65534 here: " << strerror(errno);
  }
  gid_t groups[256];
  const int n = getgroups(256, groups);
  if (getegid() == 65534 || std::find(groups, groups + std::max(n, 0), 65534) != groups + std::max(n, 0)) {
    GTEST_SKIP() << "this process is in group 65534";
  }
  EXPECT_TRUE(RefusedWith(t.path(), AllowGroup(), ErrorCode::kPermission,
                          "not one of this process's groups"));
}

// Opening an existing table with create and all-zero sizes is an open, not an error.
TEST(HostileFileTest, CreateWithZeroFieldsOpensAnExistingTable) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 1).empty());
  OpenOptions o;
  o.create = true;
  absl::StatusOr<Dict> d = Dict::Open(t.path(), o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d->Get(Key(0)), Value(0));
  // On an absent file the same options are invalid: there is nothing to size it by.
  TempTable absent;
  EXPECT_TRUE(RefusedWith(absent.path(), o, ErrorCode::kInvalid, ""));
}

// A sparse copy of a table (holes where pages were never written) gets its holes
// reserved at open, so a write into one cannot raise SIGBUS on a full /dev/shm.
TEST(HostileFileTest, SparseTableIsReservedAtOpen) {
  TempTable t;
  const std::string bytes = MakeTable(t.path(), 20000, 16, 64, 10);
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(unlink(t.path().c_str()), 0);
  // Write only the first 64 KiB, then extend with a hole.
  {
    const int fd = open(t.path().c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), 65536), 65536);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(bytes.size())), 0);
    close(fd);
  }
  struct stat st;
  ASSERT_EQ(stat(t.path().c_str(), &st), 0);
  ASSERT_LT(static_cast<uint64_t>(st.st_blocks) * 512, bytes.size()) << "not sparse";
  absl::StatusOr<Dict> d = Dict::Open(t.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(stat(t.path().c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, bytes.size());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(d->Put(Key(i), Value(i)).ok()) << i;
  EXPECT_TRUE(internal::TableOf(*d)->Verify().clean());
}

// A process of another user, which the file's mode does not let in, gets kPermission.
TEST(HostileFileTest, AnotherUserWithoutAccessGetsPermission) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 1).empty());
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  constexpr int kCannotSwitch = 77;
  const std::string path = t.path();
  const pid_t pid = ForkChild([&]() -> int {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      return kCannotSwitch;
    }
    // 0600 root:root: no access at all.
    if (ErrorCodeOf(Dict::Open(path, Existing()).status()) != ErrorCode::kPermission) return 1;
    if (ErrorCodeOf(Dict::Open(path, ReadOnly()).status()) != ErrorCode::kPermission) return 2;
    if (ErrorCodeOf(Dict::Open(path, AllowGroup(ReadOnly())).status()) !=
        ErrorCode::kPermission) {
      return 3;
    }
    if (ErrorCodeOf(Dict::Unlink(path)) != ErrorCode::kPermission) return 4;
    return 0;
  });
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  if (WEXITSTATUS(status) == kCannotSwitch) GTEST_SKIP() << "cannot switch to uid 65534";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
  EXPECT_TRUE(Exists(t.path()));
}

TEST(HostileFileTest, NewTablesAreCreatedWithMode0600WhateverTheUmask) {
  for (const mode_t mask : {0000, 0022, 0077, 0777}) {
    SCOPED_TRACE(::testing::Message() << "umask 0" << std::oct << mask);
    UmaskGuard guard(mask);
    TempTable t;
    {
      absl::StatusOr<Dict> d = Dict::Open(t.path(), CreateOptions(100, 16, 16));
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_TRUE(d->Put("k", "v").ok());
    }
    EXPECT_EQ(ModeOf(t.path()), 0600u);
    TempTable explicit_mode("0640");
    OpenOptions o = CreateOptions(100, 16, 16);
    o.mode = 0640;
    ASSERT_TRUE(Dict::Open(explicit_mode.path(), o).ok());
    EXPECT_EQ(ModeOf(explicit_mode.path()), 0640u);
    TempTable group_mode("0660");
    o.mode = 0660;
    ASSERT_TRUE(Dict::Open(group_mode.path(), AllowGroup(o)).ok());
    EXPECT_EQ(ModeOf(group_mode.path()), 0660u);
  }
}

// The names in /dev/shm that start with `prefix`.
std::vector<std::string> DevShmNamesStartingWith(const std::string& prefix) {
  std::vector<std::string> names;
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* e = readdir(dir)) {
    if (std::string_view(e->d_name).substr(0, prefix.size()) == prefix) {
      names.push_back(e->d_name);
    }
  }
  closedir(dir);
  return names;
}

TEST(HostileFileTest, NoTemporaryFilesAreLeftBehind) {
  TempTable created("created");
  ASSERT_FALSE(MakeTable(created.path(), 100, 16, 16, 1).empty());
  TempTable refused("refused");
  // Refused before any file is made (a world-writable mode) ...
  OpenOptions world = CreateOptions(100, 16, 16);
  world.mode = 0666;
  EXPECT_TRUE(RefusedWith(refused.path(), world, ErrorCode::kInvalid));
  // ... and refused after the temporary file was made: a table larger than /dev/shm
  // (the kernel refuses to reserve more than the file system's size at once).
  absl::StatusOr<Layout> huge = ComputeLayout(internal::kMaxCapacity, 8, 8);
  ASSERT_TRUE(huge.ok());
  struct statvfs vfs;
  ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
  if (uint64_t{vfs.f_blocks} * vfs.f_frsize < huge->file_size / 2) {
    EXPECT_TRUE(RefusedWith(refused.path(), CreateOptions(internal::kMaxCapacity, 8, 8),
                            ErrorCode::kIo, "space"));
    EXPECT_FALSE(Exists(refused.path()));
  }
  for (const std::string& path : {created.path(), refused.path()}) {
    // The creator's temporary file is ".<name>.creating.<pid>.<nonce>".
    const std::string prefix = "." + path.substr(path.rfind('/') + 1) + ".creating";
    EXPECT_TRUE(DevShmNamesStartingWith(prefix).empty()) << prefix;
  }
}

TEST(HostileFileTest, ReadOnlyOpenNeedsNoWritePermission) {
  TempTable t;
  ASSERT_FALSE(MakeTable(t.path(), 100, 16, 16, 5).empty());
  ASSERT_EQ(chmod(t.path().c_str(), 0400), 0);
  absl::StatusOr<Dict> d = Dict::Open(t.path(), ReadOnly());
  ASSERT_TRUE(d.ok()) << d.status();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*d->Get(Key(i)), Value(i));
  EXPECT_EQ(d->Count(), 5u);
  EXPECT_TRUE(HasCode(d->Put(Key(0), "x"), ErrorCode::kPermission));
  EXPECT_TRUE(HasCode(d->Erase(Key(0)), ErrorCode::kPermission));
  EXPECT_EQ(*d->Get(Key(0)), Value(0));
  ASSERT_EQ(chmod(t.path().c_str(), 0000), 0);
  // Root reads a mode-0000 file anyway; anyone else would get kPermission.
  if (geteuid() == 0) {
    absl::StatusOr<Dict> r = Dict::Open(t.path(), ReadOnly());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r->Get(Key(1)), Value(1));
  }
}

// ---------------------------------------------------------------------------------
// A valid header over damaged buckets. Nothing is promised about the answers, except
// that every call returns, with a code it documents, and that a value read fits the
// table's maximum. And writes that succeed are read back.

// Maps the whole file a second time, read-write, behind shmdict's back.
class RawMapping {
 public:
  explicit RawMapping(const std::string& path) {
    fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd_ < 0 || fstat(fd_, &st) != 0) return;
    size_ = static_cast<size_t>(st.st_size);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p != MAP_FAILED) base_ = static_cast<char*>(p);
  }
  ~RawMapping() {
    if (base_ != nullptr) munmap(base_, size_);
    if (fd_ >= 0) close(fd_);
  }
  RawMapping(const RawMapping&) = delete;
  RawMapping& operator=(const RawMapping&) = delete;

  char* base() const { return base_; }
  size_t size() const { return size_; }

 private:
  int fd_ = -1;
  char* base_ = nullptr;
  size_t size_ = 0;
};

bool IsOneOf(ErrorCode code, std::initializer_list<ErrorCode> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// Runs every operation on `d` over keys Key(0..2n). Returns the number of writes that
// succeeded (and were then read back).
int ExerciseDamagedTable(Dict& d, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Stats stats = d.GetStats();
  const uint32_t max_value = stats.max_value_size;
  const uint32_t max_key = stats.max_key_size;
  // Reads.
  for (int i = 0; i < 2 * n; ++i) {
    const std::string key = Key(i);
    uint64_t version = 0;
    absl::StatusOr<std::string> v = d.Get(key, &version);
    if (v.ok()) {
      EXPECT_LE(v->size(), max_value) << key;
    } else {
      EXPECT_TRUE(IsOneOf(ErrorCodeOf(v.status()), {ErrorCode::kNotFound, ErrorCode::kBadFile}))
          << key << ": " << v.status();
    }
    char small[4];
    size_t len = 0;
    absl::Status s = d.GetInto(key, small, sizeof(small), &len);
    if (s.ok()) {
      EXPECT_LE(len, sizeof(small));
    } else if (ErrorCodeOf(s) == ErrorCode::kBuffer) {
      EXPECT_LE(len, max_value);
    } else {
      EXPECT_TRUE(IsOneOf(ErrorCodeOf(s), {ErrorCode::kNotFound, ErrorCode::kBadFile})) << s;
    }
    std::string big(max_value, '\0');
    s = d.GetInto(key, big.data(), big.size(), &len);
    if (s.ok()) {
      EXPECT_LE(len, max_value);
    }
    (void)d.Contains(key);
    const uint64_t current = d.Version(key);
    if (i % 16 == 0) {
      // Returns at once (the version differs) or after the 1 ms timeout.
      s = d.WaitForChange(key, current + (i % 32 == 0 ? 1 : 0), 1);
      EXPECT_TRUE(s.ok() || ErrorCodeOf(s) == ErrorCode::kTimeout) << s;
    }
  }
  EXPECT_LE(d.Count(), stats.slot_count);
  uint64_t visited = 0;
  d.ForEach([&](std::string_view key, std::string_view value, uint64_t) {
    EXPECT_LE(key.size(), max_key);
    EXPECT_LE(value.size(), max_value);
    ++visited;
    return true;
  });
  EXPECT_LE(visited, stats.slot_count);
  (void)d.GetStats();

  // Writes: any documented outcome, but a write that succeeds must be read back.
  int succeeded = 0;
  const std::initializer_list<ErrorCode> write_errors = {
      ErrorCode::kFull, ErrorCode::kExists, ErrorCode::kNotFound, ErrorCode::kVersion,
      ErrorCode::kType, ErrorCode::kBadFile};
  for (int i = 0; i < 2 * n; ++i) {
    const std::string key = Key(i);
    const std::string value = "new-" + std::to_string(rng() % 1000);
    absl::StatusOr<uint64_t> v;
    switch (rng() % 4) {
      case 0:
        v = d.Put(key, value);
        break;
      case 1:
        v = d.Insert(key, value);
        break;
      case 2:
        v = d.Replace(key, value);
        break;
      default:
        v = d.CompareAndSwap(key, d.Version(key), value);
        break;
    }
    if (v.ok()) {
      ++succeeded;
      EXPECT_NE(*v, 0u);
      absl::StatusOr<std::string> got = d.Get(key);
      EXPECT_TRUE(got.ok() && *got == value)
          << key << ": wrote " << value << ", read " << (got.ok() ? *got : "<error>");
    } else {
      EXPECT_TRUE(IsOneOf(ErrorCodeOf(v.status()), write_errors)) << key << ": " << v.status();
    }
    if (rng() % 3 == 0) {
      absl::Status s = d.Erase(key);
      if (s.ok()) {
        EXPECT_TRUE(IsMiss(d.Get(key))) << key;
      } else {
        EXPECT_TRUE(IsOneOf(ErrorCodeOf(s), write_errors)) << key << ": " << s;
      }
    }
    absl::StatusOr<int64_t> sum = d.FetchAdd("counter-" + key, 3);
    if (sum.ok()) {
      ++succeeded;
      absl::StatusOr<std::string> got = d.Get("counter-" + key);
      EXPECT_TRUE(got.ok() && got->size() == 8) << key;
    } else {
      EXPECT_TRUE(IsOneOf(ErrorCodeOf(sum.status()), write_errors)) << sum.status();
    }
  }
  // And a second full read pass over what the writes left.
  EXPECT_LE(d.Count(), stats.slot_count);
  d.ForEach([&](std::string_view key, std::string_view value, uint64_t) {
    EXPECT_LE(key.size(), max_key);
    EXPECT_LE(value.size(), max_value);
    return true;
  });
  return succeeded;
}

struct DamagedTable {
  TempTable file{"damaged"};
  absl::StatusOr<Dict> dict = absl::UnknownError("not opened");
  Layout layout;
};

// Creates a populated table, keeps it open (so the handle has registered as a writer
// and mapped the file before the damage), and returns it.
void MakeDamagedTable(DamagedTable& t, int n) {
  const uint64_t capacity = 2000;
  absl::StatusOr<Layout> l = ComputeLayout(capacity, 16, 32);
  ASSERT_TRUE(l.ok());
  t.layout = *l;
  t.dict = Dict::Open(t.file.path(), CreateOptions(capacity, 16, 32));
  ASSERT_TRUE(t.dict.ok()) << t.dict.status();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(t.dict->Put(Key(i), Value(i)).ok());
}

TEST(HostileFileTest, RandomBucketsDoNotCrash) {
  std::mt19937_64 rng(TestSeed());
  DamagedTable t;
  ASSERT_NO_FATAL_FAILURE(MakeDamagedTable(t, 1000));
  {
    RawMapping raw(t.file.path());
    ASSERT_NE(raw.base(), nullptr);
    ASSERT_EQ(raw.size(), t.layout.file_size);
    const std::string junk =
        RandomBytes(rng, t.layout.file_size - t.layout.buckets_offset);
    std::memcpy(raw.base() + t.layout.buckets_offset, junk.data(), junk.size());
  }
  // Verify sees the damage.
  const internal::VerifyReport report = internal::TableOf(*t.dict)->Verify();
  EXPECT_FALSE(report.clean());
  std::fprintf(stderr, "%d writes succeeded\n", ExerciseDamagedTable(*t.dict, 1000, rng()));
  // A fresh handle (the header is intact, so it opens) and a read-only one too.
  absl::StatusOr<Dict> again = Dict::Open(t.file.path(), Existing());
  ASSERT_TRUE(again.ok()) << again.status();
  ExerciseDamagedTable(*again, 1000, rng());
  absl::StatusOr<Dict> ro = Dict::Open(t.file.path(), ReadOnly());
  ASSERT_TRUE(ro.ok()) << ro.status();
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<std::string> v = ro->Get(Key(i));
    if (v.ok()) {
      EXPECT_LE(v->size(), t.layout.max_value_size);
    }
  }
  EXPECT_LE(ro->Count(), t.layout.bucket_count * internal::kSlotsPerBucket);
}

TEST(HostileFileTest, RandomBucketsWithFreeLocksDoNotCrash) {
  // As above, but with every lock word zero, so that writers go straight to the
  // damaged slots instead of "repairing" each bucket first.
  std::mt19937_64 rng(TestSeed());
  DamagedTable t;
  ASSERT_NO_FATAL_FAILURE(MakeDamagedTable(t, 1000));
  {
    RawMapping raw(t.file.path());
    ASSERT_NE(raw.base(), nullptr);
    const std::string junk =
        RandomBytes(rng, t.layout.file_size - t.layout.buckets_offset);
    std::memcpy(raw.base() + t.layout.buckets_offset, junk.data(), junk.size());
    for (uint64_t b = 0; b < t.layout.bucket_count; ++b) {
      std::memset(raw.base() + internal::BucketOffset(t.layout, b), 0, 8);
    }
  }
  EXPECT_FALSE(internal::TableOf(*t.dict)->Verify().clean());
  std::fprintf(stderr, "%d writes succeeded\n", ExerciseDamagedTable(*t.dict, 1000, rng()));
}

TEST(HostileFileTest, SparselyScribbledTableDoesNotCrash) {
  // A few hundred random words over a populated table: most keys survive, some slots
  // hold impossible lengths, sequences or tags.
  std::mt19937_64 rng(TestSeed());
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    DamagedTable t;
    ASSERT_NO_FATAL_FAILURE(MakeDamagedTable(t, 1500));
    {
      RawMapping raw(t.file.path());
      ASSERT_NE(raw.base(), nullptr);
      const uint64_t words = (t.layout.file_size - t.layout.buckets_offset) / 8;
      for (int i = 0; i < 300; ++i) {
        const uint64_t w = rng();
        // Random values, or plausible-looking ones: small lengths and counts.
        const uint64_t value = (w & 1) != 0 ? rng() : rng() % 64 | (rng() % 64) << 32;
        std::memcpy(raw.base() + t.layout.buckets_offset + (w >> 8) % words * 8, &value, 8);
      }
    }
    int ok_reads = 0;
    for (int i = 0; i < 1500; ++i) {
      absl::StatusOr<std::string> v = t.dict->Get(Key(i));
      if (v.ok()) {
        EXPECT_LE(v->size(), t.layout.max_value_size);
        ok_reads += *v == Value(i);
      }
    }
    EXPECT_GT(ok_reads, 0) << "the scribble was meant to be sparse";
    EXPECT_GT(ExerciseDamagedTable(*t.dict, 1500, rng()), 0);
  }
}

TEST(HostileFileTest, ImpossibleValueLengthsAreReportedNotFollowed) {
  DamagedTable t;
  ASSERT_NO_FATAL_FAILURE(MakeDamagedTable(t, 500));
  const Layout& l = t.layout;
  int damaged = 0;
  {
    RawMapping raw(t.file.path());
    ASSERT_NE(raw.base(), nullptr);
    // Every slot's current copy keeps its key but claims a value longer than the
    // table's maximum (and, for half of them, longer than the whole file).
    for (uint64_t b = 0; b < l.bucket_count; ++b) {
      for (uint32_t i = 0; i < internal::kSlotsPerBucket; ++i) {
        auto* seq = reinterpret_cast<uint64_t*>(raw.base() + internal::SlotOffset(l, b, i));
        uint64_t* copy = internal::CopyAt(seq, *seq, l.copy_stride / 8);
        if ((copy[1] & 0xFFFFFFFFu) == 0) continue;  // empty
        const uint64_t vlen = damaged % 2 == 0 ? l.max_value_size + 1 : 0xFFFFFFFFu;
        copy[1] = (copy[1] & 0xFFFFFFFFu) | vlen << 32;
        ++damaged;
      }
    }
  }
  ASSERT_EQ(damaged, 500);
  for (int i = 0; i < 500; ++i) {
    EXPECT_TRUE(HasCode(t.dict->Get(Key(i)), ErrorCode::kBadFile)) << Key(i);
    char buf[64];
    size_t len = 0;
    EXPECT_TRUE(HasCode(t.dict->GetInto(Key(i), buf, sizeof(buf), &len), ErrorCode::kBadFile));
    EXPECT_TRUE(HasCode(t.dict->FetchAdd(Key(i), 1), ErrorCode::kType)) << Key(i);
  }
  EXPECT_EQ(t.dict->Count(), 0u) << "corrupt slots are not entries";
  int visited = 0;
  t.dict->ForEach([&](std::string_view, std::string_view, uint64_t) {
    ++visited;
    return true;
  });
  EXPECT_EQ(visited, 0);
  const internal::VerifyReport report = internal::TableOf(*t.dict)->Verify();
  EXPECT_EQ(report.damage, 500u);
  // Overwriting a damaged entry repairs it.
  ASSERT_TRUE(t.dict->Put(Key(7), "repaired").ok());
  EXPECT_EQ(*t.dict->Get(Key(7)), "repaired");
  ASSERT_TRUE(t.dict->Erase(Key(8)).ok());
  EXPECT_TRUE(IsMiss(t.dict->Get(Key(8))));
  EXPECT_EQ(internal::TableOf(*t.dict)->Verify().damage, 498u);
}

TEST(HostileFileTest, RandomProcessTableDoesNotCrash) {
  std::mt19937_64 rng(TestSeed());
  TempTable file("damaged");
  ASSERT_FALSE(MakeTable(file.path(), 2000, 16, 32, 1000).empty());
  absl::StatusOr<Layout> l = ComputeLayout(2000, 16, 32);
  ASSERT_TRUE(l.ok());
  {
    RawMapping raw(file.path());
    ASSERT_NE(raw.base(), nullptr);
    const std::string junk = RandomBytes(rng, l->buckets_offset - l->proc_table_offset);
    std::memcpy(raw.base() + l->proc_table_offset, junk.data(), junk.size());
  }
  // The process table holds no data: every key is intact and writes work.
  absl::StatusOr<Dict> d = Dict::Open(file.path(), Existing());
  ASSERT_TRUE(d.ok()) << d.status();
  (void)d->GetStats();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(*d->Get(Key(i)), Value(i));
  ASSERT_TRUE(d->Put(Key(1), "after").ok());
  EXPECT_EQ(*d->Get(Key(1)), "after");
  EXPECT_EQ(d->Count(), 1000u);
  EXPECT_GT(ExerciseDamagedTable(*d, 1000, rng()), 0);
}

}  // namespace
}  // namespace shmdict
