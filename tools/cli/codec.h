// Text encodings of the shmdict command-line tool: JSON strings (writing and a small
// parser), base64, UTF-8 checks, escaped display of arbitrary bytes, and the dump
// format's records. Keys and values are arbitrary bytes; these functions decide how
// they travel through terminals, JSON and files without loss.
//
// The dump format (docs/cli.md): one JSON object per line,
//
//   {"key":"EURUSD","value":"1.0842","version":7}
//   {"key_b64":"AP8=","value_b64":"gA==","version":3}
//   {"key":"session:9","value":"u=4","version":2,"expires_unix_ms":1764979200250}
//
// A key or value is written as a JSON string ("key", "value") when it is text (see
// IsText), else as standard base64 with padding ("key_b64", "value_b64"). An entry
// that expires carries its absolute expiry, milliseconds since the Unix epoch; one
// that never expires has no "expires_unix_ms" (so a dump of a table without
// expiries is exactly what the first version of the format was).
//
// Thread safety: every function is pure (no shared state).
#ifndef SHMDICT_TOOLS_CLI_CODEC_H_
#define SHMDICT_TOOLS_CLI_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shmdict::cli {

// ---------------------------------------------------------------------------------
// UTF-8

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, no
// code point above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Whether `s` travels as a JSON string in dumps and --json output: well-formed UTF-8
// with no control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) other
// than tab, line feed and carriage return. Anything else (NUL bytes, invalid UTF-8,
// escape sequences) travels as base64.
bool IsText(std::string_view s);

// ---------------------------------------------------------------------------------
// JSON writing

// Appends `s` as a quoted JSON string: '"' and '\\' escaped, control characters as
// \n, \t, ... or \u00XX, U+2028 and U+2029 as \u2028 and \u2029 (for JavaScript).
// Bytes that are not well-formed UTF-8 become U+FFFD: use it for exact bytes only
// when IsValidUtf8(s), else AppendBytesMember.
void AppendJsonString(std::string_view s, std::string* out);
std::string JsonString(std::string_view s);

// Appends `"name":"text"` when IsText(bytes), else `"name_b64":"base64"`.
void AppendBytesMember(std::string_view name, std::string_view bytes, std::string* out);

// ---------------------------------------------------------------------------------
// base64 (RFC 4648, standard alphabet, with padding)

std::string Base64Encode(std::string_view bytes);
// Decodes canonical base64: the standard alphabet, padding optional, no whitespace,
// unused bits of the last character zero. Returns false (and leaves *out unspecified)
// on anything else.
bool Base64Decode(std::string_view text, std::string* out);

// ---------------------------------------------------------------------------------
// Display of arbitrary bytes on a terminal or in line-oriented output

// `s` with every byte that is not part of printable UTF-8 escaped: backslash as \\,
// tab, line feed and carriage return as \t, \n, \r, other control characters and
// bytes of malformed UTF-8 as \xHH. The result holds no control character, so one
// key per line stays one key per line. Printable text comes out unchanged (except
// backslashes, doubled).
std::string Printable(std::string_view s);
// Printable(s) in double quotes, with '"' escaped too: for error messages.
std::string Quoted(std::string_view s);

// ---------------------------------------------------------------------------------
// JSON parsing (RFC 8259)

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  // kString: the decoded contents (UTF-8); kNumber: the number as written.
  std::string text;
  std::vector<JsonValue> items;          // kArray
  std::vector<std::string> names;        // kObject: member names, in order
  std::vector<JsonValue> members;        // kObject: member values, names[i]'s at i

  // The member called `name`, or null. Names are unique (the parser rejects repeats).
  const JsonValue* Find(std::string_view name) const;
};

// Parses one JSON text: a value with optional whitespace around it. Strict RFC 8259:
// no comments, no trailing commas, no raw control characters in strings, well-formed
// UTF-8, paired surrogate escapes, at most 64 levels of nesting; repeated member names
// in one object are refused too. On error returns false and sets *error to a message
// that names the byte offset ("at byte 12: expected ':'").
bool ParseJson(std::string_view text, JsonValue* value, std::string* error);

// The value of a kNumber that is a nonnegative integer (no fraction, no exponent,
// below 2^64), or false.
bool JsonToUint64(const JsonValue& v, uint64_t* out);

// ---------------------------------------------------------------------------------
// Dump records

// One line of the dump format, without the trailing newline. expires_unix_ms: the
// entry's absolute expiry in milliseconds since the Unix epoch, 0 for never (then the
// line has no "expires_unix_ms").
std::string FormatRecord(std::string_view key, std::string_view value, uint64_t version,
                         uint64_t expires_unix_ms = 0);

// Parses one line of the dump format: an object with exactly one of "key" (a string)
// or "key_b64" (base64), exactly one of "value" or "value_b64", and optionally
// "version" (a nonnegative integer; 0 when absent) and "expires_unix_ms" (a
// nonnegative integer; 0, also when absent, is never). Other members are refused, so
// a misspelt name is an error, not a silently lost field. Returns false and sets
// *error on anything else.
bool ParseRecord(std::string_view line, std::string* key, std::string* value,
                 uint64_t* version, uint64_t* expires_unix_ms, std::string* error);

}  // namespace shmdict::cli

#endif  // SHMDICT_TOOLS_CLI_CODEC_H_
