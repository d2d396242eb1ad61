// The flags of the shmdict tool, and the parser of one subcommand's arguments.
//
// Every flag is an Abseil flag (ABSL_FLAG in flags.cc), read with absl::GetFlag. Each
// subcommand accepts only its own flags; ParseArguments checks that and parses values
// through Abseil's flag reflection (absl::FindCommandLineFlag, ParseFrom), so values
// are parsed exactly as absl::ParseCommandLine would parse them. absl::ParseCommandLine
// itself is not used: it accepts every flag of the binary whatever the subcommand and
// exits with status 1 on a bad flag, where the tool promises status 2 and a one-line
// message.
//
// Syntax: --name=value or --name value; for booleans --name, --noname, --name=true or
// --name=false. Flags and arguments may be mixed; "--" ends the flags (for arguments
// that start with "--"); an argument starting with a single '-' is an argument (so
// `put t k -5` works), except "-h".
#ifndef SHMDICT_TOOLS_CLI_FLAGS_H_
#define SHMDICT_TOOLS_CLI_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, repair);
ABSL_DECLARE_FLAG(uint64_t, capacity);
ABSL_DECLARE_FLAG(uint32_t, max_key_size);
ABSL_DECLARE_FLAG(uint32_t, max_value_size);
ABSL_DECLARE_FLAG(std::string, mode);
ABSL_DECLARE_FLAG(bool, allow_group);
ABSL_DECLARE_FLAG(bool, exclusive);
ABSL_DECLARE_FLAG(std::string, value_file);
ABSL_DECLARE_FLAG(bool, key_b64);
ABSL_DECLARE_FLAG(std::string, prefix);
ABSL_DECLARE_FLAG(bool, values);
ABSL_DECLARE_FLAG(uint64_t, limit);
ABSL_DECLARE_FLAG(uint64_t, count);
ABSL_DECLARE_FLAG(int64_t, timeout_ms);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(std::string, input);
ABSL_DECLARE_FLAG(bool, create);
ABSL_DECLARE_FLAG(std::string, eviction);
ABSL_DECLARE_FLAG(std::string, ttl);
ABSL_DECLARE_FLAG(bool, if_absent);
ABSL_DECLARE_FLAG(bool, if_present);

namespace shmdict::cli {

// A flag a subcommand accepts, with what it means for that subcommand.
struct FlagDoc {
  const char* name;
  const char* help;
};

struct ParsedArguments {
  std::vector<std::string> positional;
  bool help = false;  // --help or -h was given
};

// Parses args (the words after the subcommand's name) against the flags `accepted`.
// Returns false and sets *error (one line, without the "shmdict: CMD: " prefix) for an
// unknown flag, a missing or bad value, or a value given to a boolean flag wrongly.
bool ParseArguments(const std::vector<std::string>& args, const std::vector<FlagDoc>& accepted,
                    ParsedArguments* out, std::string* error);

// "  --name=DEFAULT  help" lines for a subcommand's --help, defaults from Abseil.
std::string FlagsHelp(const std::vector<FlagDoc>& accepted);

}  // namespace shmdict::cli

#endif  // SHMDICT_TOOLS_CLI_FLAGS_H_
