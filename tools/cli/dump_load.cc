// dump and load: the table as JSON lines (codec.h, docs/cli.md), and back.
#include <fcntl.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/clock.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"
#include "tools/cli/progress.h"

namespace shmdict::cli {
namespace {

// Lines of a stream, any length, any bytes.
class LineReader {
 public:
  explicit LineReader(FILE* f) : f_(f) {}
  ~LineReader() { std::free(buf_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its '\n'; false at the end or on a read error (see error()).
  bool Next(std::string_view* line) {
    const ssize_t n = getline(&buf_, &cap_, f_);
    if (n < 0) return false;
    ++line_number_;
    bytes_ += uint64_t(n);
    size_t len = size_t(n);
    if (len > 0 && buf_[len - 1] == '\n') --len;
    *line = std::string_view(buf_, len);
    return true;
  }
  uint64_t line_number() const { return line_number_; }
  uint64_t bytes() const { return bytes_; }
  bool error() const { return std::ferror(f_) != 0; }

 private:
  FILE* f_;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  uint64_t line_number_ = 0;
  uint64_t bytes_ = 0;
};

bool Blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

std::string LoadedSoFar(uint64_t loaded) {
  return loaded == 0 ? " (nothing loaded)"
                     : " (" + std::to_string(loaded) + " entr" + (loaded == 1 ? "y" : "ies") +
                           " loaded before it)";
}

// Opens TABLE with `o` (create set), telling whether it was created: exclusively first,
// then, unless --exclusive, the existing table (which must then match nonzero sizes).
absl::StatusOr<Dict> OpenOrCreate(const std::string& table, OpenOptions o, bool* created) {
  const bool exclusive = o.exclusive;
  o.exclusive = true;
  absl::StatusOr<Dict> d = Dict::Open(table, o);
  *created = d.ok();
  if (!d.ok() && ErrorCodeOf(d.status()) == ErrorCode::kExists && !exclusive) {
    o.exclusive = false;
    d = Dict::Open(table, o);
  }
  return d;
}

// dump --output FILE: the dump goes to a new file beside FILE, which then replaces FILE
// (rename), so that FILE is never a half-written dump, a symbolic link at FILE is
// replaced rather than followed, and FILE ends up with the new file's mode (0600)
// whatever an older FILE had. The new file goes away unless committed.
class OutputFile {
 public:
  OutputFile() = default;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile() { Discard(); }

  // Creates the new file in FILE's directory: O_CREAT | O_EXCL | O_NOFOLLOW, mode
  // 0600 (less what the umask takes away), named ".FILE.<random>.tmp". Returns
  // false with *error set.
  bool Create(const std::string& path, std::string* error) {
    const size_t slash = path.rfind('/');
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..") {
      *error = path + ": " + std::strerror(EISDIR);
      return false;
    }
    const std::string dir_prefix = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    // ".FILE.0123456789ab.tmp", FILE cut short if the name would be over NAME_MAX.
    const std::string stem = base.substr(0, std::min<size_t>(base.size(), NAME_MAX - 18));
    for (int attempt = 0;; ++attempt) {
      uint64_t nonce = 0;
      if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce)) {
        nonce = (uint64_t(getpid()) << 20) ^ (uint64_t(time(nullptr)) << 4) ^ uint64_t(attempt);
      }
      char suffix[32];
      std::snprintf(suffix, sizeof(suffix), ".%012llx.tmp",
                    static_cast<unsigned long long>(nonce & 0xffffffffffffull));
      std::string temp = dir_prefix + "." + stem + suffix;
      const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600);
      const int err = errno;
      if (fd >= 0) {
        path_ = path;
        temp_ = std::move(temp);
        f_ = fdopen(fd, "w");
        if (f_ != nullptr) return true;
        *error = path + ": " + std::strerror(errno);
        close(fd);
        Discard();
        return false;
      }
      if (err != EEXIST || attempt >= 8) {
        *error = path + ": creating a new file in its directory: " + std::strerror(err);
        return false;
      }
    }
  }

  FILE* stream() const { return f_; }

  // Flushes and syncs the new file and renames it over FILE; `err` is an earlier
  // write's errno (0: none). On any error removes the new file, leaves FILE as it was
  // and returns false with *error set ("writing FILE: ...", or "FILE: ..." when the
  // rename fails).
  bool Commit(int err, std::string* error) {
    if (err == 0 && std::fflush(f_) != 0) err = errno;
    if (err == 0 && fsync(fileno(f_)) != 0) err = errno;
    const int close_rc = std::fclose(std::exchange(f_, nullptr));
    if (err == 0 && close_rc != 0) err = errno;
    if (err == 0 && rename(temp_.c_str(), path_.c_str()) != 0) {
      err = errno;
      *error = path_ + ": " + std::strerror(err);
      Discard();
      return false;
    }
    if (err != 0) {
      *error = "writing " + path_ + ": " + std::strerror(err);
      Discard();
      return false;
    }
    temp_.clear();  // renamed: nothing to remove
    return true;
  }

 private:
  void Discard() {
    if (f_ != nullptr) std::fclose(std::exchange(f_, nullptr));
    if (!temp_.empty()) unlink(temp_.c_str());
    temp_.clear();
  }

  std::string path_;
  std::string temp_;  // empty once renamed or removed
  FILE* f_ = nullptr;
};

}  // namespace

int RunDump(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const std::string output = absl::GetFlag(FLAGS_output);
  const bool to_file = !output.empty() && output != "-";
  FILE* out = stdout;
  OutputFile file;
  if (to_file) {
    std::string error;
    if (!file.Create(output, &error)) return Fail(inv, error);
    out = file.stream();
  }
  static char buffer[1 << 20];
  setvbuf(out, buffer, _IOFBF, sizeof(buffer));

  // The total is only needed for the bar: count (a scan) only when it is shown.
  ProgressBar bar("dump " + d->path(), ProgressWanted() ? d->Count() : 0);
  uint64_t dumped = 0;
  bool ok = true;
  std::string line;
  // ForEachEntry, not Dict::ForEach: it gives each entry's absolute expiry too (and
  // skips expired entries, as ForEach does).
  const uint64_t skipped =
      internal::TableOf(*d)
          ->ForEachEntry([&](const internal::ScanEntry& e) {
            line = FormatRecord(e.key, e.value, e.version, e.expires);
            line += '\n';
            ok = WriteAll(out, line);
            bar.Update(++dumped);
            return ok;
          })
          .corrupt;
  bar.Finish();
  if (to_file) {
    std::string error;
    if (!file.Commit(ok ? 0 : errno, &error)) return Fail(inv, error);
    std::printf("dumped %llu entr%s of %s to %s\n", static_cast<unsigned long long>(dumped),
                dumped == 1 ? "y" : "ies", d->path().c_str(), output.c_str());
    return SkippedCorrupt(inv, skipped);
  }
  int err = ok ? 0 : errno;
  if (std::fflush(out) != 0 && err == 0) err = errno;
  if (err != 0) return Fail(inv, std::string("writing stdout: ") + std::strerror(err));
  return SkippedCorrupt(inv, skipped);
}

int RunLoad(const Invocation& inv) {
  const std::string& table = inv.args[0];
  const std::string input = absl::GetFlag(FLAGS_input);
  const bool from_file = !input.empty() && input != "-";
  OpenOptions create_options;
  const bool create = absl::GetFlag(FLAGS_create);
  if (create) {
    std::string error;
    if (!CreateOptionsFromFlags(&create_options, &error)) return UsageFail(inv, error);
  } else if (absl::GetFlag(FLAGS_capacity) != 0 || absl::GetFlag(FLAGS_max_key_size) != 0 ||
             absl::GetFlag(FLAGS_max_value_size) != 0 || absl::GetFlag(FLAGS_exclusive) ||
             !absl::GetFlag(FLAGS_eviction).empty()) {
    return UsageFail(inv, "--capacity, --max_key_size, --max_value_size, --exclusive and "
                          "--eviction need --create");
  }

  FILE* in = stdin;
  uint64_t input_size = 0;
  if (from_file) {
    in = std::fopen(input.c_str(), "rb");
    if (in == nullptr) return Fail(inv, input + ": " + std::strerror(errno));
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) input_size = uint64_t(st.st_size);
  }
  struct Closer {
    FILE* f;
    ~Closer() {
      if (f != stdin) std::fclose(f);
    }
  } closer{in};
  const std::string input_name = from_file ? input : "stdin";

  // Open the table. With --create and sizes to infer, a missing table is created
  // after the whole input has been read (and checked).
  const bool infer = create && (create_options.capacity == 0 ||
                                create_options.max_key_size == 0 ||
                                create_options.max_value_size == 0);
  bool created = false;
  absl::StatusOr<Dict> d = absl::UnknownError("not opened");
  if (!create) {
    d = OpenTable(table, /*writable=*/true);
    if (!d.ok()) {
      return Fail(inv, Message(d.status()) +
                           (ErrorCodeOf(d.status()) == ErrorCode::kNotFound
                                ? " (--create makes it)"
                                : ""));
    }
  } else if (!infer) {
    d = OpenOrCreate(table, create_options, &created);
    if (!d.ok()) return Fail(inv, Message(d.status()));
    std::string error;
    if (!created && !EvictionAsGiven(*d, &error)) return Fail(inv, error);
  } else if (!create_options.exclusive) {
    d = OpenTable(table, /*writable=*/true);
    if (d.ok()) {
      d = Dict::Open(table, create_options);  // checks the sizes that were given
      if (!d.ok()) return Fail(inv, Message(d.status()));
      std::string error;
      if (!EvictionAsGiven(*d, &error)) return Fail(inv, error);
    } else if (ErrorCodeOf(d.status()) != ErrorCode::kNotFound) {
      return Fail(inv, Message(d.status()));
    }
  }

  LineReader reader(in);
  uint64_t loaded = 0;
  uint64_t skipped_expired = 0;
  std::string key, value, error;
  uint64_t version, expires;
  struct Pending {
    uint64_t line_number;
    std::string key;
    std::string value;
    uint64_t expires;
  };
  std::vector<Pending> pending;
  const bool buffer_all = !d.ok();  // inferring the sizes of a table still to create
  std::string label = "load " + (d.ok() ? d->path() : table);
  ProgressBar bar(label, input_size, input_size > 0 ? "bytes" : "entries");
  // Puts one entry; an entry with an absolute expiry gets the time it has left. The
  // engine takes a relative ttl and adds it to its own reading of the same precise
  // clock (core/clock.h), so the stored expiry is the dumped one plus the time
  // between the two readings: the same millisecond, or the next when a millisecond
  // boundary falls between them (or more if this process is descheduled right there),
  // never earlier. An entry whose expiry has passed is skipped and counted.
  const auto put = [&](uint64_t line_number, const std::string& k, const std::string& v,
                       uint64_t expires_unix_ms) -> bool {
    SetOptions set;
    if (expires_unix_ms != 0) {
      const uint64_t now = internal::NowMs();
      if (expires_unix_ms <= now) {
        ++skipped_expired;
        return true;
      }
      const uint64_t ttl_ms = expires_unix_ms - now;
      if (ttl_ms > internal::kMaxTtlMs) {
        error = "line " + std::to_string(line_number) + ": key " + Quoted(k) +
                ": \"expires_unix_ms\" " + std::to_string(expires_unix_ms) +
                " is over 2^42 ms (about 139 years) from now" + LoadedSoFar(loaded);
        return false;
      }
      set.ttl = absl::Milliseconds(int64_t(ttl_ms));
    }
    absl::StatusOr<uint64_t> s = d->Set(k, v, set);
    if (!s.ok()) {
      error = "line " + std::to_string(line_number) + ": key " + Quoted(k) + ": " +
              Message(s.status()) + LoadedSoFar(loaded);
      return false;
    }
    ++loaded;
    return true;
  };
  std::string_view line;
  while (reader.Next(&line)) {
    bar.Update(input_size > 0 ? reader.bytes() : loaded + pending.size());
    if (Blank(line)) continue;
    if (!ParseRecord(line, &key, &value, &version, &expires, &error)) {
      return Fail(inv, input_name + ": line " + std::to_string(reader.line_number()) + ": " +
                           error + LoadedSoFar(loaded));
    }
    if (buffer_all) {
      pending.push_back({reader.line_number(), key, value, expires});
    } else if (!put(reader.line_number(), key, value, expires)) {
      return Fail(inv, error);
    }
  }
  if (reader.error()) {
    return Fail(inv, "reading " + input_name + ": " + std::strerror(errno) + LoadedSoFar(loaded));
  }
  if (buffer_all) {
    OpenOptions o = create_options;
    uint64_t max_key = 1, max_value = 1;
    for (const Pending& p : pending) {
      max_key = std::max<uint64_t>(max_key, p.key.size());
      max_value = std::max<uint64_t>(max_value, p.value.size());
    }
    if (o.capacity == 0) o.capacity = std::max<uint64_t>(1, pending.size());
    if (o.max_key_size == 0) o.max_key_size = uint32_t(std::min<uint64_t>(max_key, UINT32_MAX));
    if (o.max_value_size == 0) {
      o.max_value_size = uint32_t(std::min<uint64_t>(max_value, UINT32_MAX));
    }
    d = OpenOrCreate(table, o, &created);
    if (!d.ok()) return Fail(inv, Message(d.status()));
    for (const Pending& p : pending) {
      if (!put(p.line_number, p.key, p.value, p.expires)) return Fail(inv, error);
      bar.Update(input_size > 0 ? input_size : loaded);
    }
  }
  bar.Finish();
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("{\"path\":%s,\"loaded\":%llu,\"skipped_expired\":%llu,\"created\":%s}\n",
                JsonString(d->path()).c_str(), static_cast<unsigned long long>(loaded),
                static_cast<unsigned long long>(skipped_expired), created ? "true" : "false");
  } else {
    std::string expired_note;
    if (skipped_expired > 0) {
      expired_note = "; skipped " + std::to_string(skipped_expired) + " expired entr" +
                     (skipped_expired == 1 ? "y" : "ies");
    }
    std::printf("loaded %llu entr%s into %s%s%s\n", static_cast<unsigned long long>(loaded),
                loaded == 1 ? "y" : "ies", d->path().c_str(), created ? " (created)" : "",
                expired_note.c_str());
  }
  return kExitOk;
}

}  // namespace shmdict::cli
