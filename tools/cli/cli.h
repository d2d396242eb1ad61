// The shmdict command-line tool: `shmdict COMMAND [flags] ARGS...`. docs/cli.md is
// its manual; `shmdict help` and `shmdict COMMAND --help` print the same in brief.
#ifndef SHMDICT_TOOLS_CLI_CLI_H_
#define SHMDICT_TOOLS_CLI_CLI_H_

namespace shmdict::cli {

// Runs the tool on main's arguments; returns the exit code (command.h lists them).
int Main(int argc, char** argv);

}  // namespace shmdict::cli

#endif  // SHMDICT_TOOLS_CLI_CLI_H_
