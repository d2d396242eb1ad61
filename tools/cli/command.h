// What the subcommands of the shmdict tool share: their description (for dispatch and
// help), the exit codes, error reporting, and opening tables.
//
// Exit codes (docs/cli.md):
//   0  success
//   1  a negative answer: the key is absent or expired (get, del, ttl, touch), a put's
//      --if_absent or --if_present condition is false (nothing written), a watch timed
//      out before the changes it waited for, verify found damage or unrepaired work
//      of dead writers
//   2  anything else: bad usage, a table that cannot be opened or created (missing,
//      not a shmdict file, permission), a write the table refused (full, too big),
//      an input or output error
//
// Every error is one line on stderr: "shmdict: COMMAND: what went wrong".
#ifndef SHMDICT_TOOLS_CLI_COMMAND_H_
#define SHMDICT_TOOLS_CLI_COMMAND_H_

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/shmdict.h"
#include "tools/cli/flags.h"

namespace shmdict::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNo = 1;
inline constexpr int kExitError = 2;

// One subcommand's invocation: its name and positional arguments (flags are parsed
// into the Abseil flags by then).
struct Invocation {
  std::string command;
  std::vector<std::string> args;
};

struct Command {
  const char* name;
  const char* synopsis;     // "get [--json] [--key_b64] TABLE KEY"
  const char* arguments;    // the positional arguments: "TABLE KEY"
  const char* summary;      // one line for `shmdict help`
  const char* description;  // the body of `shmdict COMMAND --help`
  std::vector<FlagDoc> flags;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: no limit
  int (*run)(const Invocation&);
};

// The subcommands, in the order `shmdict help` lists them.
const std::vector<Command>& Commands();

// The subcommands' entry points (each in its own file).
int RunCreate(const Invocation& inv);
int RunPut(const Invocation& inv);
int RunGet(const Invocation& inv);
int RunDel(const Invocation& inv);
int RunLs(const Invocation& inv);
int RunRm(const Invocation& inv);
int RunStats(const Invocation& inv);
int RunWatch(const Invocation& inv);
int RunDump(const Invocation& inv);
int RunLoad(const Invocation& inv);
int RunVerify(const Invocation& inv);
int RunTtl(const Invocation& inv);
int RunTouch(const Invocation& inv);
int RunClear(const Invocation& inv);
int RunSweep(const Invocation& inv);

// Prints "shmdict: COMMAND: message" on stderr; returns kExitError.
int Fail(const Invocation& inv, std::string_view message);
// The same, for a negative answer; returns kExitNo.
int Negative(const Invocation& inv, std::string_view message);
// A write's answer: with --json, {"key":...,"version":N} on stdout; nothing otherwise.
// Returns kExitOk.
int WrittenVersion(std::string_view key, uint64_t version);
// The same, for bad usage, pointing at COMMAND --help; returns kExitError.
int UsageFail(const Invocation& inv, std::string_view message);

// After a scan (ls, dump) that skipped `skipped` corrupt slots: kExitOk if none, else
// says how many on stderr and returns kExitNo (the output lacks them).
int SkippedCorrupt(const Invocation& inv, uint64_t skipped);

// The message of a status, or its code's description when it has none.
std::string Message(const absl::Status& status);

// Opens TABLE for reading only (needs read permission only, registers nothing in the
// table) or for writing; a table shared by a group only with --allow_group (false for
// the commands that do not accept it).
absl::StatusOr<Dict> OpenTable(const std::string& table, bool writable);

// Options to create a table from --capacity, --max_key_size, --max_value_size, --mode,
// --allow_group, --exclusive and --eviction (create set; sizes not given are 0; no
// --eviction is kNone). Returns false with *error set for a --mode that is not an
// octal number or has bits outside 0777, or an --eviction other than none or lrs.
bool CreateOptionsFromFlags(OpenOptions* o, std::string* error);

// After opening an existing table with CreateOptionsFromFlags's options: false with
// *error set when --eviction was given and names another policy than the table's.
// (Dict::Open refuses a table without lrs when lrs is asked for, but takes kNone as
// "any policy", which is right only when --eviction was not given.)
bool EvictionAsGiven(const Dict& d, std::string* error);

// "none" or "lrs" (or "unknown (N)", which a table that opened cannot have).
std::string EvictionName(Eviction e);
// The table's eviction policy (from its header: no scan, unlike GetStats).
Eviction TableEviction(const Dict& d);

// --ttl as a duration: a decimal number of seconds ("30", "0.25", ".5"), more than 0,
// rounded up to a millisecond, at most 2^42 ms; InfiniteDuration when --ttl was not
// given (or given empty). Returns false with *error set for anything else.
bool TtlFromFlag(absl::Duration* ttl, std::string* error);

// Positional argument i as a key: decoded from base64 with --key_b64. Returns false
// after printing the error.
bool KeyArgument(const Invocation& inv, size_t i, std::string* key);

// Writes all of `bytes` to `f`. Returns false on a write error (errno set).
bool WriteAll(FILE* f, std::string_view bytes);

// "4.0 KiB", "1.5 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace shmdict::cli

#endif  // SHMDICT_TOOLS_CLI_COMMAND_H_
