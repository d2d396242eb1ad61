// Dispatch and help of the shmdict tool.
#include "tools/cli/cli.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace shmdict::cli {
namespace {

constexpr FlagDoc kJson = {"json", "print JSON on stdout"};
// Every command that opens a table accepts it (rm only checks the magic number).
constexpr FlagDoc kAllowGroup = {"allow_group",
                                 "open a table shared by a group (group-writable, or\n"
                                 "another user's file of one of your groups)"};

constexpr char kTableNote[] =
    "TABLE: a file path, or a name without '/' for a file in /dev/shm.\n";

constexpr char kExitCodes[] =
    "Exit codes: 0 success; 1 a negative answer (key absent or expired, a put's\n"
    "--if_absent/--if_present condition false, watch timed out, verify found damage);\n"
    "2 bad usage or an error (table missing or not a shmdict file, permission, write\n"
    "refused: table full or key/value too big, I/O).\n";

constexpr FlagDoc kEvictionFlag = {
    "eviction", "none: a write that finds no room fails (table full); lrs: it evicts\n"
                "the least recently stored entry of the key's two buckets (a cache)"};

std::string GeneralUsage() {
  std::string s =
      "shmdict: create, read, watch and maintain shmdict tables from the shell.\n"
      "\n"
      "usage: shmdict COMMAND [flags] ARGS...\n"
      "\n"
      "commands:\n";
  for (const Command& c : Commands()) {
    std::string name = c.name;
    name.resize(8, ' ');
    s += "  " + name + c.summary + "\n";
  }
  s += "  help    [COMMAND]: this text, or a command's flags and details\n";
  s += "\n";
  s += kTableNote;
  s += kExitCodes;
  s += "Flags: --name=value or --name value; --flag/--noflag for booleans; '--' ends\n"
       "flags. Run 'shmdict COMMAND --help' for a command's flags; docs/cli.md has more.\n";
  return s;
}

std::string CommandHelp(const Command& c) {
  std::string s = "usage: shmdict " + std::string(c.synopsis) + "\n\n" + c.description;
  if (!c.flags.empty()) s += "\nflags:\n" + FlagsHelp(c.flags);
  s += "\n";
  s += kTableNote;
  s += kExitCodes;
  return s;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

int Help(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(GeneralUsage().c_str(), stdout);
    return kExitOk;
  }
  const Command* c = args.size() == 1 ? FindCommand(args[0]) : nullptr;
  if (c == nullptr) {
    std::fprintf(stderr, "shmdict: help: %s (see 'shmdict help')\n",
                 args.size() == 1 ? ("unknown command '" + args[0] + "'").c_str()
                                  : "takes at most one COMMAND");
    return kExitError;
  }
  std::fputs(CommandHelp(*c).c_str(), stdout);
  return kExitOk;
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* commands = new std::vector<Command>{
      {"create", "create --capacity N --max_key_size B --max_value_size B [flags] TABLE",
       "TABLE", "make a table of a fixed size",
       "Creates TABLE, sized to hold --capacity keys (at 80% load) of up to\n"
       "--max_key_size bytes, with values of up to --max_value_size bytes. The whole\n"
       "file is reserved at once: a full /dev/shm is an error now, never later. If TABLE\n"
       "exists with the same sizes it is left as it is (exit 0), unless --exclusive; with\n"
       "other sizes, or another --eviction policy when one is given, it is an error.\n",
       {{"capacity", "keys the table must hold (required)"},
        {"max_key_size", "largest key, in bytes (required)"},
        {"max_value_size", "largest value, in bytes (required)"},
        {"mode", "file mode, octal; the owner needs rw; never world-writable"},
        {"allow_group", "allow a group-writable --mode (a table shared by a group), and\n"
                        "open an existing TABLE shared by a group"},
        {"exclusive", "fail if TABLE exists"},
        kEvictionFlag,
        {"json", "print {\"path\":...,\"created\":true|false,...} on stdout"}},
       1, 1, RunCreate},
      {"put",
       "put [--ttl SECONDS] [--if_absent | --if_present] [--value_file FILE]\n"
       "                   [--key_b64] [--json] [--allow_group] TABLE KEY [VALUE]",
       "TABLE KEY VALUE", "set KEY to VALUE (or to a file's or stdin's bytes)",
       "Sets KEY to VALUE, inserting it if absent. With --value_file the value is the\n"
       "file's bytes ('-': stdin), for binary values; VALUE is then not given. Reads\n"
       "at most one byte more than the table's maximum value size: a longer input is\n"
       "an error. With --ttl the entry expires SECONDS from now (then reads as absent\n"
       "everywhere); without it, it never expires (an earlier expiry is dropped).\n"
       "--if_absent writes only if KEY is absent (an expired key is absent),\n"
       "--if_present only if it is present: otherwise nothing is written, exit 1.\n"
       "Prints nothing; --json prints {\"key\":...,\"version\":N} with the new version.\n",
       {{"value_file", "read the value from FILE ('-': stdin) instead of VALUE"},
        {"ttl", "expire SECONDS from now: a decimal number such as 30 or 0.25, more\n"
                "than 0, rounded up to a millisecond (empty: never expires)"},
        {"if_absent", "write only if KEY is absent or expired (else exit 1)"},
        {"if_present", "write only if KEY is present and unexpired (else exit 1)"},
        {"key_b64", "KEY is given in base64 (for keys with NUL or other bytes)"},
        kJson, kAllowGroup},
       2, 3, RunPut},
      {"get", "get [--json] [--key_b64] [--allow_group] TABLE KEY", "TABLE KEY",
       "print KEY's value",
       "Prints KEY's value byte for byte. Nothing is added, except a newline when stdout\n"
       "is a terminal and the value does not end with one. Exit 1 if KEY is absent.\n",
       {{"json", "print {\"key\":...,\"value\":...,\"version\":N}; bytes that are not\n"
                 "text come as \"key_b64\"/\"value_b64\" (base64)"},
        {"key_b64", "KEY is given in base64"},
        kAllowGroup},
       2, 2, RunGet},
      {"del", "del [--key_b64] [--allow_group] TABLE KEY", "TABLE KEY", "remove KEY",
       "Removes KEY. Exit 1 if it is absent.\n",
       {{"key_b64", "KEY is given in base64"}, kAllowGroup},
       2, 2, RunDel},
      {"ttl", "ttl [--json] [--key_b64] [--allow_group] TABLE KEY", "TABLE KEY",
       "print the seconds KEY has left before it expires",
       "Prints the time KEY has left before it expires, in seconds with millisecond\n"
       "resolution (\"3599.998\"), or \"never\". Exit 1 if KEY is absent or expired.\n"
       "Needs read access only.\n",
       {{"json", "print {\"key\":...,\"ttl\":SECONDS}, \"ttl\":null for never"},
        {"key_b64", "KEY is given in base64"},
        kAllowGroup},
       2, 2, RunTtl},
      {"touch", "touch [--ttl SECONDS] [--json] [--key_b64] [--allow_group] TABLE KEY",
       "TABLE KEY", "give KEY a new expiry, keeping its value",
       "Gives KEY a new expiry, SECONDS from now with --ttl, or none (it never\n"
       "expires) without it; the value stays, the version is bumped. Exit 1 if KEY is\n"
       "absent or expired. Prints nothing; --json prints {\"key\":...,\"version\":N}.\n",
       {{"ttl", "expire SECONDS from now (as put --ttl); empty: never expires"},
        {"key_b64", "KEY is given in base64"},
        kJson, kAllowGroup},
       2, 2, RunTouch},
      {"ls", "ls [--prefix P] [--values] [--limit N] [--json] [--allow_group] TABLE", "TABLE",
       "list keys (and values)",
       "Lists the keys, one per line (with --values: key, tab, value), in table order,\n"
       "which is no order at all (pipe to sort). Bytes that are not printable text are\n"
       "escaped (\\xHH, \\t, \\n, \\r; a backslash is doubled), so every entry is one line;\n"
       "--json gives the exact bytes. Weakly consistent while writers run: an entry\n"
       "present throughout is listed once, one added or removed meanwhile may not be.\n",
       {{"prefix", "only keys that start with P"},
        {"values", "print the values too"},
        {"limit", "stop after N entries (0: all)"},
        {"json", "print one JSON array of {\"key\":...,\"version\":N} objects (with\n"
                 "\"value\" under --values; \"key_b64\"/\"value_b64\" for non-text bytes)"},
        kAllowGroup},
       1, 1, RunLs},
      {"stats", "stats [--json] [--allow_group] TABLE", "TABLE",
       "layout, load, bucket fill, eviction, expiry, processes, recoveries",
       "Shows the layout (capacity, buckets, slots, maximum key and value sizes, file\n"
       "size), the number of entries and the load factor (entries / slots), how full\n"
       "the buckets are (the number of buckets with 0, 1, ... 16 occupied slots), the\n"
       "eviction policy and the evictions so far, the expired entries still in their\n"
       "slots and those erased so far, the process table (every process that has\n"
       "written to the table: pid, incarnation, when it registered, live or dead) and\n"
       "the number of recoveries from writers that died holding a lock. Needs read\n"
       "access only.\n",
       {kJson, kAllowGroup},
       1, 1, RunStats},
      {"watch",
       "watch [--count N] [--timeout_ms T] [--json] [--key_b64] [--allow_group] TABLE KEY",
       "TABLE KEY", "print KEY's value, then each new value",
       "Prints KEY's current value, then each new value as it changes, one per line,\n"
       "escaped as ls escapes them; \"(absent)\" when the key is absent or erased.\n"
       "Writes in quick succession may show as one change: watch prints the value it\n"
       "finds when it wakes. Stops after --count changes or when --timeout_ms has\n"
       "passed; exit 1 if the time ran out first (without --count: before any change).\n"
       "With write access to TABLE, writers wake it at once; with read access only, it\n"
       "checks every millisecond.\n",
       {{"count", "stop after N changes (0: never)"},
        {"timeout_ms", "stop after T milliseconds in all (-1: never)"},
        {"json", "one object per line: {\"key\":...,\"value\":...,\"version\":N},\n"
                 "\"value\":null and \"version\":0 when absent"},
        {"key_b64", "KEY is given in base64"},
        kAllowGroup},
       2, 2, RunWatch},
      {"dump", "dump [--output FILE] [--allow_group] TABLE", "TABLE",
       "write every entry as JSON lines",
       "Writes every entry, one JSON object per line:\n"
       "  {\"key\":\"user:1\",\"value\":\"Ada\",\"version\":3}\n"
       "A key or value that is not text (NUL or other control bytes, invalid UTF-8)\n"
       "comes as \"key_b64\"/\"value_b64\", standard base64. An entry that expires has\n"
       "\"expires_unix_ms\": its absolute expiry, in milliseconds since the Unix epoch;\n"
       "expired entries are left out. 'shmdict load' reads it back.\n"
       "Weakly consistent while writers run (as ls). Shows a progress bar on stderr\n"
       "when stderr is a terminal. --output FILE writes a new file (mode 0600) beside\n"
       "FILE and renames it over FILE when complete: FILE is never half a dump, and a\n"
       "symbolic link there is replaced, not followed.\n",
       {{"output", "write to FILE instead of stdout"}, kAllowGroup},
       1, 1, RunDump},
      {"load",
       "load [--input FILE] [--create [--capacity N] [--max_key_size B]\n"
       "                    [--max_value_size B] [--mode M] [--exclusive]\n"
       "                    [--eviction none|lrs]]\n"
       "                    [--allow_group] [--json] TABLE",
       "TABLE", "put every entry of a dump",
       "Reads JSON lines as dump writes them and puts each entry, replacing existing\n"
       "values. Versions in the input are ignored: the table assigns its own. Blank lines\n"
       "are skipped; a malformed line, a key or value too big or a full table stops the\n"
       "load, naming the line (the entries before it stay loaded). With --create a\n"
       "missing TABLE is created; sizes not given come from the input (capacity: the\n"
       "number of entries; the largest key and value). An entry with \"expires_unix_ms\"\n"
       "keeps that absolute expiry (the time left is computed at its put); one whose\n"
       "expiry has passed is skipped. Prints how many entries it loaded and how many it\n"
       "skipped as expired. Shows a progress bar on stderr when stderr is a terminal.\n",
       {{"input", "read from FILE instead of stdin"},
        {"create", "create TABLE if it does not exist"},
        {"capacity", "with --create: keys the table must hold (0: from the input)"},
        {"max_key_size", "with --create: largest key (0: from the input)"},
        {"max_value_size", "with --create: largest value (0: from the input)"},
        {"mode", "with --create: file mode, octal"},
        {"allow_group", "open a table shared by a group (as other commands), and with\n"
                        "--create allow a group-writable --mode"},
        {"exclusive", "with --create: fail if TABLE exists"},
        {"eviction", "with --create: none or lrs (as create)"},
        {"json", "print {\"path\":...,\"loaded\":N,\"skipped_expired\":N,\n"
                 "\"created\":true|false}"}},
       1, 1, RunLoad},
      {"verify", "verify [--repair] [--json] [--allow_group] TABLE", "TABLE",
       "check the whole table; repair what dead writers left",
       "Scans the whole table: header and checksum, process table, every bucket and\n"
       "slot (interrupted writes of dead writers, tags that disagree with keys,\n"
       "duplicate keys, lengths over the maxima, keys in buckets they do not hash\n"
       "to). Exit 0 if clean, 1 on damage or (without --repair) on locks held by\n"
       "dead writers; a file that is not a valid table is damage too (exit 1).\n"
       "--repair takes those locks over and repairs their buckets, exactly as the\n"
       "next writer would; it never touches anything else.\n",
       {{"repair", "take over locks held by dead writers and repair their buckets, as\n"
                   "the next writer would (needs write access); never touches damage"},
        {"json", "one JSON object on stdout"},
        kAllowGroup},
       1, 1, RunVerify},
      {"sweep", "sweep [--json] [--allow_group] TABLE", "TABLE", "erase the expired entries",
       "Erases every expired entry and prints how many. Expired entries already read as\n"
       "absent everywhere and writers reuse their slots; a sweep makes the entry counts\n"
       "of stats exact (and its \"expired\" 0).\n",
       {{"json", "print {\"path\":...,\"erased\":N}"}, kAllowGroup},
       1, 1, RunSweep},
      {"clear", "clear [--allow_group] TABLE", "TABLE", "erase every entry",
       "Erases every entry, one bucket at a time; asks nothing (as rm). Versions go on\n"
       "increasing: a key written again gets a version above any it had. Not atomic as\n"
       "a whole: a write made meanwhile to a bucket already cleared stays. Processes\n"
       "watching keys are woken. Prints nothing.\n",
       {kAllowGroup},
       1, 1, RunClear},
      {"rm", "rm TABLE...", "TABLE...", "remove tables",
       "Removes each TABLE after checking that it is a shmdict file (anything else is\n"
       "left in place). Processes that have it open keep using it until they close it.\n",
       {},
       1, SIZE_MAX, RunRm},
  };
  return *commands;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(GeneralUsage());
  if (argc < 2) {
    std::fputs(GeneralUsage().c_str(), stderr);
    return kExitError;
  }
  const std::string name = argv[1];
  std::vector<std::string> words(argv + 2, argv + argc);
  if (name == "help" || name == "--help" || name == "-h") return Help(words);
  const Command* c = FindCommand(name);
  if (c == nullptr) {
    if (name.compare(0, 1, "-") == 0) {
      std::fprintf(stderr, "shmdict: a COMMAND comes first, then its flags (see 'shmdict "
                           "help')\n");
    } else {
      std::fprintf(stderr, "shmdict: unknown command '%s' (see 'shmdict help')\n",
                   name.c_str());
    }
    return kExitError;
  }
  Invocation inv;
  inv.command = name;
  ParsedArguments parsed;
  std::string error;
  if (!ParseArguments(words, c->flags, &parsed, &error)) return UsageFail(inv, error);
  if (parsed.help) {
    std::fputs(CommandHelp(*c).c_str(), stdout);
    return kExitOk;
  }
  const size_t n = parsed.positional.size();
  if (n < c->min_args || n > c->max_args) {
    return UsageFail(inv, "expected " + std::string(c->arguments) + ", got " +
                              std::to_string(n) + " argument" + (n == 1 ? "" : "s"));
  }
  inv.args = std::move(parsed.positional);
  return c->run(inv);
}

}  // namespace shmdict::cli
