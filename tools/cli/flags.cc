#include "tools/cli/flags.h"

#include <algorithm>
#include <cstring>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"

// Generic help texts; each subcommand's --help says what a flag means for it.
ABSL_FLAG(bool, json, false, "print JSON on stdout");
ABSL_FLAG(bool, repair, false, "repair what dead writers left");
ABSL_FLAG(uint64_t, capacity, 0, "keys the table must hold");
ABSL_FLAG(uint32_t, max_key_size, 0, "largest key, in bytes");
ABSL_FLAG(uint32_t, max_value_size, 0, "largest value, in bytes");
ABSL_FLAG(std::string, mode, "0600", "file mode of a new table, in octal");
ABSL_FLAG(bool, allow_group, false, "allow group-writable tables");
ABSL_FLAG(bool, exclusive, false, "fail if the table exists");
ABSL_FLAG(std::string, value_file, "", "read the value from this file ('-': stdin)");
ABSL_FLAG(bool, key_b64, false, "KEY is given in base64");
ABSL_FLAG(std::string, prefix, "", "only keys that start with this");
ABSL_FLAG(bool, values, false, "print values too");
ABSL_FLAG(uint64_t, limit, 0, "print at most this many entries (0: all)");
ABSL_FLAG(uint64_t, count, 0, "stop after this many changes (0: never)");
ABSL_FLAG(int64_t, timeout_ms, -1, "give up after this many milliseconds (-1: never)");
ABSL_FLAG(std::string, output, "", "write to this file instead of stdout");
ABSL_FLAG(std::string, input, "", "read from this file instead of stdin");
ABSL_FLAG(bool, create, false, "create the table if it does not exist");
// Strings, parsed by the commands themselves so that a bad value gets a message saying
// what is wanted ("" means not given: the commands tell that from an explicit value).
ABSL_FLAG(std::string, eviction, "", "eviction policy of a new table: none or lrs");
ABSL_FLAG(std::string, ttl, "", "seconds until the entry expires (decimal, > 0)");
ABSL_FLAG(bool, if_absent, false, "write only if the key is absent");
ABSL_FLAG(bool, if_present, false, "write only if the key is present");

namespace shmdict::cli {
namespace {

const FlagDoc* FindAccepted(const std::vector<FlagDoc>& accepted, const std::string& name) {
  for (const FlagDoc& f : accepted) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

bool SetFlag(const std::string& name, const std::string& value, std::string* error) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr) {  // a FlagDoc naming no ABSL_FLAG: a bug in the tool
    *error = "internal error: no flag --" + name;
    return false;
  }
  std::string why;  // Abseil's "Illegal value '...' specified for flag '...'"
  if (!flag->ParseFrom(value, &why)) {
    const char* wanted = flag->IsOfType<bool>()       ? "true or false"
                         : flag->IsOfType<int64_t>()  ? "an integer"
                         : flag->IsOfType<uint64_t>() ? "an integer in [0, 2^64)"
                         : flag->IsOfType<uint32_t>() ? "an integer in [0, 2^32)"
                                                      : "another value";
    *error = "bad value '" + value + "' for --" + name + ": wanted " + wanted;
    return false;
  }
  return true;
}

}  // namespace

bool ParseArguments(const std::vector<std::string>& args, const std::vector<FlagDoc>& accepted,
                    ParsedArguments* out, std::string* error) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out->positional.insert(out->positional.end(), args.begin() + long(i) + 1, args.end());
      break;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      out->help = true;
      continue;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      out->positional.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const bool has_value = eq != std::string::npos;
    std::string value = has_value ? arg.substr(eq + 1) : "";
    const FlagDoc* doc = FindAccepted(accepted, name);
    bool negated = false;
    if (doc == nullptr && name.compare(0, 2, "no") == 0) {
      doc = FindAccepted(accepted, name.substr(2));
      negated = doc != nullptr;
    }
    if (doc == nullptr) {
      *error = "unknown flag --" + name;
      return false;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(doc->name);
    const bool is_bool = flag != nullptr && flag->IsOfType<bool>();
    if (negated) {
      if (!is_bool) {
        *error = "unknown flag --" + name;
        return false;
      }
      if (has_value) {
        *error = "--" + name + " takes no value";
        return false;
      }
      if (!SetFlag(doc->name, "false", error)) return false;
      continue;
    }
    if (!has_value) {
      if (is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        *error = "--" + name + " needs a value";
        return false;
      }
    }
    if (!SetFlag(doc->name, value, error)) return false;
  }
  return true;
}

std::string FlagsHelp(const std::vector<FlagDoc>& accepted) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const FlagDoc& f : accepted) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(f.name);
    std::string l = std::string("--") + f.name;
    if (flag != nullptr && !flag->IsOfType<bool>()) {
      l += "=" + std::string(flag->DefaultValue());
    }
    width = std::max(width, l.size());
    left.push_back(std::move(l));
  }
  std::string out;
  for (size_t i = 0; i < accepted.size(); ++i) {
    out += "  " + left[i] + std::string(width - left[i].size() + 2, ' ');
    // Continuation lines of a multi-line help align under its first line.
    for (const char* p = accepted[i].help; *p != '\0'; ++p) {
      out += *p;
      if (*p == '\n') out += std::string(width + 4, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace shmdict::cli
