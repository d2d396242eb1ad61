// libshmdict.so loaded at run time, the way C programs' and other languages'
// foreign-function interfaces (Python ctypes, cgo, Rust) use shmdict: dlopen, then the
// exported shmdict_* functions of api/shmdict_c.h called through the addresses dlsym
// gives. The benchmarks measure the shared library through this, next to the static
// C++ API.
//
// This header mentions neither the C handle type `shmdict` nor the C++ namespace
// `shmdict` (which clash in one translation unit), so both sides can include it. Its
// declarations mirror api/shmdict_c.h; libshmdict_so.cc checks at compile time that the
// mirror and the real header agree (function types, option struct layout, codes).
#ifndef SHMDICT_BENCH_LIBSHMDICT_SO_H_
#define SHMDICT_BENCH_LIBSHMDICT_SO_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace shmdict_bench_so {

// The C API's opaque handle (`shmdict` in api/shmdict_c.h).
struct Handle;

// shmdict_options.
struct Options {
  uint64_t capacity;
  uint32_t max_key_size;
  uint32_t max_value_size;
  uint32_t mode;
};

// The codes and flags the benchmarks use.
inline constexpr int kOk = 0;
inline constexpr int kNotFound = -1;
inline constexpr int kExists = -2;
inline constexpr int kCreate = 0x1;
inline constexpr int kExclusive = 0x2;

// The functions, as dlsym resolved them in the library. Thread-safe to share.
struct Library {
  std::string path;  // the file dlopen loaded
  int (*open)(const char* path, int flags, const Options* opts, Handle** out);
  int (*close)(Handle* d);
  int (*unlink)(const char* path);
  int (*get)(Handle* d, const void* key, size_t key_len, void* value, size_t value_cap,
             size_t* value_len, uint64_t* version);
  int (*get_many)(Handle* d, size_t n, const void* const* keys, const size_t* key_lens,
                  void* const* values, const size_t* value_caps, size_t* value_lens,
                  uint64_t* versions, int* results);
  int (*put)(Handle* d, const void* key, size_t key_len, const void* value,
             size_t value_len, uint64_t* version);
  int (*insert)(Handle* d, const void* key, size_t key_len, const void* value,
                size_t value_len, uint64_t* version);
  int (*erase)(Handle* d, const void* key, size_t key_len);
  const char* (*strerror)(int code);
  const char* (*last_error)();
};

// Loads the library at `path` (RTLD_NOW | RTLD_LOCAL) and resolves every function
// above. The first successful call loads it; later calls return the same Library and
// ignore `path`. Null, with *error saying what failed (dlopen's or dlsym's message),
// if the file cannot be loaded or lacks a function.
const Library* Load(const std::string& path, std::string* error);

// Where the library built with the calling binary lies: the binary's Bazel runfiles
// (api/libshmdict.so, a data dependency of //bench:libshmdict_so), else
// <binary's directory>/../api/libshmdict.so (bazel-bin's layout). Empty if neither
// exists; *tried lists the paths looked at.
std::string FindBuiltLibrary(std::string* tried);

}  // namespace shmdict_bench_so

#endif  // SHMDICT_BENCH_LIBSHMDICT_SO_H_
