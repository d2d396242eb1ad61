// create, put, get, del, ls and rm.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"

namespace shmdict::cli {
namespace {

// Reads `path` ('-': stdin) into *out, but at most `limit` bytes: *out holds `limit`
// bytes when the input has that many or more. Returns false with *error set.
bool ReadAtMost(const std::string& path, size_t limit, std::string* out, std::string* error) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  out->clear();
  char buf[65536];
  size_t n;
  while (out->size() < limit &&
         (n = std::fread(buf, 1, std::min(sizeof(buf), limit - out->size()), f)) > 0) {
    out->append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  if (f != stdin) std::fclose(f);
  if (failed) {
    *error = (path == "-" ? std::string("stdin") : path) + ": " + std::strerror(err);
    return false;
  }
  return true;
}

}  // namespace

int RunCreate(const Invocation& inv) {
  OpenOptions o;
  std::string error;
  if (!CreateOptionsFromFlags(&o, &error)) return UsageFail(inv, error);
  if (o.capacity == 0 || o.max_key_size == 0 || o.max_value_size == 0) {
    return UsageFail(inv, "--capacity, --max_key_size and --max_value_size are required");
  }
  const bool exclusive = o.exclusive;
  // Exclusively first, to tell "created" from "already there".
  o.exclusive = true;
  absl::StatusOr<Dict> d = Dict::Open(inv.args[0], o);
  bool created = d.ok();
  if (!d.ok() && ErrorCodeOf(d.status()) == ErrorCode::kExists && !exclusive) {
    o.exclusive = false;  // opens the existing table if its sizes match
    d = Dict::Open(inv.args[0], o);
  }
  if (!d.ok()) return Fail(inv, Message(d.status()));
  if (!created && !EvictionAsGiven(*d, &error)) return Fail(inv, error);
  const internal::Layout& l = internal::TableOf(*d)->layout();
  const std::string eviction = EvictionName(TableEviction(*d));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("{\"path\":%s,\"created\":%s,\"capacity\":%" PRIu64 ",\"bucket_count\":%" PRIu64
                ",\"slot_count\":%" PRIu64 ",\"max_key_size\":%u,\"max_value_size\":%u"
                ",\"file_size\":%" PRIu64 ",\"eviction\":\"%s\"}\n",
                JsonString(d->path()).c_str(), created ? "true" : "false", l.capacity,
                l.bucket_count, l.bucket_count * internal::kSlotsPerBucket, l.max_key_size,
                l.max_value_size, l.file_size, eviction.c_str());
  } else {
    std::printf("%s %s: capacity %" PRIu64 " (%" PRIu64 " buckets, %" PRIu64
                " slots), max key %u B, max value %u B, file %s, eviction %s\n",
                created ? "created" : "exists, same sizes, left as is:", d->path().c_str(),
                l.capacity, l.bucket_count,
                l.bucket_count * internal::kSlotsPerBucket, l.max_key_size, l.max_value_size,
                HumanBytes(l.file_size).c_str(), eviction.c_str());
  }
  return kExitOk;
}

int RunPut(const Invocation& inv) {
  const std::string value_file = absl::GetFlag(FLAGS_value_file);
  if (!value_file.empty() && inv.args.size() != 2) {
    return UsageFail(inv, "VALUE and --value_file exclude each other");
  }
  if (value_file.empty() && inv.args.size() != 3) {
    return UsageFail(inv, "expected TABLE KEY VALUE, or --value_file");
  }
  SetOptions set;
  std::string error;
  if (!TtlFromFlag(&set.ttl, &error)) return UsageFail(inv, error);
  set.if_absent = absl::GetFlag(FLAGS_if_absent);
  set.if_present = absl::GetFlag(FLAGS_if_present);
  if (set.if_absent && set.if_present) {
    return UsageFail(inv, "--if_absent and --if_present exclude each other");
  }
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  std::string value;
  if (value_file.empty()) {
    value = inv.args[2];
  } else {
    // One byte more than the table takes tells "too big" without reading the rest,
    // which may have no end (/dev/zero, a pipe).
    const uint32_t max_value = internal::TableOf(*d)->layout().max_value_size;
    if (!ReadAtMost(value_file, size_t{max_value} + 1, &value, &error)) return Fail(inv, error);
    if (value.size() > max_value) {
      return Fail(inv, "key " + Quoted(key) + ": the value " +
                           (value_file == "-" ? "on stdin" : "in " + value_file) +
                           " is too big: over the table's maximum of " +
                           std::to_string(max_value) + " bytes");
    }
  }
  absl::StatusOr<uint64_t> version = d->Set(key, value, set);
  if (!version.ok()) {
    // A condition that does not hold is a negative answer, as get's absent key.
    const ErrorCode code = ErrorCodeOf(version.status());
    if (set.if_absent && code == ErrorCode::kExists) {
      return Negative(inv, "key " + Quoted(key) + " exists (--if_absent): not written");
    }
    if (set.if_present && code == ErrorCode::kNotFound) {
      return Negative(inv, "key " + Quoted(key) + " not found (--if_present): not written");
    }
    return Fail(inv, "key " + Quoted(key) + ": " + Message(version.status()));
  }
  return WrittenVersion(key, *version);
}

int RunGet(const Invocation& inv) {
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const uint32_t max_key = internal::TableOf(*d)->layout().max_key_size;
  if (key.size() > max_key) {
    return Fail(inv, "key of " + std::to_string(key.size()) +
                         " bytes is over the table's maximum of " + std::to_string(max_key));
  }
  uint64_t version = 0;
  absl::StatusOr<std::string> value = d->Get(key, &version);
  if (!value.ok()) {
    if (ErrorCodeOf(value.status()) == ErrorCode::kNotFound) {
      return Negative(inv, "key " + Quoted(key) + " not found");
    }
    return Fail(inv, "key " + Quoted(key) + ": " + Message(value.status()));
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::string out = "{";
    AppendBytesMember("key", key, &out);
    out += ',';
    AppendBytesMember("value", *value, &out);
    out += ",\"version\":" + std::to_string(version) + "}\n";
    std::fputs(out.c_str(), stdout);
  } else {
    bool ok = WriteAll(stdout, *value);
    if (isatty(STDOUT_FILENO) == 1 && (value->empty() || value->back() != '\n')) {
      ok = ok && WriteAll(stdout, "\n");
    }
    if (!ok || std::fflush(stdout) != 0) {
      return Fail(inv, std::string("writing to stdout: ") + std::strerror(errno));
    }
  }
  return kExitOk;
}

int RunDel(const Invocation& inv) {
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const absl::Status s = d->Erase(key);
  if (s.ok()) return kExitOk;
  if (ErrorCodeOf(s) == ErrorCode::kNotFound) {
    return Negative(inv, "key " + Quoted(key) + " not found");
  }
  return Fail(inv, "key " + Quoted(key) + ": " + Message(s));
}

int RunLs(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const std::string prefix = absl::GetFlag(FLAGS_prefix);
  const bool values = absl::GetFlag(FLAGS_values);
  const bool json = absl::GetFlag(FLAGS_json);
  const uint64_t limit = absl::GetFlag(FLAGS_limit);
  uint64_t listed = 0;
  bool write_ok = WriteAll(stdout, json ? "[" : "");
  std::string line;
  const uint64_t skipped = d->ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
    if (key.substr(0, prefix.size()) != prefix) return true;
    line.clear();
    if (json) {
      if (listed > 0) line += ",";
      line += "\n{";
      AppendBytesMember("key", key, &line);
      if (values) {
        line += ',';
        AppendBytesMember("value", value, &line);
      }
      line += ",\"version\":" + std::to_string(version) + "}";
    } else {
      line = Printable(key);
      if (values) line += "\t" + Printable(value);
      line += '\n';
    }
    write_ok = write_ok && WriteAll(stdout, line);
    ++listed;
    return write_ok && (limit == 0 || listed < limit);
  });
  if (json) write_ok = write_ok && WriteAll(stdout, listed > 0 ? "\n]\n" : "]\n");
  if (!write_ok || std::fflush(stdout) != 0) {
    return Fail(inv, std::string("writing to stdout: ") + std::strerror(errno));
  }
  return SkippedCorrupt(inv, skipped);
}

int RunRm(const Invocation& inv) {
  int rc = kExitOk;
  for (const std::string& table : inv.args) {
    const absl::Status s = Dict::Unlink(table);
    if (!s.ok()) rc = Fail(inv, Message(s));
  }
  return rc;
}

}  // namespace shmdict::cli
