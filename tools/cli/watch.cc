// watch: prints a key's value, then each new value (Dict::WaitForChange).
#include <time.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"

namespace shmdict::cli {
namespace {

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000u + uint64_t(ts.tv_nsec) / 1000000u;
}

// Prints one observation: the value (or absence) and its version; flushes, so that a
// reader at the other end of a pipe sees it at once.
bool Print(std::string_view key, const absl::StatusOr<std::string>& value, uint64_t version,
           bool json) {
  std::string line;
  if (json) {
    line = "{";
    AppendBytesMember("key", key, &line);
    if (value.ok()) {
      line += ',';
      AppendBytesMember("value", *value, &line);
    } else {
      line += ",\"value\":null";
    }
    line += ",\"version\":" + std::to_string(value.ok() ? version : 0) + "}\n";
  } else {
    line = value.ok() ? Printable(*value) + "\n" : "(absent)\n";
  }
  return WriteAll(stdout, line) && std::fflush(stdout) == 0;
}

}  // namespace

int RunWatch(const Invocation& inv) {
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  const bool json = absl::GetFlag(FLAGS_json);
  const uint64_t count = absl::GetFlag(FLAGS_count);
  const int64_t timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  if (timeout_ms < -1) return UsageFail(inv, "--timeout_ms must be -1 (never) or >= 0");
  // A writable handle lets writers wake us at once; read access alone polls.
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok() && ErrorCodeOf(d.status()) == ErrorCode::kPermission) {
    d = OpenTable(inv.args[0], /*writable=*/false);
  }
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const uint32_t max_key = internal::TableOf(*d)->layout().max_key_size;
  if (key.size() > max_key) {
    return Fail(inv, "key of " + std::to_string(key.size()) +
                         " bytes is over the table's maximum of " + std::to_string(max_key));
  }
  const uint64_t deadline = timeout_ms < 0 ? 0 : MonotonicMs() + uint64_t(timeout_ms);

  uint64_t version = 0;
  absl::StatusOr<std::string> value = d->Get(key, &version);
  if (!value.ok() && ErrorCodeOf(value.status()) != ErrorCode::kNotFound) {
    return Fail(inv, "key " + Quoted(key) + ": " + Message(value.status()));
  }
  if (!value.ok()) version = 0;
  if (!Print(key, value, version, json)) return Fail(inv, "writing to stdout failed");

  uint64_t changes = 0;
  while (count == 0 || changes < count) {
    int64_t wait_ms = -1;
    if (timeout_ms >= 0) {
      const uint64_t now = MonotonicMs();
      wait_ms = now >= deadline ? 0 : int64_t(deadline - now);
    }
    const absl::Status s = d->WaitForChange(key, version, wait_ms);
    if (ErrorCodeOf(s) == ErrorCode::kTimeout) {
      if (changes >= (count == 0 ? 1 : count)) return kExitOk;
      if (count == 0) {
        return Negative(inv, "no change of key " + Quoted(key) + " within " +
                                 std::to_string(timeout_ms) + " ms");
      }
      return Negative(inv, "saw " + std::to_string(changes) + " of " + std::to_string(count) +
                               " changes of key " + Quoted(key) + " within " +
                               std::to_string(timeout_ms) + " ms");
    }
    if (!s.ok()) return Fail(inv, "key " + Quoted(key) + ": " + Message(s));
    uint64_t now_version = 0;
    value = d->Get(key, &now_version);
    if (!value.ok() && ErrorCodeOf(value.status()) != ErrorCode::kNotFound) {
      return Fail(inv, "key " + Quoted(key) + ": " + Message(value.status()));
    }
    if (!value.ok()) now_version = 0;
    // Inserted and erased again before we looked: absent before and after, no change.
    if (now_version == version) continue;
    version = now_version;
    ++changes;
    if (!Print(key, value, version, json)) return Fail(inv, "writing to stdout failed");
  }
  return kExitOk;
}

}  // namespace shmdict::cli
