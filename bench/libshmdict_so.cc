#include "bench/libshmdict_so.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <type_traits>

// The real declarations, only to check the mirror against (nothing here calls them
// directly, and this binary does not link the C API).
#include "api/shmdict_c.h"

namespace shmdict_bench_so {
namespace {

// ---------------------------------------------------------------------------------
// The mirror agrees with api/shmdict_c.h. The C handle's name is taken from the
// header (the first parameter of shmdict_close), so a renamed handle type still checks.

template <class F>
struct FirstParam;
template <class R, class P, class... A>
struct FirstParam<R (*)(P, A...)> {
  using type = P;
};
using CHandle = std::remove_pointer_t<FirstParam<decltype(&shmdict_close)>::type>;

// A mirror type, spelled with the C header's names.
template <class T>
struct InC {
  using type = T;
};
template <>
struct InC<Handle*> {
  using type = CHandle*;
};
template <>
struct InC<Handle**> {
  using type = CHandle**;
};
template <>
struct InC<const Options*> {
  using type = const shmdict_options*;
};
template <class F>
struct InCFn;
template <class R, class... A>
struct InCFn<R (*)(A...)> {
  using type = R (*)(typename InC<A>::type...);
};
template <class Mirror, class Real>
constexpr bool kAgree = std::is_same_v<typename InCFn<Mirror>::type, Real>;

static_assert(kAgree<decltype(Library::open), decltype(&shmdict_open)>);
static_assert(kAgree<decltype(Library::close), decltype(&shmdict_close)>);
static_assert(kAgree<decltype(Library::unlink), decltype(&shmdict_unlink)>);
static_assert(kAgree<decltype(Library::get), decltype(&shmdict_get)>);
static_assert(kAgree<decltype(Library::get_many), decltype(&shmdict_get_many)>);
static_assert(kAgree<decltype(Library::put), decltype(&shmdict_put)>);
static_assert(kAgree<decltype(Library::insert), decltype(&shmdict_insert)>);
static_assert(kAgree<decltype(Library::erase), decltype(&shmdict_erase)>);
static_assert(kAgree<decltype(Library::strerror), decltype(&shmdict_strerror)>);
static_assert(kAgree<decltype(Library::last_error), decltype(&shmdict_last_error)>);

static_assert(sizeof(Options) == sizeof(shmdict_options) &&
              offsetof(Options, capacity) == offsetof(shmdict_options, capacity) &&
              offsetof(Options, max_key_size) == offsetof(shmdict_options, max_key_size) &&
              offsetof(Options, max_value_size) == offsetof(shmdict_options, max_value_size) &&
              offsetof(Options, mode) == offsetof(shmdict_options, mode));
static_assert(kOk == SHMDICT_OK && kNotFound == SHMDICT_ENOTFOUND &&
              kExists == SHMDICT_EEXISTS && kCreate == SHMDICT_CREATE &&
              kExclusive == SHMDICT_EXCL);

// ---------------------------------------------------------------------------------

template <class F>
bool Resolve(void* lib, const char* name, F* out, std::string* error) {
  dlerror();
  void* sym = dlsym(lib, name);
  if (sym == nullptr) {
    const char* e = dlerror();
    *error = std::string(name) + ": " + (e != nullptr ? e : "no such symbol");
    return false;
  }
  *out = reinterpret_cast<F>(sym);
  return true;
}

bool Exists(const std::string& path) { return !path.empty() && access(path.c_str(), R_OK) == 0; }

}  // namespace

const Library* Load(const std::string& path, std::string* error) {
  static std::mutex mu;
  static Library* loaded = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded != nullptr) return loaded;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    *error = "dlopen " + path + ": " + (e != nullptr ? e : "failed");
    return nullptr;
  }
  auto* l = new Library{};
  l->path = path;
  std::string why;
  const bool ok = Resolve(lib, "shmdict_open", &l->open, &why) &&
                  Resolve(lib, "shmdict_close", &l->close, &why) &&
                  Resolve(lib, "shmdict_unlink", &l->unlink, &why) &&
                  Resolve(lib, "shmdict_get", &l->get, &why) &&
                  Resolve(lib, "shmdict_get_many", &l->get_many, &why) &&
                  Resolve(lib, "shmdict_put", &l->put, &why) &&
                  Resolve(lib, "shmdict_insert", &l->insert, &why) &&
                  Resolve(lib, "shmdict_erase", &l->erase, &why) &&
                  Resolve(lib, "shmdict_strerror", &l->strerror, &why) &&
                  Resolve(lib, "shmdict_last_error", &l->last_error, &why);
  if (!ok) {
    *error = path + ": " + why;
    delete l;
    dlclose(lib);
    return nullptr;
  }
  loaded = l;  // and the library stays loaded for the life of the process
  return loaded;
}

std::string FindBuiltLibrary(std::string* tried) {
  tried->clear();
  const char* ws_env = std::getenv("TEST_WORKSPACE");
  const std::string workspace = ws_env != nullptr && *ws_env != '\0' ? ws_env : "shmdict";
  const std::string rel = "/" + workspace + "/api/libshmdict.so";
  std::string candidates[4];
  int n = 0;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    const char* dir = std::getenv(var);
    if (dir != nullptr && *dir != '\0') candidates[n++] = dir + rel;
  }
  char exe[PATH_MAX];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len > 0) {
    const std::string self(exe, static_cast<size_t>(len));
    candidates[n++] = self + ".runfiles" + rel;
    const size_t slash = self.rfind('/');
    if (slash != std::string::npos) {
      candidates[n++] = self.substr(0, slash) + "/../api/libshmdict.so";
    }
  }
  for (int i = 0; i < n; ++i) {
    if (Exists(candidates[i])) return candidates[i];
    *tried += (tried->empty() ? "" : ", ") + candidates[i];
  }
  return "";
}

}  // namespace shmdict_bench_so
