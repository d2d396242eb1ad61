#include "bench/workload.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>

namespace shmdict::bench {

void MakeKey(uint64_t id, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t x = Mix(id);
  for (int i = static_cast<int>(kKeySize) - 1; i >= 0; --i) {
    out[i] = kHex[x & 0xF];
    x >>= 4;
  }
}

std::string KeyString(uint64_t id) {
  std::string s(kKeySize, '\0');
  MakeKey(id, s.data());
  return s;
}

ValueMaker::ValueMaker(size_t size) : buf_(size, 'v') {
  if (size == 0 || size % 8 != 0) Die("value sizes must be positive multiples of 8");
}

std::string_view ValueMaker::Make(uint64_t id, uint64_t revision) {
  const uint64_t stamp = Stamp(id, revision);
  const size_t words = buf_.size() / 8;
  if (words <= 8) {
    for (size_t w = 0; w < words; ++w) std::memcpy(&buf_[w * 8], &stamp, 8);
  } else {
    std::memcpy(&buf_[0], &stamp, 8);
    std::memcpy(&buf_[(words - 1) * 8], &stamp, 8);
  }
  return std::string_view(buf_.data(), buf_.size());
}

bool CheckValue(const char* value, size_t len, size_t size, uint64_t id) {
  if (len != size || size < 8) return false;
  uint64_t first;
  std::memcpy(&first, value, 8);
  if ((first >> 32) != id) return false;
  const size_t words = size / 8;
  if (words <= 8) {
    for (size_t w = 1; w < words; ++w) {
      uint64_t x;
      std::memcpy(&x, value + w * 8, 8);
      if (x != first) return false;
    }
    return true;
  }
  uint64_t last;
  std::memcpy(&last, value + (words - 1) * 8, 8);
  return last == first;
}

KeyStream KeyStream::Uniform(uint64_t first, uint64_t count, size_t length,
                             uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, count - 1);
  std::vector<uint64_t> ids(length);
  for (uint64_t& id : ids) id = first + pick(rng);
  return FromIds(std::move(ids));
}

KeyStream KeyStream::FromIds(std::vector<uint64_t> ids) {
  const size_t n = ids.size();
  if (n == 0 || (n & (n - 1)) != 0) Die("key stream length must be a power of two");
  KeyStream s;
  s.bytes_.resize(n * kKeySize);
  for (size_t j = 0; j < n; ++j) MakeKey(ids[j], &s.bytes_[j * kKeySize]);
  s.ids_ = std::move(ids);
  s.mask_ = n - 1;
  return s;
}

Zipf::Zipf(uint64_t n, double s) : cdf_(n) {
  double sum = 0;
  for (uint64_t r = 0; r < n; ++r) {
    sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
    cdf_[r] = sum;
  }
  for (double& c : cdf_) c /= sum;
}

uint64_t Zipf::Sample(std::mt19937_64& rng) const {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) --it;
  return static_cast<uint64_t>(it - cdf_.begin());
}

size_t StreamLength(uint64_t keys) {
  size_t length = size_t{1} << 13;
  while (length < 8 * keys && length < (size_t{1} << 20)) length *= 2;
  return length;
}

double TicksPerNs() {
  static const double ticks_per_ns = [] {
    // Two 20 ms windows; the faster estimate wins against a preemption in one.
    double best = 0;
    for (int i = 0; i < 2; ++i) {
      const int64_t t0 = NowNs();
      const uint64_t c0 = Ticks();
      while (NowNs() - t0 < 20'000'000) {
      }
      const uint64_t c1 = Ticks();
      const int64_t t1 = NowNs();
      const double r = static_cast<double>(c1 - c0) / static_cast<double>(t1 - t0);
      if (i == 0 || r < best) best = r;
    }
    return best;
  }();
  return ticks_per_ns;
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t Quantile(std::vector<uint32_t>& samples, double q) {
  if (samples.empty()) return 0;
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
  if (k > 0) --k;
  k = std::min(k, samples.size() - 1);
  std::nth_element(samples.begin(), samples.begin() + static_cast<ptrdiff_t>(k),
                   samples.end());
  return samples[k];
}

namespace {

// Fixed storage, so that the signal handler needs no allocation.
constexpr int kMaxRegistered = 64;
struct Registered {
  char path[240];
  bool is_dir;
};
Registered g_registered[kMaxRegistered];
volatile sig_atomic_t g_registered_count = 0;
volatile sig_atomic_t g_child = 0;
std::once_flag g_handlers_once;

void RemoveAllUnsafe() {
  if (g_child) return;
  for (int i = g_registered_count - 1; i >= 0; --i) {
    Registered& r = g_registered[i];
    if (r.path[0] == '\0') continue;
    if (r.is_dir) {
      rmdir(r.path);
    } else {
      unlink(r.path);
    }
    r.path[0] = '\0';
  }
}

void RemoveAndDie(int sig) {
  RemoveAllUnsafe();
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void RegisterForRemoval(const std::string& path, bool is_dir) {
  std::call_once(g_handlers_once, [] {
    std::atexit(RemoveRegistered);
    signal(SIGINT, RemoveAndDie);
    signal(SIGTERM, RemoveAndDie);
  });
  if (path.size() >= sizeof(g_registered[0].path)) Die("path too long: " + path);
  for (int i = 0; i < g_registered_count; ++i) {
    if (g_registered[i].path[0] == '\0') {
      std::snprintf(g_registered[i].path, sizeof(g_registered[i].path), "%s",
                    path.c_str());
      g_registered[i].is_dir = is_dir;
      return;
    }
  }
  if (g_registered_count >= kMaxRegistered) Die("too many files to clean up");
  Registered& r = g_registered[g_registered_count];
  std::snprintf(r.path, sizeof(r.path), "%s", path.c_str());
  r.is_dir = is_dir;
  g_registered_count = g_registered_count + 1;
}

void ForgetRemoval(const std::string& path) {
  for (int i = 0; i < g_registered_count; ++i) {
    if (path == g_registered[i].path) g_registered[i].path[0] = '\0';
  }
}

void RemoveRegistered() { RemoveAllUnsafe(); }

void MarkChildProcess() { g_child = 1; }
bool IsChildProcess() { return g_child != 0; }

void Die(const std::string& message) {
  std::fprintf(stderr, "peer_bench%s: %s\n", g_child ? " (writer process)" : "",
               message.c_str());
  std::fflush(stderr);
  if (g_child) _exit(1);
  RemoveAllUnsafe();
  std::exit(1);
}

void JsonLine::Key(std::string_view key) {
  if (!body_.empty()) body_ += ",";
  body_ += "\"";
  body_.append(key.data(), key.size());
  body_ += "\":";
}

JsonLine& JsonLine::Str(std::string_view key, std::string_view value) {
  Key(key);
  body_ += "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      body_ += '\\';
      body_ += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", static_cast<unsigned char>(c));
      body_ += esc;
    } else {
      body_ += c;
    }
  }
  body_ += "\"";
  return *this;
}

JsonLine& JsonLine::Num(std::string_view key, double value) {
  Key(key);
  if (!std::isfinite(value)) {
    body_ += "null";
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", value);
    body_ += buf;
  }
  return *this;
}

JsonLine& JsonLine::Int(std::string_view key, int64_t value) {
  Key(key);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::NumArray(std::string_view key, const std::vector<double>& values) {
  Key(key);
  body_ += "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) body_ += ",";
    char buf[32];
    if (std::isfinite(values[i])) {
      std::snprintf(buf, sizeof(buf), "%.6g", values[i]);
    } else {
      std::snprintf(buf, sizeof(buf), "null");
    }
    body_ += buf;
  }
  body_ += "]";
  return *this;
}

JsonLine& JsonLine::Raw(std::string_view key, std::string_view json) {
  Key(key);
  body_.append(json.data(), json.size());
  return *this;
}

}  // namespace shmdict::bench
