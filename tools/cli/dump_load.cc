// dump and load: the table as JSON lines (codec.h, docs/cli.md), and back.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
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

}  // namespace

int RunDump(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const std::string output = absl::GetFlag(FLAGS_output);
  const bool to_file = !output.empty() && output != "-";
  FILE* out = stdout;
  if (to_file) {
    const int fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    out = fd < 0 ? nullptr : fdopen(fd, "w");
    if (out == nullptr) {
      const int err = errno;
      if (fd >= 0) close(fd);
      return Fail(inv, output + ": " + std::strerror(err));
    }
  }
  static char buffer[1 << 20];
  setvbuf(out, buffer, _IOFBF, sizeof(buffer));

  // The total is only needed for the bar: count (a scan) only when it is shown.
  ProgressBar bar("dump " + d->path(), ProgressWanted() ? d->Count() : 0);
  uint64_t dumped = 0;
  bool ok = true;
  std::string line;
  d->ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
    line = FormatRecord(key, value, version);
    line += '\n';
    ok = WriteAll(out, line);
    bar.Update(++dumped);
    return ok;
  });
  bar.Finish();
  int err = ok ? 0 : errno;
  if (std::fflush(out) != 0 && err == 0) err = errno;
  if (to_file && std::fclose(out) != 0 && err == 0) err = errno;
  if (err != 0) {
    return Fail(inv, "writing " + (to_file ? output : std::string("stdout")) + ": " +
                         std::strerror(err));
  }
  if (to_file) {
    std::printf("dumped %llu entr%s of %s to %s\n", static_cast<unsigned long long>(dumped),
                dumped == 1 ? "y" : "ies", d->path().c_str(), output.c_str());
  }
  return kExitOk;
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
             absl::GetFlag(FLAGS_max_value_size) != 0 || absl::GetFlag(FLAGS_exclusive)) {
    return UsageFail(inv, "--capacity, --max_key_size, --max_value_size and --exclusive "
                          "need --create");
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
  } else if (!create_options.exclusive) {
    d = OpenTable(table, /*writable=*/true);
    if (d.ok()) {
      d = Dict::Open(table, create_options);  // checks the sizes that were given
      if (!d.ok()) return Fail(inv, Message(d.status()));
    } else if (ErrorCodeOf(d.status()) != ErrorCode::kNotFound) {
      return Fail(inv, Message(d.status()));
    }
  }

  LineReader reader(in);
  uint64_t loaded = 0;
  std::string key, value, error;
  uint64_t version;
  std::vector<std::pair<uint64_t, std::pair<std::string, std::string>>> pending;
  const bool buffer_all = !d.ok();  // inferring the sizes of a table still to create
  std::string label = "load " + (d.ok() ? d->path() : table);
  ProgressBar bar(label, input_size, input_size > 0 ? "bytes" : "entries");
  const auto put = [&](uint64_t line_number, const std::string& k,
                       const std::string& v) -> bool {
    absl::StatusOr<uint64_t> s = d->Put(k, v);
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
    if (!ParseRecord(line, &key, &value, &version, &error)) {
      return Fail(inv, input_name + ": line " + std::to_string(reader.line_number()) + ": " +
                           error + LoadedSoFar(loaded));
    }
    if (buffer_all) {
      pending.push_back({reader.line_number(), {key, value}});
    } else if (!put(reader.line_number(), key, value)) {
      return Fail(inv, error);
    }
  }
  if (reader.error()) {
    return Fail(inv, "reading " + input_name + ": " + std::strerror(errno) + LoadedSoFar(loaded));
  }
  if (buffer_all) {
    OpenOptions o = create_options;
    uint64_t max_key = 1, max_value = 1;
    for (const auto& p : pending) {
      max_key = std::max<uint64_t>(max_key, p.second.first.size());
      max_value = std::max<uint64_t>(max_value, p.second.second.size());
    }
    if (o.capacity == 0) o.capacity = std::max<uint64_t>(1, pending.size());
    if (o.max_key_size == 0) o.max_key_size = uint32_t(std::min<uint64_t>(max_key, UINT32_MAX));
    if (o.max_value_size == 0) {
      o.max_value_size = uint32_t(std::min<uint64_t>(max_value, UINT32_MAX));
    }
    d = OpenOrCreate(table, o, &created);
    if (!d.ok()) return Fail(inv, Message(d.status()));
    for (const auto& p : pending) {
      if (!put(p.first, p.second.first, p.second.second)) return Fail(inv, error);
      bar.Update(input_size > 0 ? input_size : loaded);
    }
  }
  bar.Finish();
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("{\"path\":%s,\"loaded\":%llu,\"created\":%s}\n", JsonString(d->path()).c_str(),
                static_cast<unsigned long long>(loaded), created ? "true" : "false");
  } else {
    std::printf("loaded %llu entr%s into %s%s\n", static_cast<unsigned long long>(loaded),
                loaded == 1 ? "y" : "ies", d->path().c_str(), created ? " (created)" : "");
  }
  return kExitOk;
}

}  // namespace shmdict::cli
