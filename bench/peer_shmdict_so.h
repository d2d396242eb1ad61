// shmdict through libshmdict.so, as a store of the peer benchmark (bench/peer.h): the
// library is loaded with dlopen and called through the shmdict_* C functions dlsym
// resolves (bench/libshmdict_so.h), as C programs and foreign-function interfaces call
// it. The same engine as ShmdictPeer (bench/peer_shmdict.h), built as a shared,
// position-independent library behind the C ABI.
#ifndef SHMDICT_BENCH_PEER_SHMDICT_SO_H_
#define SHMDICT_BENCH_PEER_SHMDICT_SO_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/optimization.h"
#include "bench/libshmdict_so.h"
#include "bench/peer.h"
#include "bench/workload.h"

namespace shmdict::bench {

class ShmdictSoPeer {
 public:
  static constexpr char kName[] = "shmdict_so";

  // The library to load; empty: the one built with this binary
  // (shmdict_bench_so::FindBuiltLibrary). Takes effect before the first store is made.
  static void SetLibraryPath(std::string path) { LibraryPath() = std::move(path); }

  // The loaded library; dies if it cannot be found or loaded.
  static const shmdict_bench_so::Library& Library() {
    static const shmdict_bench_so::Library* lib = [] {
      std::string path = LibraryPath();
      if (path.empty()) {
        std::string tried;
        path = shmdict_bench_so::FindBuiltLibrary(&tried);
        if (path.empty()) {
          Die("shmdict_so: libshmdict.so not found (looked at " + tried +
              "); build //api:libshmdict.so and pass --libshmdict=PATH");
        }
      }
      std::string error;
      const shmdict_bench_so::Library* l = shmdict_bench_so::Load(path, &error);
      if (l == nullptr) Die("shmdict_so: " + error);
      return l;
    }();
    return *lib;
  }

  static std::unique_ptr<ShmdictSoPeer> Create(const PeerConfig& config) {
    const shmdict_bench_so::Library& lib = Library();
    const std::string path = "/dev/shm/" + config.name;
    shmdict_bench_so::Options options{};
    options.capacity = config.keys;
    options.max_key_size = kKeySize;
    options.max_value_size = config.value_size;
    shmdict_bench_so::Handle* h = nullptr;
    const int rc = lib.open(path.c_str(), shmdict_bench_so::kCreate | shmdict_bench_so::kExclusive,
                            &options, &h);
    if (rc != shmdict_bench_so::kOk) Fail(lib, "creating " + path, rc);
    RegisterForRemoval(path);
    return std::unique_ptr<ShmdictSoPeer>(new ShmdictSoPeer(lib, h, path, true));
  }

  ~ShmdictSoPeer() {
    lib_.close(handle_);
    if (owner_ && !IsChildProcess()) {
      (void)lib_.unlink(path_.c_str());
      ForgetRemoval(path_);
    }
  }

  bool Get(std::string_view key, char* buf, size_t capacity, size_t* len) {
    const int rc = lib_.get(handle_, key.data(), key.size(), buf, capacity, len, nullptr);
    if (ABSL_PREDICT_TRUE(rc == shmdict_bench_so::kOk)) return true;
    if (ABSL_PREDICT_TRUE(rc == shmdict_bench_so::kNotFound)) return false;
    Fail(lib_, "shmdict_get", rc);
  }

  void Put(std::string_view key, std::string_view value) {
    const int rc = lib_.put(handle_, key.data(), key.size(), value.data(), value.size(), nullptr);
    if (ABSL_PREDICT_FALSE(rc != shmdict_bench_so::kOk)) Fail(lib_, "shmdict_put", rc);
  }

  bool Insert(std::string_view key, std::string_view value) {
    const int rc =
        lib_.insert(handle_, key.data(), key.size(), value.data(), value.size(), nullptr);
    if (ABSL_PREDICT_TRUE(rc == shmdict_bench_so::kOk)) return true;
    if (rc == shmdict_bench_so::kExists) return false;
    Fail(lib_, "shmdict_insert", rc);
  }

  bool Erase(std::string_view key) {
    const int rc = lib_.erase(handle_, key.data(), key.size());
    if (ABSL_PREDICT_TRUE(rc == shmdict_bench_so::kOk)) return true;
    if (rc == shmdict_bench_so::kNotFound) return false;
    Fail(lib_, "shmdict_erase", rc);
  }

  void Load(const std::vector<uint64_t>& ids, ValueMaker& values) {
    char key[kKeySize];
    for (uint64_t id : ids) {
      MakeKey(id, key);
      if (!Insert(std::string_view(key, kKeySize), values.Make(id, 0))) {
        Die("shmdict_so: loading: key " + KeyString(id) + " inserted twice");
      }
    }
  }

  std::unique_ptr<ShmdictSoPeer> OpenAgain() const {
    shmdict_bench_so::Handle* h = nullptr;
    const int rc = lib_.open(path_.c_str(), 0, nullptr, &h);
    if (rc != shmdict_bench_so::kOk) Fail(lib_, "opening " + path_ + " again", rc);
    return std::unique_ptr<ShmdictSoPeer>(new ShmdictSoPeer(lib_, h, path_, false));
  }

  // shmdict_get_many of n keys: the number found; dies on any other error.
  size_t GetMany(size_t n, const void* const* keys, const size_t* key_lens, void* const* values,
                 const size_t* value_caps, size_t* value_lens, int* results) {
    const int rc = lib_.get_many(handle_, n, keys, key_lens, values, value_caps, value_lens,
                                 nullptr, results);
    if (ABSL_PREDICT_FALSE(rc != shmdict_bench_so::kOk)) Fail(lib_, "shmdict_get_many", rc);
    size_t found = 0;
    for (size_t i = 0; i < n; ++i) {
      if (ABSL_PREDICT_TRUE(results[i] == shmdict_bench_so::kOk)) {
        ++found;
      } else if (results[i] != shmdict_bench_so::kNotFound) {
        Fail(lib_, "shmdict_get_many (one key)", results[i]);
      }
    }
    return found;
  }

 private:
  ShmdictSoPeer(const shmdict_bench_so::Library& lib, shmdict_bench_so::Handle* handle,
                std::string path, bool owner)
      : lib_(lib), handle_(handle), path_(std::move(path)), owner_(owner) {}

  static std::string& LibraryPath() {
    static std::string path;
    return path;
  }

  [[noreturn]] static void Fail(const shmdict_bench_so::Library& lib, const std::string& what,
                                int rc) {
    Die("shmdict_so: " + what + ": " + lib.strerror(rc) + " (" + lib.last_error() + ")");
  }

  const shmdict_bench_so::Library& lib_;
  shmdict_bench_so::Handle* handle_;
  std::string path_;
  bool owner_;
};

}  // namespace shmdict::bench

#endif  // SHMDICT_BENCH_PEER_SHMDICT_SO_H_
