#include "tests/fuzz/fuzz_util.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/layout.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::fuzz {

using internal::FileHeader;
using internal::ImmutableHeader;
using internal::ProcEntry;

void CheckFailed(const char* file, int line, const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n  %s\n", file, line, what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

bool Verbose() {
  static const bool verbose = std::getenv("SHMDICT_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

std::string Describe(const absl::Status& status) {
  return std::string(ErrorCodeName(ErrorCodeOf(status))) + ": " + std::string(status.message());
}

std::string Printable(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && u != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string_view Input::Bytes(size_t n) {
  const size_t take = n < remaining() ? n : remaining();
  std::string_view out(reinterpret_cast<const char*>(data_) + pos_, take);
  pos_ += take;
  return out;
}

std::string UniqueTablePath(std::string_view tag) {
  static std::atomic<uint64_t> counter{0};
  // A random component: fuzz processes in different PID namespaces may share a pid.
  static const uint64_t salt = [] {
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v)) v = static_cast<uint64_t>(time(nullptr));
    return v % 1000000007u;
  }();
  // Relaxed: only uniqueness matters.
  return "/dev/shm/shmdict-fuzz-" + std::to_string(getpid()) + "-" + std::to_string(salt) + "-" +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "-" + std::string(tag);
}

void WriteNewFile(const std::string& path, std::initializer_list<FilePiece> pieces, uint64_t size) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, "creating " + path + ": " + std::strerror(errno));
  for (const FilePiece& piece : pieces) {
    if (piece.offset >= size) continue;
    const size_t len =
        static_cast<size_t>(std::min<uint64_t>(piece.bytes.size(), size - piece.offset));
    size_t done = 0;
    while (done < len) {
      const ssize_t n = pwrite(fd, piece.bytes.data() + done, len - done,
                               static_cast<off_t>(piece.offset + done));
      FUZZ_CHECK(n > 0, "writing " + path + ": " + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
  }
  FUZZ_CHECK(ftruncate(fd, static_cast<off_t>(size)) == 0,
             "sizing " + path + ": " + std::strerror(errno));
  close(fd);
}

std::string ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "opening " + path + ": " + std::strerror(errno));
  struct stat st;
  FUZZ_CHECK(fstat(fd, &st) == 0, "fstat " + path);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    FUZZ_CHECK(n > 0, "reading " + path + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  close(fd);
  return out;
}

uint64_t HeaderChecksum(const void* immutable_header) {
  return XXH3_64bits(immutable_header, sizeof(ImmutableHeader));
}

void SetHeaderSeed(const std::string& path, uint64_t seed) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "opening " + path + ": " + std::strerror(errno));
  FileHeader h;
  FUZZ_CHECK(pread(fd, &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h)),
             "reading the header of " + path);
  h.fixed.hash_seed = seed;
  h.fixed.created_unix_ns = 0;
  h.fixed.creator_pid = 0;
  h.fixed.creator_uid = 0;
  h.checksum = HeaderChecksum(&h.fixed);
  FUZZ_CHECK(pwrite(fd, &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h)),
             "writing the header of " + path);
  close(fd);
}

std::string MakeTableBytes(uint64_t capacity, uint32_t max_key_size, uint32_t max_value_size,
                           uint64_t seed, const std::function<void(Dict&)>& fill) {
  const std::string path = UniqueTablePath("template");
  {
    absl::StatusOr<Dict> d = Dict::Open(path, {.create = true,
                                               .exclusive = true,
                                               .capacity = capacity,
                                               .max_key_size = max_key_size,
                                               .max_value_size = max_value_size});
    FUZZ_CHECK(d.ok(), "creating a template table: " + Describe(d.status()));
  }
  SetHeaderSeed(path, seed);
  if (fill) {
    absl::StatusOr<Dict> d = Dict::Open(path, OpenOptions());
    FUZZ_CHECK(d.ok(), "reopening a template table: " + Describe(d.status()));
    fill(*d);
  }
  std::string bytes = ReadWholeFile(path);
  unlink(path.c_str());
  // The writes claimed a process-table entry; keep its incarnation (bucket lock words
  // name it) but not the pid and time that would differ from run to run.
  for (uint32_t i = 0; i < internal::kProcEntries; ++i) {
    char* e = bytes.data() + internal::kHeaderSize + i * sizeof(ProcEntry);
    std::memset(e + offsetof(ProcEntry, pid), 0, sizeof(uint32_t));
    std::memset(e + offsetof(ProcEntry, claimed_unix_ns), 0, sizeof(uint64_t));
  }
  return bytes;
}

}  // namespace shmdict::fuzz
