// verify [--repair]: scans the whole table (Table::Verify) and reports.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"
#include "tools/cli/progress.h"

namespace shmdict::cli {

int RunVerify(const Invocation& inv) {
  const std::string& table = inv.args[0];
  const bool repair = absl::GetFlag(FLAGS_repair);
  const bool json = absl::GetFlag(FLAGS_json);
  absl::StatusOr<Dict> d = OpenTable(table, /*writable=*/repair);
  if (!d.ok()) {
    const std::string msg = Message(d.status());
    if (ErrorCodeOf(d.status()) == ErrorCode::kBadFile) {
      // A file that fails validation is damage, not a usage error.
      if (json) {
        std::printf("{\"ok\":false,\"error\":%s}\n", JsonString(msg).c_str());
      } else {
        std::printf("%s: NOT A VALID TABLE: %s\n", table.c_str(), msg.c_str());
      }
      return kExitNo;
    }
    return Fail(inv, msg);
  }
  internal::Table* t = internal::TableOf(*d);
  uint64_t repaired = 0;
  // Table::Verify reports no progress: show the time it has taken so far instead.
  ElapsedIndicator indicator("verify " + d->path());
  if (repair) {
    absl::StatusOr<uint64_t> r = t->RepairDeadLocks();
    if (!r.ok()) {
      indicator.Finish();
      return Fail(inv, "repair: " + Message(r.status()));
    }
    repaired = *r;
  }
  const internal::VerifyReport r = t->Verify();
  indicator.Finish();
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
                ",\"expired\":%" PRIu64 ",\"dead_locks\":%" PRIu64 ",\"interrupted_writes\":%" PRIu64
                ",\"orphan_tags\":%" PRIu64 ",\"repaired_buckets\":%" PRIu64
                ",\"damage\":%" PRIu64 ",\"processes_live\":%u,\"processes_dead\":%u"
                ",\"messages\":%s}\n",
                ok ? "true" : "false", JsonString(d->path()).c_str(), r.buckets_checked,
                r.buckets_busy, r.entries, r.expired, r.dead_locks, r.odd_slots,
                r.orphan_tags,
                repaired, r.damage, r.processes_live, r.processes_dead, messages.c_str());
    return ok ? kExitOk : kExitNo;
  }
  std::printf("%s\n", d->path().c_str());
  std::printf("  header: valid (magic, version, checksum, layout, size)\n");
  std::printf("  processes: %u live, %u dead (their entries are free)\n", r.processes_live,
              r.processes_dead);
  std::printf("  buckets: %" PRIu64 " checked, %" PRIu64 " busy (a live writer held them)\n",
              r.buckets_checked, r.buckets_busy);
  std::printf("  entries: %" PRIu64 " (and %" PRIu64 " expired, still in their slots)\n",
              r.entries, r.expired);
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
  return ok ? kExitOk : kExitNo;
}

}  // namespace shmdict::cli
