// Helpers shared by the subcommands (command.h).
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "api/dict_access.h"
#include "core/clock.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"

namespace shmdict::cli {
namespace {

void Print(const Invocation& inv, std::string_view message, std::string_view suffix) {
  std::string line = "shmdict: " + inv.command + ": ";
  line.append(message);
  line.append(suffix);
  line += '\n';
  std::fputs(line.c_str(), stderr);
}

// A file mode as people write it, in octal with a leading 0: "0600", "01777".
std::string OctalMode(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0%o", mode);
  return buf;
}

}  // namespace

int Fail(const Invocation& inv, std::string_view message) {
  Print(inv, message, "");
  return kExitError;
}

int WrittenVersion(std::string_view key, uint64_t version) {
  if (absl::GetFlag(FLAGS_json)) {
    std::string out = "{";
    AppendBytesMember("key", key, &out);
    out += ",\"version\":" + std::to_string(version) + "}\n";
    std::fputs(out.c_str(), stdout);
  }
  return kExitOk;
}

int Negative(const Invocation& inv, std::string_view message) {
  Print(inv, message, "");
  return kExitNo;
}

int SkippedCorrupt(const Invocation& inv, uint64_t skipped) {
  if (skipped == 0) return kExitOk;
  return Negative(inv, absl::StrCat(skipped, " corrupt slot", skipped == 1 ? "" : "s",
                                    " skipped (the table is damaged; 'shmdict verify' "
                                    "lists them): the output lacks ",
                                    skipped == 1 ? "it" : "them"));
}

int UsageFail(const Invocation& inv, std::string_view message) {
  Print(inv, message, " (see 'shmdict " + inv.command + " --help')");
  return kExitError;
}

std::string Message(const absl::Status& status) {
  if (!status.message().empty()) return std::string(status.message());
  return std::string(ErrorCodeDescription(ErrorCodeOf(status)));
}

absl::StatusOr<Dict> OpenTable(const std::string& table, bool writable) {
  OpenOptions o;
  o.read_only = !writable;
  o.allow_group = absl::GetFlag(FLAGS_allow_group);
  return Dict::Open(table, o);
}

bool CreateOptionsFromFlags(OpenOptions* o, std::string* error) {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  uint32_t m = 0;
  bool ok = !mode.empty() && mode.size() <= 6;
  for (char c : mode) {
    ok = ok && c >= '0' && c <= '7';
    m = m * 8 + uint32_t(c - '0');
  }
  if (!ok) {
    *error = "--mode: '" + mode + "' is not an octal file mode such as 0600";
    return false;
  }
  if ((m & ~0777u) != 0) {
    // Checked here, to name the mode in octal as it was given.
    *error = "--mode: " + OctalMode(m) + " has bits outside 0777 (setuid, setgid, sticky)";
    return false;
  }
  o->create = true;
  o->exclusive = absl::GetFlag(FLAGS_exclusive);
  o->allow_group = absl::GetFlag(FLAGS_allow_group);
  o->capacity = absl::GetFlag(FLAGS_capacity);
  o->max_key_size = absl::GetFlag(FLAGS_max_key_size);
  o->max_value_size = absl::GetFlag(FLAGS_max_value_size);
  o->mode = m;
  const std::string eviction = absl::GetFlag(FLAGS_eviction);
  if (eviction.empty() || eviction == "none") {
    o->eviction = Eviction::kNone;
  } else if (eviction == "lrs") {
    o->eviction = Eviction::kLrs;
  } else {
    *error = "--eviction: '" + eviction + "' is not an eviction policy: wanted none or lrs";
    return false;
  }
  return true;
}

bool EvictionAsGiven(const Dict& d, std::string* error) {
  const std::string given = absl::GetFlag(FLAGS_eviction);
  const std::string actual = EvictionName(TableEviction(d));
  if (given.empty() || given == actual) return true;
  *error = d.path() + " exists with eviction policy " + actual + ", unlike --eviction=" + given;
  return false;
}

std::string EvictionName(Eviction e) {
  switch (e) {
    case Eviction::kNone:
      return "none";
    case Eviction::kLrs:
      return "lrs";
  }
  return "unknown (" + std::to_string(static_cast<uint32_t>(e)) + ")";
}

Eviction TableEviction(const Dict& d) {
  return static_cast<Eviction>(internal::TableOf(d)->eviction());
}

bool TtlFromFlag(absl::Duration* ttl, std::string* error) {
  const std::string text = absl::GetFlag(FLAGS_ttl);
  *ttl = absl::InfiniteDuration();
  if (text.empty()) return true;
  // Exact decimal arithmetic (no binary floating point): whole milliseconds, plus one
  // if any digit beyond the third decimal is nonzero (rounding up, as the engine does).
  uint64_t ms = 0;
  bool digits = false, point = false, over = false, round_up = false;
  int decimals = 0;
  for (char c : text) {
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    digits = true;
    const uint64_t d = uint64_t(c - '0');
    if (!point) {
      // Once over the maximum, stop (so that ms * 10 never overflows).
      over = over || ms > internal::kMaxTtlMs;
      if (!over) ms = ms * 10 + d * 1000;
    } else if (decimals < 3) {
      static constexpr uint64_t kScale[] = {100, 10, 1};
      ms += d * kScale[decimals++];
    } else {
      round_up = round_up || d != 0;
    }
  }
  if (!digits && text[0] == '-') {
    *error = "--ttl: " + text + ": must be more than 0 seconds";
    return false;
  }
  if (!digits) {
    *error = "--ttl: '" + text + "' is not a number of seconds such as 30 or 0.25";
    return false;
  }
  if (round_up) ++ms;
  if (over || ms > internal::kMaxTtlMs) {
    char max[32];
    std::snprintf(max, sizeof(max), "%" PRIu64 ".%03" PRIu64, internal::kMaxTtlMs / 1000,
                  internal::kMaxTtlMs % 1000);
    *error = "--ttl: " + text + " seconds is over the maximum of " + max +
             " (2^42 ms, about 139 years)";
    return false;
  }
  if (ms == 0) {
    *error = "--ttl: must be more than 0 seconds (without --ttl the key never expires)";
    return false;
  }
  *ttl = absl::Milliseconds(int64_t(ms));
  return true;
}

bool KeyArgument(const Invocation& inv, size_t i, std::string* key) {
  if (!absl::GetFlag(FLAGS_key_b64)) {
    *key = inv.args[i];
    return true;
  }
  if (!Base64Decode(inv.args[i], key)) {
    Fail(inv, "--key_b64: " + Quoted(inv.args[i]) + " is not valid base64");
    return false;
  }
  return true;
}

bool WriteAll(FILE* f, std::string_view bytes) {
  return bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = double(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

}  // namespace shmdict::cli
