// Files: resolving a table's name, creating its file, validating and mapping it, and
// removing it.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common.h"
#include "core/crash_point.h"
#include "core/table.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace shmdict::internal {

// ---------------------------------------------------------------------------------
// Files: creating, opening, validating

absl::StatusOr<std::string> Table::ResolvePath(std::string_view path) {
  if (path.empty()) return Err(ErrorCode::kInvalid, "empty path");
  if (path.find('\0') != std::string_view::npos) {
    return Err(ErrorCode::kInvalid, "path contains a NUL byte");
  }
  if (path.size() >= PATH_MAX) return Err(ErrorCode::kInvalid, "path too long");
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (name.size() > NAME_MAX) {
    return Err(ErrorCode::kInvalid,
               absl::StrCat("table name of ", name.size(), " bytes is over the ", NAME_MAX,
                            "-byte limit of a file name"));
  }
  if (slash != std::string_view::npos) return std::string(path);
  if (path == "." || path == "..") {
    return Err(ErrorCode::kInvalid, absl::StrCat("'", AV(path), "' is not a table name"));
  }
  return absl::StrCat("/dev/shm/", AV(path));
}

namespace {

// Reserves the file's blocks with fallocate(2) itself: a full /dev/shm is an error
// then, not a SIGBUS later. Never posix_fallocate on a file others may have mapped:
// where the file system lacks fallocate, glibc emulates it by writing a zero byte into
// every block, racing with (and undoing) other processes' writes. Returns 0 or an
// errno value (EOPNOTSUPP: the file system cannot reserve).
int ReserveBlocks(int fd, uint64_t size) {
  return fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0 ? 0 : errno;
}

absl::Status CreateError(const std::string& dir, const std::string& what, int err) {
  if (err == EACCES || err == EPERM || err == EROFS) {
    return Err(ErrorCode::kPermission,
               absl::StrCat("cannot create a file in ", dir, ": ", strerror(err)));
  }
  if (err == ENOENT || err == ENOTDIR) {
    return Err(ErrorCode::kNotFound, absl::StrCat("directory ", dir, " does not exist"));
  }
  return ErrnoError(absl::StrCat("creating ", what), err);
}

// Creates the file complete before it gets its name, so that no process ever sees a
// half-initialized table. Unnamed (O_TMPFILE) where the file system allows it, so
// that a creator that dies leaves nothing behind; elsewhere under a hidden temporary
// name that is removed on every error. Returns the open descriptor, or kExists when
// `path` appeared meanwhile.
absl::StatusOr<int> CreateTableFile(const std::string& path, const Layout& layout,
                                    uint32_t mode, uint32_t eviction) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) nonce = NowUnixNs();
  std::string tmp;  // empty: the file is unnamed (O_TMPFILE)
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err != EOPNOTSUPP && err != EISDIR && err != EINVAL) return CreateError(dir, dir, err);
    // No O_TMPFILE here: a hidden temporary name (and 216-byte names still fit).
    tmp = absl::StrCat(dir, ".shmdict.", getpid(), ".", nonce % 1000000007);
    fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return CreateError(dir, tmp, errno);
  }
  if (const int err = MoveAboveStdio(&fd); err != 0) {
    if (!tmp.empty()) unlink(tmp.c_str());
    return ErrnoError("moving a descriptor above 2", err);
  }
  auto fail = [&](absl::Status s) -> absl::StatusOr<int> {
    if (!tmp.empty()) unlink(tmp.c_str());
    close(fd);
    return s;
  };
  if (fchmod(fd, mode) != 0) return fail(ErrnoError("fchmod", errno));
  // Reserve every byte now: a full /dev/shm is an error here, not a SIGBUS later. The
  // file is still private, so where fallocate(2) is missing glibc's emulation is safe.
  int err = ReserveBlocks(fd, layout.file_size);
  if (err == EOPNOTSUPP) err = posix_fallocate(fd, 0, static_cast<off_t>(layout.file_size));
  if (err != 0) {
    if (err == ENOSPC) {
      return fail(MakeOsError(absl::StrCat("not enough space in ", dir, " for a table of ",
                                           layout.file_size, " bytes"),
                              ENOSPC));
    }
    return fail(ErrnoError("reserving space", err));
  }
  FileHeader* h = new FileHeader();
  std::memset(static_cast<void*>(h), 0, sizeof(*h));
  ImmutableHeader& f = h->fixed;
  std::memcpy(f.magic, kMagic, sizeof(kMagic));
  f.format_version = kFormatVersion;
  f.endian_mark = kEndianMark;
  f.header_size = kHeaderSize;
  f.hash_algorithm = kHashXxh3_64;
  if (getrandom(&f.hash_seed, sizeof(f.hash_seed), 0) != sizeof(f.hash_seed)) {
    f.hash_seed = XXH3_64bits_withSeed(&nonce, sizeof(nonce), NowUnixNs());
  }
  f.capacity = layout.capacity;
  f.bucket_count = layout.bucket_count;
  f.slots_per_bucket = kSlotsPerBucket;
  f.max_key_size = layout.max_key_size;
  f.max_value_size = layout.max_value_size;
  f.copy_stride = layout.copy_stride;
  f.slot_stride = layout.slot_stride;
  f.bucket_stride = layout.bucket_stride;
  f.proc_entries = kProcEntries;
  f.proc_entry_size = sizeof(ProcEntry);
  f.proc_table_offset = layout.proc_table_offset;
  f.buckets_offset = layout.buckets_offset;
  f.file_size = layout.file_size;
  f.created_unix_ns = NowUnixNs();
  f.creator_pid = static_cast<uint32_t>(getpid());
  f.creator_uid = static_cast<uint32_t>(geteuid());
  f.eviction = eviction;
  h->checksum = HeaderChecksum(f);
  const ssize_t written = pwrite(fd, h, sizeof(*h), 0);
  delete h;
  if (written != static_cast<ssize_t>(sizeof(FileHeader))) {
    return fail(ErrnoError("writing the header", written < 0 ? errno : EIO));
  }
  SHMDICT_CRASH_POINT(kCreateBeforeLink);
  int linked;
  if (tmp.empty()) {
    // An O_TMPFILE file gets its name through /proc (AT_EMPTY_PATH would need
    // CAP_DAC_READ_SEARCH).
    const std::string self = absl::StrCat("/proc/self/fd/", fd);
    linked = linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
  } else {
    linked = link(tmp.c_str(), path.c_str());
  }
  if (linked != 0) {
    const int link_err = errno;
    if (link_err == EEXIST) return fail(Err(ErrorCode::kExists, absl::StrCat(path, " exists")));
    return fail(ErrnoError(absl::StrCat("linking ", path), link_err));
  }
  if (!tmp.empty()) unlink(tmp.c_str());
  return fd;
}

absl::Status OpenError(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return Err(ErrorCode::kNotFound, absl::StrCat("no table at ", path));
    case ELOOP:
      return Err(ErrorCode::kBadFile,
                 absl::StrCat(path, " is a symbolic link; shmdict does not follow links"));
    case EACCES:
    case EPERM:
    case EROFS:
      return Err(ErrorCode::kPermission, absl::StrCat(path, ": ", strerror(err)));
    case EISDIR:
      return Err(ErrorCode::kBadFile, absl::StrCat(path, " is a directory"));
    case ENXIO:
    case ENODEV:
      return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a regular file"));
    default:
      return ErrnoError(absl::StrCat("opening ", path), err);
  }
}

// Whether gid is this process's effective group or one of its supplementary groups.
bool InOurGroups(gid_t gid) {
  if (gid == getegid()) return true;
  const int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  const int m = getgroups(n, groups.data());
  return m > 0 && std::find(groups.begin(), groups.begin() + m, gid) != groups.begin() + m;
}

// Checks everything about an open file before it is mapped. On success fills *layout,
// *seed and *eviction.
absl::Status ValidateFile(int fd, const std::string& path, const OpenOptions& params,
                          Layout* layout, uint64_t* seed, uint32_t* eviction,
                          struct stat* st) {
  if (fstat(fd, st) != 0) return ErrnoError(absl::StrCat("fstat ", path), errno);
  if (!S_ISREG(st->st_mode)) {
    return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a regular file"));
  }
  if ((st->st_mode & S_IWOTH) != 0) {
    return Err(ErrorCode::kPermission,
               absl::StrCat(path, " is world-writable; refusing to use it"));
  }
  if (!params.allow_group) {
    if ((st->st_mode & S_IWGRP) != 0) {
      return Err(ErrorCode::kPermission,
                 absl::StrCat(path, " is group-writable; refusing to use it without the "
                                    "allow-group option"));
    }
    if (st->st_uid != geteuid()) {
      return Err(ErrorCode::kPermission,
                 absl::StrCat(path, " is owned by uid ", st->st_uid, ", not by uid ",
                              geteuid(), "; refusing to use it without the allow-group "
                                         "option"));
    }
  } else if (st->st_uid != geteuid() && !InOurGroups(st->st_gid)) {
    // Sharing by group means sharing with the members of the file's group: a file of
    // another user whose group is not one of ours is not shared with us.
    return Err(ErrorCode::kPermission,
               absl::StrCat(path, " is owned by uid ", st->st_uid, " and group ",
                            st->st_gid, ", which is not one of this process's groups"));
  }
  const uint64_t size = static_cast<uint64_t>(st->st_size);
  if (size < sizeof(FileHeader)) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is ", size, " bytes long: too short for a shmdict "
                                                "header"));
  }
  FileHeader h;
  const ssize_t got = pread(fd, &h, sizeof(h), 0);
  if (got < 0) return ErrnoError(absl::StrCat("reading the header of ", path), errno);
  if (got != static_cast<ssize_t>(sizeof(h))) {
    // fstat said the file was long enough, the read says otherwise (a special file
    // that claims a size, or a file truncated meanwhile): not a table we can use.
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": reading its ", sizeof(h), "-byte header gave ", got,
                            " bytes"));
  }
  const ImmutableHeader& f = h.fixed;
  if (std::memcmp(f.magic, kMagic, sizeof(kMagic)) != 0) {
    return Err(ErrorCode::kBadFile, absl::StrCat(path, " is not a shmdict file (bad magic)"));
  }
  if (f.endian_mark != kEndianMark) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " was created on a machine of the other byte order"));
  }
  if (f.format_version == 1) {
    // Version 1 copies have no expiry word: their slots do not fit this build's layout.
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " has format version 1 (shmdict before expiry); this "
                                  "build reads version ", kFormatVersion, ". Move its "
                                  "entries: `shmdict dump NAME --output FILE` with the "
                                  "build that wrote it, then `shmdict load NEW FILE` "
                                  "with this one"));
  }
  if (f.format_version != kFormatVersion) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " has format version ", f.format_version,
                            "; this build reads version ", kFormatVersion));
  }
  if (HeaderChecksum(f) != h.checksum) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header checksum mismatch (the header is corrupt)"));
  }
  if (f.hash_algorithm != kHashXxh3_64 || f.header_size != kHeaderSize ||
      f.slots_per_bucket != kSlotsPerBucket || f.proc_entries != kProcEntries ||
      f.proc_entry_size != sizeof(ProcEntry) ||
      (f.eviction != kEvictNone && f.eviction != kEvictLrs)) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header names a hash, header size, bucket size, "
                                  "process table or eviction policy this build does "
                                  "not support"));
  }
  absl::StatusOr<Layout> l = ComputeLayout(f.capacity, f.max_key_size, f.max_value_size);
  if (!l.ok()) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header holds invalid parameters: ", l.status().message()));
  }
  if (l->bucket_count != f.bucket_count || l->copy_stride != f.copy_stride ||
      l->slot_stride != f.slot_stride || l->bucket_stride != f.bucket_stride ||
      l->proc_table_offset != f.proc_table_offset ||
      l->buckets_offset != f.buckets_offset || l->file_size != f.file_size) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, ": header layout does not match its parameters"));
  }
  if (size != l->file_size) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is ", size, " bytes long; its layout needs ",
                            l->file_size, size < l->file_size ? " (truncated)" : ""));
  }
  if (params.eviction != Eviction::kNone &&
      static_cast<uint32_t>(params.eviction) != f.eviction) {
    return Err(ErrorCode::kInvalid,
               absl::StrCat(path, " exists with eviction policy ",
                            f.eviction == kEvictLrs ? "lrs" : "none",
                            ", unlike the options given"));
  }
  if (params.create) {
    if ((params.capacity != 0 && params.capacity != f.capacity) ||
        (params.max_key_size != 0 && params.max_key_size != f.max_key_size) ||
        (params.max_value_size != 0 && params.max_value_size != f.max_value_size)) {
      return Err(ErrorCode::kInvalid,
                 absl::StrCat(path, " exists with capacity ", f.capacity,
                              ", max key size ", f.max_key_size, ", max value size ",
                              f.max_value_size, ", unlike the options given"));
    }
  }
  *layout = *l;
  *seed = f.hash_seed;
  *eviction = f.eviction;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Table>> Table::Open(std::string_view path_arg,
                                                   const OpenOptions& params) {
  absl::StatusOr<std::string> resolved = ResolvePath(path_arg);
  if (!resolved.ok()) return resolved.status();
  const std::string& path = *resolved;
  if (params.create && params.read_only) {
    return Err(ErrorCode::kInvalid, "create and read-only exclude each other");
  }
  if (params.exclusive && !params.create) {
    return Err(ErrorCode::kInvalid, "exclusive needs create");
  }
  if (params.eviction != Eviction::kNone && params.eviction != Eviction::kLrs) {
    return Err(ErrorCode::kInvalid,
               absl::StrCat("eviction policy ", static_cast<uint32_t>(params.eviction),
                            " is neither none (0) nor lrs (1)"));
  }
  // The layout to create; its error (say, capacity 0) only matters when the file is
  // absent: opening an existing table with create and zero fields is fine.
  absl::StatusOr<Layout> wanted = absl::InternalError("unused");
  if (params.create) {
    wanted = ComputeLayout(params.capacity, params.max_key_size, params.max_value_size);
    if ((params.mode & ~0777u) != 0) {
      return Err(ErrorCode::kInvalid, absl::StrFormat("mode 0%o has bits outside 0777",
                                                      params.mode));
    }
    if ((params.mode & 0002) != 0) {
      return Err(ErrorCode::kInvalid, "refusing to create a world-writable table");
    }
    if ((params.mode & 0020) != 0 && !params.allow_group) {
      return Err(ErrorCode::kInvalid,
                 "a group-writable mode needs the allow-group option");
    }
    if ((params.mode & 0600) != 0600) {
      return Err(ErrorCode::kInvalid, "mode must give the owner read and write access");
    }
  }
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = open(path.c_str(),
              (params.read_only ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                  O_NOCTTY);
    if (fd >= 0) {
      if (params.exclusive) {
        close(fd);
        return Err(ErrorCode::kExists, absl::StrCat(path, " exists"));
      }
      break;
    }
    const int err = errno;
    if (err != ENOENT || !params.create) return OpenError(path, err);
    if (!wanted.ok()) return wanted.status();
    absl::StatusOr<int> created = CreateTableFile(path, *wanted, params.mode,
                                                    static_cast<uint32_t>(params.eviction));
    if (created.ok()) {
      fd = *created;
      break;
    }
    if (ErrorCodeOf(created.status()) != ErrorCode::kExists || params.exclusive ||
        attempt >= 8) {
      return created.status();
    }
    // Another process created it first: open theirs.
  }
  // Regular files ignore O_NONBLOCK; it only kept us from blocking on a FIFO.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  // Never 0, 1 or 2 (see MoveAboveStdio): HolderIsDead asks the kernel about locks
  // through this descriptor, and an application that reopens stdin, stdout or stderr
  // would otherwise make it ask about another file.
  if (const int err = MoveAboveStdio(&fd); err != 0) {
    return ErrnoError("moving a descriptor above 2", err);
  }
  auto t = std::unique_ptr<Table>(new Table());
  t->fd_ = fd;  // closed by ~Table from here on
  t->path_ = path;
  t->read_only_ = params.read_only;
  struct stat st;
  if (absl::Status s = ValidateFile(fd, path, params, &t->layout_, &t->seed_,
                                     &t->eviction_, &st);
      !s.ok()) {
    return s;
  }
  // A sparse file (copied with `cp --sparse`, or extended with truncate) would raise
  // SIGBUS on the first write into a hole when the file system is full. Reserve the
  // holes now, so a full /dev/shm is an error here instead. Read-only handles cannot
  // (and need not: reading a hole gives zeros). Other processes may be writing the
  // table: fallocate(2) only (ReserveBlocks); where the file system lacks it, the
  // holes stay (as they would on any file system that cannot reserve).
  if (!params.read_only &&
      static_cast<uint64_t>(st.st_blocks) * 512 < t->layout_.file_size) {
    if (const int err = ReserveBlocks(fd, t->layout_.file_size);
        err != 0 && err != EOPNOTSUPP) {
      return MakeOsError(absl::StrCat(path, " is sparse and reserving its ",
                                      t->layout_.file_size, " bytes failed: ",
                                      strerror(err)),
                         err);
    }
  }
  t->file_dev_ = static_cast<uint64_t>(st.st_dev);
  t->file_ino_ = static_cast<uint64_t>(st.st_ino);
  void* p = mmap(nullptr, t->layout_.file_size,
                 params.read_only ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError(absl::StrCat("mapping ", path), errno);
  t->base_ = static_cast<char*>(p);
  t->map_size_ = t->layout_.file_size;
  return t;
}

Table::~Table() {
  if (base_ != nullptr) munmap(base_, map_size_);
  ReleaseRegistration();  // releases our process-table entry
  if (fd_ >= 0) close(fd_);
}

absl::Status Table::Unlink(std::string_view path_arg) {
  absl::StatusOr<std::string> resolved = ResolvePath(path_arg);
  if (!resolved.ok()) return resolved.status();
  const std::string& path = *resolved;
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return OpenError(path, errno);
  struct stat st;
  char magic[sizeof(kMagic)];
  const bool is_table = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                        pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
                        std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
  close(fd);
  if (!is_table) {
    return Err(ErrorCode::kBadFile,
               absl::StrCat(path, " is not a shmdict file; not removing it"));
  }
  if (unlink(path.c_str()) != 0) {
    const int err = errno;
    if (err == ENOENT) return Err(ErrorCode::kNotFound, absl::StrCat("no table at ", path));
    if (err == EACCES || err == EPERM) {
      return Err(ErrorCode::kPermission, absl::StrCat(path, ": ", strerror(err)));
    }
    return ErrnoError(absl::StrCat("removing ", path), err);
  }
  return absl::OkStatus();
}

}  // namespace shmdict::internal
