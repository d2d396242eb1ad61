#include "tools/cli/codec.h"

#include <cstdio>
#include <cstring>
#include <set>

namespace shmdict::cli {
namespace {

// The length of the well-formed UTF-8 sequence that starts at s[i], with its code
// point in *cp; 0 if the bytes there are not one (RFC 3629, table 3-7 of Unicode).
size_t Utf8Sequence(std::string_view s, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  uint32_t c = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const uint8_t b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  *cp = c;
  return len;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

void AppendHexByte(uint8_t b, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += "\\x";
  *out += kHex[b >> 4];
  *out += kHex[b & 15];
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += char(cp);
  } else if (cp < 0x800) {
    *out += char(0xC0 | (cp >> 6));
    *out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += char(0xE0 | (cp >> 12));
    *out += char(0x80 | ((cp >> 6) & 0x3F));
    *out += char(0x80 | (cp & 0x3F));
  } else {
    *out += char(0xF0 | (cp >> 18));
    *out += char(0x80 | ((cp >> 12) & 0x3F));
    *out += char(0x80 | ((cp >> 6) & 0x3F));
    *out += char(0x80 | (cp & 0x3F));
  }
}

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// A recursive-descent parser over one JSON text.
class Parser {
 public:
  Parser(std::string_view text, std::string* error) : s_(text), error_(error) {}

  bool ParseText(JsonValue* v) {
    SkipSpace();
    if (!ParseValue(v, 0)) return false;
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected text after the value");
    return true;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool Fail(const std::string& what) {
    *error_ = "at byte " + std::to_string(pos_) + ": " + what;
    return false;
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return s_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      ++pos_;
    }
  }
  bool Expect(char c) {
    SkipSpace();
    if (AtEnd() || Peek() != c) return Fail(std::string("expected '") + c + "'");
    ++pos_;
    return true;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(JsonValue* v, int depth) {
    if (depth >= kMaxDepth) return Fail("nested deeper than 64 levels");
    SkipSpace();
    if (AtEnd()) return Fail("expected a value, found the end of the text");
    const char c = Peek();
    switch (c) {
      case '{':
        return ParseObject(v, depth);
      case '[':
        return ParseArray(v, depth);
      case '"':
        v->type = JsonValue::Type::kString;
        return ParseString(&v->text);
      case 't':
        v->type = JsonValue::Type::kBool;
        v->boolean = true;
        return Literal("true");
      case 'f':
        v->type = JsonValue::Type::kBool;
        v->boolean = false;
        return Literal("false");
      case 'n':
        v->type = JsonValue::Type::kNull;
        return Literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(v);
        return Fail(std::string("unexpected character '") + Printable(std::string(1, c)) +
                    "'");
    }
  }

  bool ParseObject(JsonValue* v, int depth) {
    v->type = JsonValue::Type::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      return true;
    }
    // The names so far, to refuse a repeat in O(log n) (JsonValue::Find is linear).
    std::set<std::string> seen;
    for (;;) {
      SkipSpace();
      if (AtEnd() || Peek() != '"') return Fail("expected a member name in double quotes");
      std::string name;
      const size_t name_pos = pos_;
      if (!ParseString(&name)) return false;
      if (!seen.insert(name).second) {
        pos_ = name_pos;
        return Fail("member " + Quoted(name) + " appears twice");
      }
      if (!Expect(':')) return false;
      JsonValue member;
      if (!ParseValue(&member, depth + 1)) return false;
      v->names.push_back(std::move(name));
      v->members.push_back(std::move(member));
      SkipSpace();
      if (AtEnd()) return Fail("expected ',' or '}', found the end of the text");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        return true;
      }
      return Fail("expected ',' or '}'");
    }
  }

  bool ParseArray(JsonValue* v, int depth) {
    v->type = JsonValue::Type::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      JsonValue item;
      if (!ParseValue(&item, depth + 1)) return false;
      v->items.push_back(std::move(item));
      SkipSpace();
      if (AtEnd()) return Fail("expected ',' or ']', found the end of the text");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        return true;
      }
      return Fail("expected ',' or ']'");
    }
  }

  bool ParseHex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[pos_ + k];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return Fail("bad hex digit in \\u escape");
      }
      v = v << 4 | uint32_t(d);
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    ++pos_;  // '"'
    out->clear();
    for (;;) {
      if (AtEnd()) return Fail("unterminated string");
      const uint8_t c = static_cast<uint8_t>(Peek());
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail("raw control character in a string (escape it)");
      if (c != '\\') {
        uint32_t cp = 0;
        const size_t n = Utf8Sequence(s_, pos_, &cp);
        if (n == 0) return Fail("malformed UTF-8 in a string");
        out->append(s_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      ++pos_;  // '\\'
      if (AtEnd()) return Fail("unterminated escape");
      const char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *out += e;
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("unpaired low surrogate escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (s_.substr(pos_, 2) != "\\u") return Fail("unpaired high surrogate escape");
            pos_ += 2;
            if (!ParseHex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return Fail("unpaired high surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          --pos_;
          return Fail("invalid escape");
      }
    }
  }

  bool ParseNumber(JsonValue* v) {
    const size_t start = pos_;
    const auto digits = [&] {
      const size_t from = pos_;
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
      return pos_ > from;
    };
    if (Peek() == '-') ++pos_;
    if (AtEnd()) return Fail("truncated number");
    if (Peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      return Fail("expected a digit");
    }
    if (!AtEnd() && Peek() == '.') {
      ++pos_;
      if (!digits()) return Fail("expected a digit after '.'");
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (!digits()) return Fail("expected a digit in the exponent");
    }
    v->type = JsonValue::Type::kNumber;
    v->text = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  std::string_view s_;
  std::string* error_;
  size_t pos_ = 0;
};

}  // namespace

bool IsValidUtf8(std::string_view s) {
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool IsText(std::string_view s) {
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0) return false;
    if (IsControl(cp) && cp != '\t' && cp != '\n' && cp != '\r') return false;
    i += n;
  }
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  *out += '"';
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0) {
      *out += "\\ufffd";
      ++i;
      continue;
    }
    switch (cp) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (IsControl(cp) || cp == 0x2028 || cp == 0x2029) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", unsigned(cp));
          *out += buf;
        } else {
          out->append(s.substr(i, n));
        }
    }
    i += n;
  }
  *out += '"';
}

std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

void AppendBytesMember(std::string_view name, std::string_view bytes, std::string* out) {
  *out += '"';
  out->append(name);
  if (IsText(bytes)) {
    *out += "\":";
    AppendJsonString(bytes, out);
  } else {
    *out += "_b64\":\"";
    *out += Base64Encode(bytes);
    *out += '"';
  }
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto byte = [&](size_t k) { return uint32_t(static_cast<uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = byte(i) << 16;
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  // Padding is optional; when present it must complete the last group of four.
  if (text.size() % 4 == 0 && !text.empty()) {
    if (text.back() == '=') text.remove_suffix(1);
    if (text.back() == '=') text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) return false;
  out->clear();
  out->reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int d = Base64Digit(c);
    if (d < 0) return false;
    acc = (acc << 6) | uint32_t(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += char((acc >> bits) & 0xFF);
    }
  }
  // Canonical: the bits left over from the last character are zero.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Sequence(s, i, &cp);
    if (n == 0) {
      AppendHexByte(static_cast<uint8_t>(s[i]), &out);
      ++i;
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (IsControl(cp)) {
      for (size_t k = 0; k < n; ++k) AppendHexByte(static_cast<uint8_t>(s[i + k]), &out);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : Printable(s)) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

const JsonValue* JsonValue::Find(std::string_view name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return &members[i];
  }
  return nullptr;
}

bool ParseJson(std::string_view text, JsonValue* value, std::string* error) {
  *value = JsonValue();
  return Parser(text, error).ParseText(value);
}

bool JsonToUint64(const JsonValue& v, uint64_t* out) {
  if (v.type != JsonValue::Type::kNumber || v.text.empty()) return false;
  uint64_t n = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;  // a sign, a fraction or an exponent
    const uint64_t d = uint64_t(c - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
  }
  *out = n;
  return true;
}

std::string FormatRecord(std::string_view key, std::string_view value, uint64_t version,
                         uint64_t expires_unix_ms) {
  std::string line = "{";
  AppendBytesMember("key", key, &line);
  line += ',';
  AppendBytesMember("value", value, &line);
  line += ",\"version\":";
  line += std::to_string(version);
  if (expires_unix_ms != 0) {
    line += ",\"expires_unix_ms\":";
    line += std::to_string(expires_unix_ms);
  }
  line += '}';
  return line;
}

namespace {

// Reads the bytes of member `name` (a JSON string) or `name`_b64 (base64) of `obj`.
bool RecordBytes(const JsonValue& obj, const std::string& name, std::string* out,
                 std::string* error) {
  const JsonValue* text = obj.Find(name);
  const JsonValue* b64 = obj.Find(name + "_b64");
  if (text != nullptr && b64 != nullptr) {
    *error = "both \"" + name + "\" and \"" + name + "_b64\"";
    return false;
  }
  if (text == nullptr && b64 == nullptr) {
    *error = "no \"" + name + "\" or \"" + name + "_b64\"";
    return false;
  }
  const JsonValue* v = text != nullptr ? text : b64;
  const std::string member = text != nullptr ? name : name + "_b64";
  if (v->type != JsonValue::Type::kString) {
    *error = "\"" + member + "\" is not a string";
    return false;
  }
  if (text != nullptr) {
    *out = v->text;
    return true;
  }
  if (!Base64Decode(v->text, out)) {
    *error = "\"" + member + "\" is not valid base64";
    return false;
  }
  return true;
}

}  // namespace

bool ParseRecord(std::string_view line, std::string* key, std::string* value,
                 uint64_t* version, uint64_t* expires_unix_ms, std::string* error) {
  JsonValue obj;
  if (!ParseJson(line, &obj, error)) return false;
  if (obj.type != JsonValue::Type::kObject) {
    *error = "not a JSON object";
    return false;
  }
  for (const std::string& name : obj.names) {
    if (name != "key" && name != "key_b64" && name != "value" && name != "value_b64" &&
        name != "version" && name != "expires_unix_ms") {
      *error = "unknown member " + Quoted(name) +
               " (expected key or key_b64, value or value_b64, version, expires_unix_ms)";
      return false;
    }
  }
  if (!RecordBytes(obj, "key", key, error)) return false;
  if (!RecordBytes(obj, "value", value, error)) return false;
  *version = 0;
  if (const JsonValue* v = obj.Find("version"); v != nullptr && !JsonToUint64(*v, version)) {
    *error = "\"version\" is not a nonnegative integer";
    return false;
  }
  *expires_unix_ms = 0;
  if (const JsonValue* v = obj.Find("expires_unix_ms");
      v != nullptr && !JsonToUint64(*v, expires_unix_ms)) {
    *error = "\"expires_unix_ms\" is not a nonnegative integer (milliseconds since the "
             "Unix epoch)";
    return false;
  }
  return true;
}

}  // namespace shmdict::cli
