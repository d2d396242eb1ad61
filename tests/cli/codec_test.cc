// The tool's encodings: UTF-8 classification, JSON strings both ways, base64 against
// RFC 4648's vectors, escaped display, and dump records (round trips of random bytes).
#include "tools/cli/codec.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace shmdict::cli {
namespace {

using namespace std::string_literals;

TEST(Utf8Test, AcceptsWellFormedAndRejectsTheRest) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("nul\0inside"s));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("a\x80"));             // lone continuation byte
}

TEST(Utf8Test, TextExcludesControlCharactersButTabsAndNewlines) {
  EXPECT_TRUE(IsText("line one\nline two\ttab\r"));
  EXPECT_TRUE(IsText("caf\xc3\xa9"));
  EXPECT_FALSE(IsText("nul\0"s));
  EXPECT_FALSE(IsText("\x1b[31mred"));  // escape sequence
  EXPECT_FALSE(IsText("del\x7f"));
  EXPECT_FALSE(IsText("\xc2\x85"));  // U+0085, a C1 control
  EXPECT_FALSE(IsText("\xff"));
}

TEST(JsonStringTest, EscapesWhatJsonNeeds) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(JsonString("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonString("\xe2\x80\xa8"), "\"\\u2028\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(JsonString("a\xff" "b"), "\"a\\ufffdb\"");  // malformed bytes: lossy
}

TEST(JsonParseTest, ParsesValuesOfEveryType) {
  JsonValue v;
  std::string error;
  ASSERT_TRUE(ParseJson(
      R"( {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","n":-1.5e3,"t":true,"f":false,)"
      R"("z":null,"a":[1,[],{}]} )",
      &v, &error))
      << error;
  ASSERT_EQ(v.type, JsonValue::Type::kObject);
  ASSERT_NE(v.Find("s"), nullptr);
  EXPECT_EQ(v.Find("s")->text, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.Find("n")->type, JsonValue::Type::kNumber);
  EXPECT_EQ(v.Find("n")->text, "-1.5e3");
  EXPECT_TRUE(v.Find("t")->boolean);
  EXPECT_EQ(v.Find("f")->type, JsonValue::Type::kBool);
  EXPECT_FALSE(v.Find("f")->boolean);
  EXPECT_EQ(v.Find("z")->type, JsonValue::Type::kNull);
  ASSERT_EQ(v.Find("a")->items.size(), 3u);
  EXPECT_EQ(v.Find("a")->items[1].type, JsonValue::Type::kArray);
  EXPECT_EQ(v.Find("missing"), nullptr);
}

TEST(JsonParseTest, RejectsMalformedTextWithAnOffset) {
  const char* bad[] = {
      "",        "{",          "{\"a\":}",     "{\"a\":1,}", "[1,]",          "{'a':1}",
      "\"\\x\"", "\"\x01\"",   "\"\xff\"",     "01",         "1.",            "-",
      "tru",     "{\"a\":1}x", "\"\\ud800\"",  "\"\\udc00\"", "\"\\ud800\\u0041\"",
      "{\"a\":1,\"a\":2}",     "\"unterminated",
  };
  for (const char* text : bad) {
    JsonValue v;
    std::string error;
    EXPECT_FALSE(ParseJson(text, &v, &error)) << text;
    EXPECT_NE(error.find("at byte "), std::string::npos) << text << ": " << error;
  }
  std::string deep(65, '[');
  deep += std::string(65, ']');
  JsonValue v;
  std::string error;
  EXPECT_FALSE(ParseJson(deep, &v, &error));
  EXPECT_NE(error.find("nested deeper"), std::string::npos) << error;
}

TEST(JsonParseTest, RepeatedNamesAreFoundAmongManyMembers) {
  std::string text = "{";
  for (int i = 0; i < 20000; ++i) {
    text += (i > 0 ? ",\"m" : "\"m") + std::to_string(i) + "\":" + std::to_string(i);
  }
  JsonValue v;
  std::string error;
  ASSERT_TRUE(ParseJson(text + "}", &v, &error)) << error;
  ASSERT_EQ(v.names.size(), 20000u);
  ASSERT_NE(v.Find("m12345"), nullptr);
  EXPECT_EQ(v.Find("m12345")->text, "12345");
  // A repeat of the first name, after all the others: refused, at the repeat.
  EXPECT_FALSE(ParseJson(text + ",\"m0\":1}", &v, &error));
  EXPECT_EQ(error,
            "at byte " + std::to_string(text.size() + 1) + ": member \"m0\" appears twice");
  // Names are compared as decoded: "\u006d0" is "m0".
  EXPECT_FALSE(ParseJson(text + ",\"\\u006d0\":1}", &v, &error));
  EXPECT_NE(error.find("member \"m0\" appears twice"), std::string::npos) << error;
}

TEST(JsonParseTest, Uint64OnlyForNonnegativeIntegersThatFit) {
  JsonValue v;
  std::string error;
  uint64_t n = 0;
  ASSERT_TRUE(ParseJson("18446744073709551615", &v, &error));
  ASSERT_TRUE(JsonToUint64(v, &n));
  EXPECT_EQ(n, UINT64_MAX);
  for (const char* text : {"18446744073709551616", "-1", "1.0", "1e3", "\"7\""}) {
    ASSERT_TRUE(ParseJson(text, &v, &error)) << text;
    EXPECT_FALSE(JsonToUint64(v, &n)) << text;
  }
}

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::string decoded;
    ASSERT_TRUE(Base64Decode(encoded, &decoded)) << encoded;
    EXPECT_EQ(decoded, plain);
  }
  std::string decoded;
  EXPECT_TRUE(Base64Decode("Zm8", &decoded));  // padding is optional
  EXPECT_EQ(decoded, "fo");
  EXPECT_EQ(Base64Encode("\0\xff\xfe"s), "AP/+");
}

TEST(Base64Test, RejectsNonCanonicalText) {
  std::string out;
  for (const char* bad : {"Z", "Zg=", "Zg===", "Z===", "====", "Zm9v\n", "Zm 9v", "Zm9v!",
                          "Zh==" /* unused bits set */, "Zm9=" /* likewise */, "Zg==Zg=="}) {
    EXPECT_FALSE(Base64Decode(bad, &out)) << bad;
  }
}

TEST(PrintableTest, EscapesEverythingButPrintableText) {
  EXPECT_EQ(Printable("plain caf\xc3\xa9"), "plain caf\xc3\xa9");
  EXPECT_EQ(Printable("a\\b"), "a\\\\b");
  EXPECT_EQ(Printable("t\tn\nr\r"), "t\\tn\\nr\\r");
  EXPECT_EQ(Printable("\0\x1b\x7f\xff"s), "\\x00\\x1b\\x7f\\xff");
  EXPECT_EQ(Printable("\xc2\x85"), "\\xc2\\x85");
  EXPECT_EQ(Quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
}

TEST(RecordTest, TextTravelsAsStringsAndBytesAsBase64) {
  EXPECT_EQ(FormatRecord("user:1", "Ada\n", 3), R"({"key":"user:1","value":"Ada\n","version":3})");
  EXPECT_EQ(FormatRecord("\0k"s, "\xff", 9), R"({"key_b64":"AGs=","value_b64":"/w==","version":9})");
  std::string key, value, error;
  uint64_t version = 1, expires = 1;
  ASSERT_TRUE(ParseRecord(R"({"value":"v","key_b64":"AGs="})", &key, &value, &version,
                          &expires, &error))
      << error;
  EXPECT_EQ(key, "\0k"s);
  EXPECT_EQ(value, "v");
  EXPECT_EQ(version, 0u);
  EXPECT_EQ(expires, 0u);  // no "expires_unix_ms": never expires
}

TEST(RecordTest, AnExpiryTravelsAsAbsoluteMillisecondsAndOnlyWhenThereIsOne) {
  // Never expiring (0): the line is the format's first version, byte for byte.
  EXPECT_EQ(FormatRecord("k", "v", 2, 0), R"({"key":"k","value":"v","version":2})");
  EXPECT_EQ(FormatRecord("k", "v", 2, 1764979200250),
            R"({"key":"k","value":"v","version":2,"expires_unix_ms":1764979200250})");
  std::string key, value, error;
  uint64_t version = 0, expires = 0;
  ASSERT_TRUE(ParseRecord(R"({"expires_unix_ms":1764979200250,"key":"k","value":"v"})", &key,
                          &value, &version, &expires, &error))
      << error;
  EXPECT_EQ(expires, 1764979200250u);
  ASSERT_TRUE(ParseRecord(R"({"key":"k","value":"v","expires_unix_ms":0})", &key, &value,
                          &version, &expires, &error))
      << error;
  EXPECT_EQ(expires, 0u);
  for (const char* bad : {R"({"key":"k","value":"v","expires_unix_ms":-1})",
                          R"({"key":"k","value":"v","expires_unix_ms":1.5})",
                          R"({"key":"k","value":"v","expires_unix_ms":"1764979200250"})",
                          R"({"key":"k","value":"v","expires_unix_ms":1e12})",
                          R"({"key":"k","value":"v","expires_unix_ms":18446744073709551616})"}) {
    EXPECT_FALSE(ParseRecord(bad, &key, &value, &version, &expires, &error)) << bad;
    EXPECT_NE(error.find("\"expires_unix_ms\" is not a nonnegative integer"), std::string::npos)
        << bad << ": " << error;
  }
}

TEST(RecordTest, RandomBytesRoundTrip) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::string key(rng() % 40, '\0'), value(rng() % 300, '\0');
    // Mostly text, sometimes arbitrary bytes, so both encodings are exercised.
    const bool binary = rng() % 2 == 0;
    for (char& c : key) c = binary ? char(rng()) : char(' ' + rng() % 95);
    for (char& c : value) c = binary ? char(rng()) : char(' ' + rng() % 95);
    const uint64_t version = rng();
    const uint64_t expires = rng() % 3 == 0 ? 0 : rng();
    const std::string line = FormatRecord(key, value, version, expires);
    std::string k, v, error;
    uint64_t ver = 0, exp = 1;
    ASSERT_TRUE(ParseRecord(line, &k, &v, &ver, &exp, &error)) << line << ": " << error;
    EXPECT_EQ(k, key);
    EXPECT_EQ(v, value);
    EXPECT_EQ(ver, version);
    EXPECT_EQ(exp, expires);
    EXPECT_EQ(line.find('\n'), std::string::npos);
  }
}

TEST(RecordTest, RejectsRecordsThatAreNotExactlyKeyValueVersion) {
  const char* bad[] = {
      R"([1])",
      R"({"value":"v"})",
      R"({"key":"k"})",
      R"({"key":"k","key_b64":"aw==","value":"v"})",
      R"({"key":"k","value":"v","value_b64":"dg=="})",
      R"({"key":1,"value":"v"})",
      R"({"key":"k","value":null})",
      R"({"key_b64":"!!","value":"v"})",
      R"({"key":"k","value":"v","version":-1})",
      R"({"key":"k","value":"v","ttl":5})",
  };
  for (const char* line : bad) {
    std::string key, value, error;
    uint64_t version, expires;
    EXPECT_FALSE(ParseRecord(line, &key, &value, &version, &expires, &error)) << line;
    EXPECT_FALSE(error.empty()) << line;
  }
}

}  // namespace
}  // namespace shmdict::cli
