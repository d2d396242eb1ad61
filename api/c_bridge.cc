// The C++ half of the C API: everything that needs shmdict::Dict. The C ABI's
// `typedef struct shmdict shmdict` and C++'s `namespace shmdict` cannot meet in one
// translation unit, so api/shmdict_c.cc (which sees only the C names) forwards here
// through api/c_bridge.h.
#include "api/c_bridge.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "api/errors.h"
#include "api/shmdict.h"

struct shmdict_c_bridge::Handle {
  shmdict::Dict dict;
};

using Handle = shmdict_c_bridge::Handle;

namespace {

using shmdict::ErrorCode;

thread_local std::string last_error;

int FailWith(ErrorCode code, std::string_view message) {
  last_error.assign(message.data(), message.size());
  return static_cast<int>(code);
}

int FromStatus(const absl::Status& status) {
  if (status.ok()) return 0;
  const ErrorCode code = shmdict::ErrorCodeOf(status);
  if (status.message().empty()) {
    // Hot-path misses carry no message (no allocation): describe the code instead.
    last_error.assign(shmdict::ErrorCodeDescription(code));
  } else {
    last_error.assign(status.message().data(), status.message().size());
  }
  if (code == ErrorCode::kIo) {
    const int err = shmdict::OsErrnoOf(status);
    if (err != 0) errno = err;
  }
  return static_cast<int>(code);
}

bool BadBytes(const void* p, size_t n) { return p == nullptr && n != 0; }

std::string_view View(const void* p, size_t n) {
  return n == 0 ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}


int WriteResult(const absl::StatusOr<uint64_t>& v, uint64_t* version) {
  if (!v.ok()) return FromStatus(v.status());
  if (version != nullptr) *version = *v;
  return 0;
}

enum class Op { kPut, kInsert, kReplace };

int DoWrite(Op op, Handle* d, const void* key, size_t key_len, const void* value,
            size_t value_len, uint64_t* version) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  if (BadBytes(value, value_len)) return FailWith(ErrorCode::kInvalid, "null value");
  const std::string_view k = View(key, key_len), v = View(value, value_len);
  switch (op) {
    case Op::kPut:
      return WriteResult(d->dict.Put(k, v), version);
    case Op::kInsert:
      return WriteResult(d->dict.Insert(k, v), version);
    case Op::kReplace:
      return WriteResult(d->dict.Replace(k, v), version);
  }
  return FailWith(ErrorCode::kInvalid, "bad operation");
}

}  // namespace

namespace shmdict_c_bridge {

int Open(const char* path, bool create, bool exclusive, bool read_only, bool allow_group,
         const Options* opts, Handle** out) {
  if (out == nullptr) return FailWith(ErrorCode::kInvalid, "null out pointer");
  *out = nullptr;
  if (path == nullptr) return FailWith(ErrorCode::kInvalid, "null path");
  shmdict::OpenOptions o;
  o.create = create;
  o.exclusive = exclusive;
  o.read_only = read_only;
  o.allow_group = allow_group;
  if (o.create) {
    if (opts == nullptr) return FailWith(ErrorCode::kInvalid, "SHMDICT_CREATE needs options");
    o.capacity = opts->capacity;
    o.max_key_size = opts->max_key_size;
    o.max_value_size = opts->max_value_size;
    o.mode = opts->mode == 0 ? 0600 : opts->mode;
  }
  absl::StatusOr<shmdict::Dict> dict = shmdict::Dict::Open(path, o);
  if (!dict.ok()) return FromStatus(dict.status());
  Handle* handle = new (std::nothrow) Handle{std::move(*dict)};
  if (handle == nullptr) {
    errno = ENOMEM;
    return FailWith(ErrorCode::kIo, "out of memory");
  }
  *out = handle;
  return 0;
}

int Close(Handle* d) {
  delete d;
  return 0;
}

int Unlink(const char* path) {
  if (path == nullptr) return FailWith(ErrorCode::kInvalid, "null path");
  return FromStatus(shmdict::Dict::Unlink(path));
}

int Get(Handle* d, const void* key, size_t key_len, void* value, size_t value_cap,
                size_t* value_len, uint64_t* version) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  if (BadBytes(value, value_cap)) return FailWith(ErrorCode::kInvalid, "null value buffer");
  return FromStatus(d->dict.GetInto(View(key, key_len), static_cast<char*>(value),
                                    value_cap, value_len, version));
}

int GetMany(Handle* d, size_t n, const void* const* keys, const size_t* key_lens,
            void* const* values, const size_t* value_caps, size_t* value_lens,
            uint64_t* versions, int* results) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (n == 0) return 0;
  if (keys == nullptr || key_lens == nullptr || values == nullptr ||
      value_caps == nullptr || results == nullptr) {
    return FailWith(ErrorCode::kInvalid,
                    "null keys, key_lens, values, value_caps or results array");
  }
  // In chunks on the stack: no allocation.
  constexpr size_t kChunk = 64;
  std::string_view k[kChunk];
  absl::Span<char> v[kChunk];
  shmdict::GetManyResult r[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t m = std::min(kChunk, n - base);
    for (size_t i = 0; i < m; ++i) {
      const size_t j = base + i;
      // A null key or buffer with nonzero length: that key fails with EINVAL, looked
      // up as an empty key / buffer meanwhile (harmless) so the batch stays uniform.
      k[i] = BadBytes(keys[j], key_lens[j]) ? std::string_view() : View(keys[j], key_lens[j]);
      v[i] = BadBytes(values[j], value_caps[j])
                 ? absl::Span<char>()
                 : absl::Span<char>(static_cast<char*>(values[j]), value_caps[j]);
    }
    const absl::StatusOr<size_t> found = d->dict.GetMany(
        absl::MakeConstSpan(k, m), absl::MakeConstSpan(v, m), absl::MakeSpan(r, m));
    if (!found.ok()) return FromStatus(found.status());
    for (size_t i = 0; i < m; ++i) {
      const size_t j = base + i;
      if (BadBytes(keys[j], key_lens[j]) || BadBytes(values[j], value_caps[j])) {
        results[j] = static_cast<int>(ErrorCode::kInvalid);
        continue;
      }
      results[j] = r[i].status.ok() ? 0 : static_cast<int>(shmdict::ErrorCodeOf(r[i].status));
      if (value_lens != nullptr) value_lens[j] = r[i].value_len;
      if (versions != nullptr) versions[j] = r[i].version;
    }
  }
  return 0;
}

int Put(Handle* d, const void* key, size_t key_len, const void* value,
                size_t value_len, uint64_t* version) {
  return DoWrite(Op::kPut, d, key, key_len, value, value_len, version);
}

int Insert(Handle* d, const void* key, size_t key_len, const void* value,
                   size_t value_len, uint64_t* version) {
  return DoWrite(Op::kInsert, d, key, key_len, value, value_len, version);
}

int Replace(Handle* d, const void* key, size_t key_len, const void* value,
                    size_t value_len, uint64_t* version) {
  return DoWrite(Op::kReplace, d, key, key_len, value, value_len, version);
}

int Erase(Handle* d, const void* key, size_t key_len) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  return FromStatus(d->dict.Erase(View(key, key_len)));
}

int CompareAndSwap(Handle* d, const void* key, size_t key_len,
                             uint64_t expected_version, const void* value,
                             size_t value_len, uint64_t* new_version) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  if (BadBytes(value, value_len)) return FailWith(ErrorCode::kInvalid, "null value");
  return WriteResult(d->dict.CompareAndSwap(View(key, key_len), expected_version,
                                            View(value, value_len)),
                     new_version);
}

int FetchAdd(Handle* d, const void* key, size_t key_len, int64_t delta,
                      int64_t* new_value) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  absl::StatusOr<int64_t> v = d->dict.FetchAdd(View(key, key_len), delta);
  if (!v.ok()) return FromStatus(v.status());
  if (new_value != nullptr) *new_value = *v;
  return 0;
}

int Wait(Handle* d, const void* key, size_t key_len, uint64_t version, int64_t timeout_ms) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (BadBytes(key, key_len)) return FailWith(ErrorCode::kInvalid, "null key");
  return FromStatus(d->dict.WaitForChange(View(key, key_len), version, timeout_ms));
}

int ForEach(Handle* d, ForEachFn fn, void* ctx) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  if (fn == nullptr) return FailWith(ErrorCode::kInvalid, "null callback");
  d->dict.ForEach([&](std::string_view key, std::string_view value, uint64_t version) {
    return fn(ctx, key.data(), key.size(), value.data(), value.size(), version) == 0;
  });
  return 0;
}

int Count(Handle* d, uint64_t* count) {
  if (d == nullptr) return FailWith(ErrorCode::kInvalid, "null handle");
  const uint64_t n = d->dict.Count();
  if (count != nullptr) *count = n;
  return 0;
}

const char* StrError(int code) {
  const std::string_view text =
      shmdict::ErrorCodeDescription(static_cast<ErrorCode>(code));
  return text.data();  // the table's literals are NUL-terminated
}

const char* LastError() { return last_error.c_str(); }

int Fail(int code, const char* message) {
  return FailWith(static_cast<ErrorCode>(code), message);
}

}  // namespace shmdict_c_bridge
