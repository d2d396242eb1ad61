// ttl, touch, clear and sweep: the expiry of entries, and erasing them wholesale.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"

namespace shmdict::cli {
namespace {

// Seconds with the engine's millisecond resolution: "3599.998".
std::string Seconds(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
  return buf;
}

}  // namespace

int RunTtl(const Invocation& inv) {
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const uint32_t max_key = internal::TableOf(*d)->layout().max_key_size;
  if (key.size() > max_key) {  // as get: a usage error, not an absent key
    return Fail(inv, "key of " + std::to_string(key.size()) +
                         " bytes is over the table's maximum of " + std::to_string(max_key));
  }
  absl::StatusOr<absl::Duration> ttl = d->Ttl(key);
  if (!ttl.ok()) {
    if (ErrorCodeOf(ttl.status()) == ErrorCode::kNotFound) {
      return Negative(inv, "key " + Quoted(key) + " not found");
    }
    return Fail(inv, "key " + Quoted(key) + ": " + Message(ttl.status()));
  }
  const bool never = *ttl == absl::InfiniteDuration();
  std::string out;
  if (absl::GetFlag(FLAGS_json)) {
    out = "{";
    AppendBytesMember("key", key, &out);
    out += ",\"ttl\":" + (never ? std::string("null") : Seconds(*ttl)) + "}\n";
  } else {
    out = (never ? std::string("never") : Seconds(*ttl)) + "\n";
  }
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int RunTouch(const Invocation& inv) {
  absl::Duration ttl;
  std::string error;
  if (!TtlFromFlag(&ttl, &error)) return UsageFail(inv, error);
  std::string key;
  if (!KeyArgument(inv, 1, &key)) return kExitError;
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  absl::StatusOr<uint64_t> version = d->Touch(key, ttl);
  if (!version.ok()) {
    if (ErrorCodeOf(version.status()) == ErrorCode::kNotFound) {
      return Negative(inv, "key " + Quoted(key) + " not found");
    }
    return Fail(inv, "key " + Quoted(key) + ": " + Message(version.status()));
  }
  return WrittenVersion(key, *version);
}

int RunClear(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const absl::Status s = d->Clear();
  if (!s.ok()) return Fail(inv, Message(s));
  return kExitOk;
}

int RunSweep(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/true);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  absl::StatusOr<uint64_t> erased = d->Sweep();
  if (!erased.ok()) return Fail(inv, Message(erased.status()));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("{\"path\":%s,\"erased\":%" PRIu64 "}\n", JsonString(d->path()).c_str(),
                *erased);
  } else {
    std::printf("erased %" PRIu64 " expired entr%s from %s\n", *erased,
                *erased == 1 ? "y" : "ies", d->path().c_str());
  }
  return kExitOk;
}

}  // namespace shmdict::cli
