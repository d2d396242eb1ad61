// stats: layout, load, bucket fill, process table, recoveries.
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "api/dict_access.h"
#include "core/table.h"
#include "tools/cli/codec.h"
#include "tools/cli/command.h"

namespace shmdict::cli {
namespace {

// "2024-05-01T12:34:56Z" (iso) or "2024-05-01 12:34:56 UTC".
std::string UtcTime(uint64_t unix_ns, bool iso) {
  const time_t secs = time_t(unix_ns / 1000000000u);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == nullptr) return "?";
  char buf[64];
  std::strftime(buf, sizeof(buf), iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

int RunStats(const Invocation& inv) {
  absl::StatusOr<Dict> d = OpenTable(inv.args[0], /*writable=*/false);
  if (!d.ok()) return Fail(inv, Message(d.status()));
  const internal::Table* t = internal::TableOf(*d);
  const Stats st = t->GetStats();
  const auto fill = t->BucketFill();
  const std::vector<internal::ProcessInfo> procs = t->Processes();
  uint32_t live = 0;
  for (const internal::ProcessInfo& p : procs) live += p.live ? 1 : 0;
  const uint32_t dead = uint32_t(procs.size()) - live;
  const double load = st.slot_count > 0 ? double(st.count) / double(st.slot_count) : 0.0;

  if (absl::GetFlag(FLAGS_json)) {
    std::string out = "{\"path\":" + JsonString(d->path());
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  ",\"capacity\":%" PRIu64 ",\"bucket_count\":%" PRIu64
                  ",\"slots_per_bucket\":%u,\"slot_count\":%" PRIu64
                  ",\"max_key_size\":%u,\"max_value_size\":%u,\"file_size\":%" PRIu64
                  ",\"count\":%" PRIu64 ",\"load_factor\":%.6f,\"recoveries\":%" PRIu64
                  ",\"processes_live\":%u,\"processes_dead\":%u,\"eviction\":\"%s\""
                  ",\"evictions\":%" PRIu64 ",\"expired\":%" PRIu64
                  ",\"expired_erased\":%" PRIu64,
                  st.capacity, st.bucket_count, internal::kSlotsPerBucket, st.slot_count,
                  st.max_key_size, st.max_value_size, st.file_size, st.count, load,
                  st.recoveries, live, dead, EvictionName(st.eviction).c_str(), st.evictions,
                  st.expired, st.expired_erased);
    out += buf;
    out += ",\"bucket_fill\":[";
    for (size_t k = 0; k < fill.size(); ++k) {
      if (k > 0) out += ',';
      out += std::to_string(fill[k]);
    }
    out += "],\"processes\":[";
    for (size_t i = 0; i < procs.size(); ++i) {
      const internal::ProcessInfo& p = procs[i];
      std::snprintf(buf, sizeof(buf),
                    "%s{\"index\":%u,\"pid\":%u,\"incarnation\":%u,\"claimed_unix_ns\":%" PRIu64
                    ",\"claimed\":\"%s\",\"live\":%s}",
                    i > 0 ? "," : "", p.index, p.pid, p.incarnation, p.claimed_unix_ns,
                    UtcTime(p.claimed_unix_ns, /*iso=*/true).c_str(), p.live ? "true" : "false");
      out += buf;
    }
    out += "]}\n";
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  }

  std::printf("%s\n", d->path().c_str());
  std::printf("  layout: capacity %" PRIu64 ", %" PRIu64 " buckets x %u slots = %" PRIu64
              " slots, max key %u B, max value %u B, file %s (%" PRIu64 " bytes)\n",
              st.capacity, st.bucket_count, internal::kSlotsPerBucket, st.slot_count,
              st.max_key_size, st.max_value_size, HumanBytes(st.file_size).c_str(),
              st.file_size);
  std::printf("  entries: %" PRIu64 ", load factor %.1f%% of the slots (%.1f%% of capacity)\n",
              st.count, 100.0 * load,
              st.capacity > 0 ? 100.0 * double(st.count) / double(st.capacity) : 0.0);
  std::printf("  eviction: %s (%s), %" PRIu64 " eviction%s so far\n",
              EvictionName(st.eviction).c_str(),
              st.eviction == Eviction::kLrs
                  ? "a write with no room evicts the least recently stored entry"
                  : "a write with no room fails: table full",
              st.evictions, st.evictions == 1 ? "" : "s");
  std::printf("  expired: %" PRIu64 " still in their slots (not counted as entries; 'shmdict "
              "sweep' erases them), %" PRIu64 " erased so far\n",
              st.expired, st.expired_erased);
  std::printf("  bucket fill (occupied slots: buckets):\n");
  uint64_t widest = 1;
  for (uint64_t n : fill) widest = n > widest ? n : widest;
  for (size_t k = 0; k < fill.size(); ++k) {
    if (fill[k] == 0) continue;
    const int bar = int((fill[k] * 40 + widest - 1) / widest);
    std::printf("    %2zu: %10" PRIu64 "  %s\n", k, fill[k], std::string(size_t(bar), '#').c_str());
  }
  std::printf("  processes: %u live, %u dead (a dead one's entry is free for reuse)\n", live,
              dead);
  if (!procs.empty()) {
    std::printf("    %5s %10s %11s  %-23s  %s\n", "entry", "pid", "incarnation", "registered",
                "state");
    for (const internal::ProcessInfo& p : procs) {
      std::printf("    %5u %10u %11u  %-23s  %s\n", p.index, p.pid, p.incarnation,
                  UtcTime(p.claimed_unix_ns, /*iso=*/false).c_str(), p.live ? "live" : "dead");
    }
  }
  std::printf("  recoveries: %" PRIu64 " (buckets repaired after writers that died)\n",
              st.recoveries);
  return kExitOk;
}

}  // namespace shmdict::cli
