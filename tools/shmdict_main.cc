// shmdict, the command-line tool.
//
//   shmdict verify [--repair] [--json] TABLE
//
// TABLE is a file path, or a name without '/' for a file in /dev/shm.
// Exit codes: 0 fine; 1 the table has damage (or, without --repair, work left by dead
// writers); 2 bad usage, or the table could not be opened.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "api/shmdict.h"
#include "core/table.h"

ABSL_FLAG(bool, repair, false, "verify: repair what dead writers left, exactly as the "
                               "next writer would");
ABSL_FLAG(bool, json, false, "print the result as JSON");

namespace {

constexpr char kUsage[] =
    "shmdict: inspect and maintain shmdict tables.\n"
    "\n"
    "usage: shmdict COMMAND [flags] TABLE\n"
    "\n"
    "commands:\n"
    "  verify [--repair] [--json] TABLE\n"
    "      Scan the whole table: header and checksum, process table, every bucket and\n"
    "      slot (interrupted writes of dead writers, tags that disagree with keys,\n"
    "      duplicate keys, lengths over the maxima, keys in buckets they do not hash\n"
    "      to). Exit 0 if clean, 1 on damage or (without --repair) on locks held by\n"
    "      dead writers. --repair takes those locks over and repairs their buckets,\n"
    "      exactly as the next writer would; it never touches anything else.\n"
    "\n"
    "TABLE: a file path, or a name without '/' for a file in /dev/shm.\n";

constexpr char kVerifyUsage[] =
    "usage: shmdict verify [--repair] [--json] TABLE\n"
    "\n"
    "Scans TABLE and reports what it finds. Exit codes: 0 clean; 1 damage, or locks\n"
    "held by dead writers left unrepaired; 2 bad usage or TABLE cannot be opened.\n"
    "  --repair   take over locks held by dead writers and repair their buckets, as the\n"
    "             next writer would (needs write access); never touches damage\n"
    "  --json     one JSON object on stdout\n";

int UsageError(const std::string& message, const char* usage) {
  std::fprintf(stderr, "shmdict: %s\n\n%s", message.c_str(), usage);
  return 2;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

int Verify(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("verify takes one TABLE", kVerifyUsage);
  const bool repair = absl::GetFlag(FLAGS_repair);
  const bool json = absl::GetFlag(FLAGS_json);
  shmdict::OpenOptions o;
  o.read_only = !repair;
  absl::StatusOr<shmdict::Dict> d = shmdict::Dict::Open(args[0], o);
  if (!d.ok()) {
    const std::string msg(d.status().message());
    if (shmdict::ErrorCodeOf(d.status()) == shmdict::ErrorCode::kBadFile) {
      // A file that fails validation is damage, not a usage error.
      if (json) {
        std::printf("{\"ok\":false,\"error\":%s}\n", JsonString(msg).c_str());
      } else {
        std::printf("%s: NOT A VALID TABLE: %s\n", args[0].c_str(), msg.c_str());
      }
      return 1;
    }
    std::fprintf(stderr, "shmdict: %s\n", msg.c_str());
    return 2;
  }
  shmdict::internal::Table* t = d->table_for_internal_use();
  uint64_t repaired = 0;
  if (repair) {
    absl::StatusOr<uint64_t> r = t->RepairDeadLocks();
    if (!r.ok()) {
      std::fprintf(stderr, "shmdict: repair: %s\n", std::string(r.status().message()).c_str());
      return 2;
    }
    repaired = *r;
  }
  const shmdict::internal::VerifyReport r = t->Verify();
  const bool ok = r.clean();
  if (json) {
    std::string messages = "[";
    for (size_t i = 0; i < r.messages.size(); ++i) {
      if (i > 0) messages += ",";
      messages += JsonString(r.messages[i]);
    }
    messages += "]";
    std::printf("{\"ok\":%s,\"path\":%s,\"buckets_checked\":%" PRIu64
                ",\"buckets_busy\":%" PRIu64 ",\"entries\":%" PRIu64
                ",\"dead_locks\":%" PRIu64 ",\"interrupted_writes\":%" PRIu64
                ",\"orphan_tags\":%" PRIu64 ",\"repaired_buckets\":%" PRIu64
                ",\"damage\":%" PRIu64 ",\"processes_live\":%u,\"processes_dead\":%u"
                ",\"messages\":%s}\n",
                ok ? "true" : "false", JsonString(d->path()).c_str(), r.buckets_checked,
                r.buckets_busy, r.entries, r.dead_locks, r.odd_slots, r.orphan_tags,
                repaired, r.damage, r.processes_live, r.processes_dead, messages.c_str());
    return ok ? 0 : 1;
  }
  std::printf("%s\n", d->path().c_str());
  std::printf("  header: valid (magic, version, checksum, layout, size)\n");
  std::printf("  processes: %u live, %u dead (their entries are free)\n", r.processes_live,
              r.processes_dead);
  std::printf("  buckets: %" PRIu64 " checked, %" PRIu64 " busy (a live writer held them)\n",
              r.buckets_checked, r.buckets_busy);
  std::printf("  entries: %" PRIu64 "\n", r.entries);
  if (repair) std::printf("  repaired: %" PRIu64 " bucket(s) left by dead writers\n", repaired);
  if (r.dead_locks > 0) {
    std::printf("  left by dead writers: %" PRIu64 " lock(s), %" PRIu64
                " interrupted write(s), %" PRIu64
                " orphan tag(s); the next writer of those buckets repairs them (or run "
                "verify --repair)\n",
                r.dead_locks, r.odd_slots, r.orphan_tags);
  }
  std::printf("  damage: %" PRIu64 "\n", r.damage);
  for (const std::string& m : r.messages) std::printf("    %s\n", m.c_str());
  std::printf("%s\n", ok ? "OK" : r.damage > 0 ? "DAMAGED" : "NEEDS REPAIR");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const char* usage = command == "verify" ? kVerifyUsage : nullptr;
  if (usage == nullptr) return UsageError("unknown command '" + command + "'", kUsage);
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(usage, stdout);
      return 0;
    }
  }
  // Parse the flags after the command.
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) rest.push_back(argv[i]);
  std::vector<char*> positional = absl::ParseCommandLine(int(rest.size()), rest.data());
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return Verify(args);
}
