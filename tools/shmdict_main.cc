// shmdict, the command-line tool: create, read, write, list, watch, dump, load,
// verify and remove shmdict tables from the shell.
//
//   shmdict help                        the commands
//   shmdict COMMAND --help              one command's flags
//
// The code is in tools/cli/ (cli.h); docs/cli.md is the manual.
#include "tools/cli/cli.h"

int main(int argc, char** argv) { return shmdict::cli::Main(argc, argv); }
