// shmdict._native: SharedDict's binding of the engine as a CPython extension module.
//
// shmdict/_dict.py defines SharedDict once, over a small "core" that it inherits from:
// this module's Core, or shmdict/_ctcore.py's Core (ctypes over libshmdict.so) where
// this module cannot be imported or SHMDICT_FORCE_CTYPES=1. Both cores have the same
// methods with the same behaviour, and the same tests run against each:
//   - the hot methods users call: get, __getitem__, __setitem__, __delitem__,
//     __contains__, get_many. Here they go from the Python call (METH_FASTCALL, or the
//     mapping slots) straight to shmdict::Dict (api/shmdict.h), with no ctypes and no
//     C ABI in between;
//   - _core_* primitives for the rest of SharedDict (shmdict/_ctcore.py documents each).
//
// Reads keep the GIL: the engine's lookups take no lock and never wait, and releasing
// and retaking the GIL would cost more than the lookup. Writes, waits, scans and open
// release it: a write may wait for a bucket lock held by another process.
//
// Values are read into one buffer that this module reuses (module state, guarded by
// the GIL), then copied into the one bytes object the serializer's loads gets; no
// Python code runs while the buffer holds a value, so a loads that reads the table
// again (or another thread) never finds it in use. A value longer than the buffer is
// read straight into a bytes object of its size.
//
// Lifetime: a Core holds its Dict in a shared_ptr. close() drops the Core's reference;
// a call that releases the GIL holds its own, so the table is closed when the last
// call in progress returns (as the ctypes core's handle does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "api/errors.h"
#include "api/get_many.h"
#include "api/options.h"
#include "api/shmdict.h"

namespace {

using ::shmdict::Dict;
using ::shmdict::ErrorCode;

// Flags of _core_open and _core_set: the C API's values (shmdict/_clib.py uses them
// too), so that shmdict/_dict.py passes the same numbers to either core.
constexpr int kCreate = 0x1;
constexpr int kExclusive = 0x2;
constexpr int kReadOnly = 0x4;
constexpr int kAllowGroup = 0x8;
constexpr int kIfAbsent = 0x1;
constexpr int kIfPresent = 0x2;

// The read buffer's first size; it grows to the largest value read up to kKeepLimit.
constexpr size_t kFirstBuffer = 4096;
constexpr size_t kKeepLimit = size_t{1} << 20;
// get_many: keys per Dict::GetMany call, and the per-key buffer's first and largest
// size (a longer value is read alone).
constexpr size_t kManyChunk = 64;
constexpr size_t kManyFirstStep = 256;
constexpr size_t kManyMaxStep = size_t{1} << 16;

// How a Core turns values into bytes and back (_core_serializer's `kind`).
enum Kind : int {
  kGeneric = 0,  // serializer.dumps / serializer.loads
  kPickle = 1,   // pickle.dumps(value, protocol) / pickle.loads, called directly
  kBytes = 2,    // bytes stored as they are; other values through serializer.dumps
};

// Module state. Every field is used with the GIL held.
struct State {
  PyObject* from_engine = nullptr;        // shmdict.errors._from_engine
  PyObject* no_key = nullptr;             // shmdict.errors._NO_KEY
  PyObject* table_not_found = nullptr;    // shmdict.errors.TableNotFoundError
  PyObject* pickle_dumps = nullptr;       // pickle.dumps
  PyObject* pickle_loads = nullptr;       // pickle.loads
  char* buf = nullptr;                    // the read buffer
  size_t cap = 0;
  char* many_buf = nullptr;               // get_many's buffers, kManyChunk * many_step
  size_t many_step = 0;
};
State g;

// --- errors --------------------------------------------------------------------------

// Raises shmdict.errors._from_engine(code, message, os_errno, key, cls): the same
// exception the ctypes core raises for the C API's code and message. `key` null: no
// key; `cls` null: the class of the code. Returns null.
PyObject* RaiseCode(ErrorCode code, std::string_view message, int os_errno, PyObject* key,
                    PyObject* cls) {
  PyObject* text = PyUnicode_DecodeUTF8(message.data(), static_cast<Py_ssize_t>(message.size()),
                                        "replace");
  if (text == nullptr) return nullptr;
  PyObject* args[5] = {nullptr, text, nullptr, key != nullptr ? key : g.no_key,
                       cls != nullptr ? cls : Py_None};
  args[0] = PyLong_FromLong(static_cast<long>(code));
  args[2] = PyLong_FromLong(os_errno);
  PyObject* exc = nullptr;
  if (args[0] != nullptr && args[2] != nullptr) {
    exc = PyObject_Vectorcall(g.from_engine, args, 5, nullptr);
  }
  Py_XDECREF(args[0]);
  Py_XDECREF(args[2]);
  Py_DECREF(text);
  if (exc == nullptr) return nullptr;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
  return nullptr;
}

// Raises the exception for a failed engine call, with the message the C API would
// give (shmdict_last_error: the status's message, or the code's description).
PyObject* RaiseStatus(const absl::Status& status, PyObject* key = nullptr,
                      PyObject* cls = nullptr) {
  const ErrorCode code = shmdict::ErrorCodeOf(status);
  std::string_view message(status.message().data(), status.message().size());
  if (message.empty()) message = shmdict::ErrorCodeDescription(code);
  const int os_errno = code == ErrorCode::kIo ? shmdict::OsErrnoOf(status) : 0;
  return RaiseCode(code, message, os_errno, key, cls);
}

// A scan that skipped corrupt slots (the C API's message).
PyObject* RaiseCorrupt(uint64_t corrupt) {
  const std::string message = std::to_string(corrupt) +
                              " corrupt slot(s) skipped: the table is damaged (shmdict "
                              "verify lists them)";
  return RaiseCode(ErrorCode::kBadFile, message, 0, nullptr, nullptr);
}

// absl::StatusCode is enough to tell the outcomes of the hot paths apart: only kNotFound
// maps to kNotFound, only kBuffer to kOutOfRange (api/errors.h), and the code is read
// without looking at the status's payload.
bool IsNotFoundCode(const absl::Status& s) { return s.code() == absl::StatusCode::kNotFound; }
bool IsBufferCode(const absl::Status& s) { return s.code() == absl::StatusCode::kOutOfRange; }
bool IsExistsCode(const absl::Status& s) { return s.code() == absl::StatusCode::kAlreadyExists; }

// --- arguments -----------------------------------------------------------------------

// type(o).__name__ (a new reference), or null with an exception.
PyObject* TypeName(PyObject* o) {
  PyObject* name = PyObject_GetAttrString(reinterpret_cast<PyObject*>(Py_TYPE(o)), "__name__");
  if (name != nullptr && !PyUnicode_Check(name)) {
    Py_DECREF(name);
    PyErr_SetString(PyExc_TypeError, "a type whose __name__ is not a str");
    return nullptr;
  }
  return name;
}

// A key as the engine sees it: str as UTF-8 (lone surrogates from undecodable bytes,
// as os.fsdecode makes them, back to those bytes), bytes as they are, bytearray and
// memoryview copied to bytes (shmdict/_dict.py's _key_bytes).
class KeyBytes {
 public:
  KeyBytes() = default;
  KeyBytes(const KeyBytes&) = delete;
  KeyBytes& operator=(const KeyBytes&) = delete;
  KeyBytes(KeyBytes&& other) noexcept
      : data_(other.data_), size_(other.size_), owned_(other.owned_) {
    other.owned_ = nullptr;
  }
  ~KeyBytes() { Py_XDECREF(owned_); }

  // False with TypeError (not a key type) or UnicodeEncodeError set.
  // REQUIRES: `key` outlives this object (its UTF-8 form may be the str's own cache).
  bool From(PyObject* key) {
    if (PyUnicode_Check(key)) {
      const char* s = PyUnicode_AsUTF8AndSize(key, &size_);
      if (s != nullptr) {
        data_ = s;
        return true;
      }
      if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return false;
      PyErr_Clear();
      return Own(PyUnicode_AsEncodedString(key, "utf-8", "surrogateescape"));
    }
    if (PyBytes_Check(key)) {
      data_ = PyBytes_AS_STRING(key);
      size_ = PyBytes_GET_SIZE(key);
      return true;
    }
    if (PyByteArray_Check(key) || PyMemoryView_Check(key)) {
      return Own(PyBytes_FromObject(key));
    }
    PyObject* name = TypeName(key);
    if (name != nullptr) {
      PyErr_Format(PyExc_TypeError, "shmdict keys are str or bytes, not %U", name);
      Py_DECREF(name);
    }
    return false;
  }

  std::string_view view() const {
    return size_ == 0 ? std::string_view() : std::string_view(data_, static_cast<size_t>(size_));
  }

 private:
  bool Own(PyObject* bytes) {
    if (bytes == nullptr) return false;
    owned_ = bytes;
    data_ = PyBytes_AS_STRING(bytes);
    size_ = PyBytes_GET_SIZE(bytes);
    return true;
  }

  const char* data_ = nullptr;
  Py_ssize_t size_ = 0;
  PyObject* owned_ = nullptr;
};

// Binds the arguments of a METH_FASTCALL | METH_KEYWORDS call by position and by name
// to out[0, total); out[i] stays null for an omitted optional argument. False with
// TypeError for a bad call.
bool BindArgs(const char* function, PyObject* const* args, Py_ssize_t nargs,
              PyObject* kwnames, const char* const* names, int required, int total,
              PyObject** out) {
  for (int i = 0; i < total; ++i) out[i] = nullptr;
  if (nargs > total) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", function,
                 total, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    int slot = -1;
    for (int i = 0; i < total; ++i) {
      if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) slot = i;
    }
    if (slot < 0) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function,
                   name);
      return false;
    }
    if (out[slot] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", function,
                   names[slot]);
      return false;
    }
    out[slot] = args[nargs + k];
  }
  for (int i = 0; i < required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function,
                   names[i]);
      return false;
    }
  }
  return true;
}

// Positional arguments only: exactly n of them.
bool CheckArgs(const char* function, Py_ssize_t nargs, Py_ssize_t n) {
  if (nargs == n) return true;
  PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)", function, n,
               nargs);
  return false;
}

// A bytes argument's view; false with TypeError otherwise.
bool BytesArg(const char* function, PyObject* o, std::string_view* out) {
  if (!PyBytes_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s() wants bytes, not %s", function, Py_TYPE(o)->tp_name);
    return false;
  }
  *out = std::string_view(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
  return true;
}

bool U64Arg(PyObject* o, uint64_t* out) {
  *out = PyLong_AsUnsignedLongLong(o);
  return !(*out == static_cast<uint64_t>(-1) && PyErr_Occurred());
}

bool I64Arg(PyObject* o, int64_t* out) {
  *out = PyLong_AsLongLong(o);
  return !(*out == -1 && PyErr_Occurred());
}

// The C API's ttl_ms as a Duration: 0 is "never"; values over the engine's maximum
// stay over it (Dict says kInvalid) without overflowing a Duration's arithmetic.
absl::Duration TtlOf(uint64_t ttl_ms) {
  if (ttl_ms == 0) return absl::InfiniteDuration();
  return absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(ttl_ms, uint64_t{1} << 62)));
}

// --- pickle's bytes for common values --------------------------------------------------
//
// pickle.dumps and pickle.loads cost more than the table's own lookup or write for
// small values (each builds and frees a pickler or unpickler). For the commonest
// values the native core writes, and recognizes, the exact bytes CPython's pickle
// writes at protocols 4 and 5 (Lib/pickle.py, Modules/_pickle.c): what it stores is
// byte for byte what pickle.dumps(value, protocol) returns, and what it decodes is
// what pickle.loads returns, so that both cores, and any process using pickle, read
// and write the same table alike. shmdict_test.py's PickleBytesTest compares both
// directions with pickle itself. Anything else goes through pickle.
//
//   PROTO p                    0x80 p                 p = 4 or 5
//   FRAME n                    0x95 n (8 bytes LE)    when the payload is >= 4 bytes
//   payload, one of:
//     SHORT_BINUNICODE n s     0x8c n s MEMOIZE       exact str, UTF-8 ("surrogatepass")
//                                                      under 256 bytes
//     SHORT_BINBYTES n s       'C' n s MEMOIZE        exact bytes under 256 bytes
//     BININT1 / BININT2 / BININT  'K' u8 / 'M' u16 / 'J' i32   exact int in int32 range
//     BINFLOAT                 'G' f64 (big-endian)   exact float
//     NONE / NEWTRUE / NEWFALSE   'N' / 0x88 / 0x89
//   STOP                       '.'
// MEMOIZE (0x94) follows a str or bytes (pickle memoizes them); the payload counts
// everything after the frame header, STOP included.
constexpr unsigned char kProto = 0x80;
constexpr unsigned char kFrame = 0x95;
constexpr unsigned char kShortBinUnicode = 0x8c;
constexpr unsigned char kShortBinBytes = 'C';
constexpr unsigned char kMemoize = 0x94;
constexpr unsigned char kBinInt1 = 'K';
constexpr unsigned char kBinInt2 = 'M';
constexpr unsigned char kBinInt = 'J';
constexpr unsigned char kBinFloat = 'G';
constexpr unsigned char kNone = 'N';
constexpr unsigned char kNewTrue = 0x88;
constexpr unsigned char kNewFalse = 0x89;
constexpr unsigned char kStop = '.';
constexpr size_t kFrameHeader = 9;
constexpr size_t kFrameMin = 4;

uint64_t DoubleBits(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

// Writes the pickle of an opcode payload (`payload`, STOP excluded) at `protocol`.
PyObject* PickleOf(int protocol, const unsigned char* payload, size_t n) {
  unsigned char out[2 + kFrameHeader + 2 + 255 + 2];
  size_t len = 0;
  out[len++] = kProto;
  out[len++] = static_cast<unsigned char>(protocol);
  const size_t framed = n + 1;  // with STOP
  if (framed >= kFrameMin) {
    out[len++] = kFrame;
    for (int i = 0; i < 8; ++i) out[len++] = static_cast<unsigned char>(framed >> (8 * i));
  }
  std::memcpy(out + len, payload, n);
  len += n;
  out[len++] = kStop;
  return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(out),
                                   static_cast<Py_ssize_t>(len));
}

// pickle.dumps(value, protocol) for the values above, as a new bytes object; null
// without an exception for any other value or protocol.
PyObject* PickleFast(PyObject* value, int protocol) {
  if (protocol != 4 && protocol != 5) return nullptr;
  unsigned char p[2 + 255 + 1];
  size_t n = 0;
  if (PyUnicode_CheckExact(value)) {
    Py_ssize_t size;
    const char* s = PyUnicode_AsUTF8AndSize(value, &size);
    if (s == nullptr) {  // lone surrogates: pickle writes them ("surrogatepass")
      PyErr_Clear();
      return nullptr;
    }
    if (size > 255) return nullptr;
    p[n++] = kShortBinUnicode;
    p[n++] = static_cast<unsigned char>(size);
    std::memcpy(p + n, s, static_cast<size_t>(size));
    n += static_cast<size_t>(size);
    p[n++] = kMemoize;
  } else if (PyBytes_CheckExact(value)) {
    const Py_ssize_t size = PyBytes_GET_SIZE(value);
    if (size > 255) return nullptr;
    p[n++] = kShortBinBytes;
    p[n++] = static_cast<unsigned char>(size);
    std::memcpy(p + n, PyBytes_AS_STRING(value), static_cast<size_t>(size));
    n += static_cast<size_t>(size);
    p[n++] = kMemoize;
  } else if (value == Py_None) {
    p[n++] = kNone;
  } else if (value == Py_True) {
    p[n++] = kNewTrue;
  } else if (value == Py_False) {
    p[n++] = kNewFalse;
  } else if (PyLong_CheckExact(value)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow != 0 || v < INT32_MIN || v > INT32_MAX) {
      PyErr_Clear();
      return nullptr;
    }
    const uint32_t u = static_cast<uint32_t>(static_cast<int32_t>(v));
    if ((u >> 16) != 0) {
      p[n++] = kBinInt;
      for (int i = 0; i < 4; ++i) p[n++] = static_cast<unsigned char>(u >> (8 * i));
    } else if ((u >> 8) != 0) {
      p[n++] = kBinInt2;
      p[n++] = static_cast<unsigned char>(u);
      p[n++] = static_cast<unsigned char>(u >> 8);
    } else {
      p[n++] = kBinInt1;
      p[n++] = static_cast<unsigned char>(u);
    }
  } else if (PyFloat_CheckExact(value)) {
    const uint64_t bits = DoubleBits(PyFloat_AS_DOUBLE(value));
    p[n++] = kBinFloat;
    for (int i = 7; i >= 0; --i) p[n++] = static_cast<unsigned char>(bits >> (8 * i));
  } else {
    return nullptr;
  }
  return PickleOf(protocol, p, n);
}

// pickle.loads(data[0, len)) when the bytes are one of the pickles above; null without
// an exception when they are not (or do not decode: pickle.loads then raises what it
// raises), null with an exception only when memory ran out.
PyObject* UnpickleFast(const char* data, size_t len) {
  const auto* b = reinterpret_cast<const unsigned char*>(data);
  if (len < 4 || b[0] != kProto || (b[1] != 4 && b[1] != 5) || b[len - 1] != kStop) {
    return nullptr;
  }
  size_t i = 2;
  if (b[i] == kFrame) {
    if (len < i + kFrameHeader + 2) return nullptr;
    uint64_t framed = 0;
    for (int k = 0; k < 8; ++k) framed |= uint64_t{b[i + 1 + k]} << (8 * k);
    i += kFrameHeader;
    if (framed != len - i || framed < kFrameMin) return nullptr;
  } else if (len - i >= kFrameMin) {
    return nullptr;  // pickle frames payloads of 4 bytes and more
  }
  const size_t rest = len - i;  // opcode ... STOP
  switch (b[i]) {
    case kShortBinUnicode:
    case kShortBinBytes: {
      if (rest < 4) return nullptr;
      const size_t n = b[i + 1];
      if (rest != n + 4 || b[i + 2 + n] != kMemoize) return nullptr;
      const char* s = data + i + 2;
      if (b[i] == kShortBinBytes) return PyBytes_FromStringAndSize(s, static_cast<Py_ssize_t>(n));
      PyObject* str = PyUnicode_DecodeUTF8(s, static_cast<Py_ssize_t>(n), "surrogatepass");
      if (str == nullptr && !PyErr_ExceptionMatches(PyExc_MemoryError)) PyErr_Clear();
      return str;
    }
    case kNone:
      if (rest != 2) return nullptr;
      Py_RETURN_NONE;
    case kNewTrue:
      if (rest != 2) return nullptr;
      Py_RETURN_TRUE;
    case kNewFalse:
      if (rest != 2) return nullptr;
      Py_RETURN_FALSE;
    case kBinInt1:
      if (rest != 3) return nullptr;
      return PyLong_FromLong(b[i + 1]);
    case kBinInt2:
      if (rest != 4) return nullptr;
      return PyLong_FromLong(b[i + 1] | (b[i + 2] << 8));
    case kBinInt: {
      if (rest != 6) return nullptr;
      uint32_t u = 0;
      for (int k = 0; k < 4; ++k) u |= uint32_t{b[i + 1 + k]} << (8 * k);
      return PyLong_FromLong(static_cast<int32_t>(u));
    }
    case kBinFloat: {
      if (rest != 10) return nullptr;
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[i + 1 + k];
      double x;
      std::memcpy(&x, &bits, sizeof(x));
      return PyFloat_FromDouble(x);
    }
    default:
      return nullptr;
  }
}

// --- the read buffer -----------------------------------------------------------------

// Grows the read buffer to hold `needed` bytes next time (up to kKeepLimit).
void GrowBuffer(size_t needed) {
  if (needed <= g.cap || needed > kKeepLimit) return;
  const size_t cap = std::min(std::max(needed, 2 * g.cap), kKeepLimit);
  char* buf = static_cast<char*>(std::realloc(g.buf, cap));
  if (buf == nullptr) return;  // keep the old one: the next long value is read alone
  g.buf = buf;
  g.cap = cap;
}

// ReadRaw's outcomes but the first lookup's success: `st` and `len` are what GetInto
// into the read buffer said.
PyObject* ReadRest(const Dict& d, std::string_view key, PyObject* key_obj, absl::Status st,
                   size_t len, bool* absent, uint64_t* version) {
  // Longer than the buffer: into a bytes object of the size it had (it may have grown
  // again meanwhile: loop).
  while (IsBufferCode(st)) {
    const size_t needed = len;
    PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(needed));
    if (bytes == nullptr) return nullptr;
    st = d.GetInto(key, PyBytes_AS_STRING(bytes), needed, &len, version);
    if (st.ok()) {
      GrowBuffer(len);
      if (len != needed && _PyBytes_Resize(&bytes, static_cast<Py_ssize_t>(len)) != 0) {
        return nullptr;
      }
      return bytes;
    }
    Py_DECREF(bytes);
  }
  if (IsNotFoundCode(st)) {
    *absent = true;
    return nullptr;
  }
  return RaiseStatus(st, key_obj);
}

// The stored bytes of `key` as a new bytes object, and its version if `version` is not
// null. Null with *absent = true when the key is absent (no exception); null with an
// exception on errors (`key_obj` names the key in the message).
PyObject* ReadRaw(const Dict& d, std::string_view key, PyObject* key_obj, bool* absent,
                  uint64_t* version = nullptr) {
  *absent = false;
  size_t len = 0;
  absl::Status st = d.GetInto(key, g.buf, g.cap, &len, version);
  if (st.ok()) return PyBytes_FromStringAndSize(g.buf, static_cast<Py_ssize_t>(len));
  return ReadRest(d, key, key_obj, std::move(st), len, absent, version);
}

// --- Core ----------------------------------------------------------------------------

struct Core {
  PyObject_HEAD
  std::shared_ptr<Dict> dict;  // null: closed (or not yet opened)
  PyObject* serializer;        // for messages
  PyObject* dumps;             // serializer.dumps
  PyObject* loads;             // serializer.loads
  PyObject* protocol;          // kPickle: the protocol, an int
  int pickle_protocol;         // the same as a C int
  int kind;
};

Core* AsCore(PyObject* o) { return reinterpret_cast<Core*>(o); }

// The open Dict, or null with ClosedError (made by SharedDict._closed_error, which
// names the table) set.
Dict* Live(PyObject* self) {
  Dict* d = AsCore(self)->dict.get();
  if (d != nullptr) return d;
  PyObject* exc = PyObject_CallMethod(self, "_closed_error", nullptr);
  if (exc != nullptr) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
  }
  return nullptr;
}

// The Dict for a call that releases the GIL: a reference of its own keeps the table
// open until the call returns, whatever close() does meanwhile. Null: ClosedError set.
std::shared_ptr<Dict> Hold(PyObject* self) {
  if (Live(self) == nullptr) return nullptr;
  return AsCore(self)->dict;
}

// serializer.loads(raw); steals raw.
PyObject* Decode(Core* self, PyObject* raw) {
  if (raw == nullptr) return nullptr;
  PyObject* value;
  switch (self->kind) {
    case kBytes:
      return raw;
    case kPickle:
      value = PyObject_Vectorcall(g.pickle_loads, &raw, 1, nullptr);
      break;
    default:
      if (self->loads == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "shmdict: SharedDict has no serializer");
        value = nullptr;
      } else {
        value = PyObject_CallOneArg(self->loads, raw);
      }
      break;
  }
  Py_DECREF(raw);
  return value;
}

// The serialized form of `value`: a bytes object (new reference), or null with an
// exception (what dumps raised; TypeError when it returned something not bytes-like).
PyObject* Encode(Core* self, PyObject* value) {
  PyObject* data;
  if (self->kind == kPickle) {
    PyObject* fast = PickleFast(value, self->pickle_protocol);
    if (fast != nullptr || PyErr_Occurred()) return fast;
    if (self->protocol == nullptr) {  // cleared by the garbage collector
      PyErr_SetString(PyExc_RuntimeError, "shmdict: SharedDict has no serializer");
      return nullptr;
    }
    PyObject* args[2] = {value, self->protocol};
    data = PyObject_Vectorcall(g.pickle_dumps, args, 2, nullptr);
  } else if (self->kind == kBytes && PyBytes_CheckExact(value)) {
    Py_INCREF(value);
    return value;
  } else if (self->dumps == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "shmdict: SharedDict has no serializer");
    return nullptr;
  } else {
    data = PyObject_CallOneArg(self->dumps, value);
  }
  if (data == nullptr || PyBytes_CheckExact(data)) return data;
  PyObject* bytes = nullptr;
  if (PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data)) {
    bytes = PyBytes_FromObject(data);
  } else {
    PyObject* name = TypeName(data);
    if (name != nullptr) {
      PyErr_Format(PyExc_TypeError, "%R.dumps returned %U, not bytes", self->serializer,
                   name);
      Py_DECREF(name);
    }
  }
  Py_DECREF(data);
  return bytes;
}

std::string_view ViewOf(PyObject* bytes) {
  return std::string_view(PyBytes_AS_STRING(bytes), static_cast<size_t>(PyBytes_GET_SIZE(bytes)));
}

// The value of `key`, decoded by the serializer; null with *absent = true when the key
// is absent (no exception), null with an exception on errors.
PyObject* ReadValue(Core* self, const Dict& d, std::string_view key, PyObject* key_obj,
                    bool* absent) {
  *absent = false;
  size_t len = 0;
  absl::Status st = d.GetInto(key, g.buf, g.cap, &len);
  if (st.ok()) {
    if (self->kind == kPickle) {
      PyObject* value = UnpickleFast(g.buf, len);
      if (value != nullptr || PyErr_Occurred()) return value;
    }
    return Decode(self, PyBytes_FromStringAndSize(g.buf, static_cast<Py_ssize_t>(len)));
  }
  return Decode(self, ReadRest(d, key, key_obj, std::move(st), len, absent, nullptr));
}

// get(key, default=None): the value of key, or default if absent.
PyObject* CoreGet(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  static const char* const kNames[] = {"key", "default"};
  PyObject* a[2];
  if (!BindArgs("get", args, nargs, kwnames, kNames, 1, 2, a)) return nullptr;
  const Dict* d = Live(self);
  if (d == nullptr) return nullptr;
  KeyBytes key;
  if (!key.From(a[0])) return nullptr;
  bool absent;
  PyObject* value = ReadValue(AsCore(self), *d, key.view(), a[0], &absent);
  if (value == nullptr && absent) {
    PyObject* dflt = a[1] != nullptr ? a[1] : Py_None;
    Py_INCREF(dflt);
    return dflt;
  }
  return value;
}

// self[key]: KeyNotFoundError (a KeyError) if absent.
PyObject* CoreSubscript(PyObject* self, PyObject* key_obj) {
  const Dict* d = Live(self);
  if (d == nullptr) return nullptr;
  KeyBytes key;
  if (!key.From(key_obj)) return nullptr;
  bool absent;
  PyObject* value = ReadValue(AsCore(self), *d, key.view(), key_obj, &absent);
  if (value == nullptr && absent) RaiseCode(ErrorCode::kNotFound, "", 0, key_obj, nullptr);
  return value;
}

// self[key] = value; del self[key].
int CoreAssSubscript(PyObject* self, PyObject* key_obj, PyObject* value) {
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return -1;
  KeyBytes key;
  if (!key.From(key_obj)) return -1;
  if (value == nullptr) {
    absl::Status st;
    Py_BEGIN_ALLOW_THREADS
    st = d->Erase(key.view());
    Py_END_ALLOW_THREADS
    if (st.ok()) return 0;
    RaiseStatus(st, key_obj);
    return -1;
  }
  PyObject* data = Encode(AsCore(self), value);
  if (data == nullptr) return -1;
  absl::StatusOr<uint64_t> version;
  Py_BEGIN_ALLOW_THREADS
  version = d->Put(key.view(), ViewOf(data));
  Py_END_ALLOW_THREADS
  Py_DECREF(data);
  if (version.ok()) return 0;
  RaiseStatus(version.status(), key_obj);
  return -1;
}

// key in self: False for a key of another type than str or bytes.
int CoreContains(PyObject* self, PyObject* key_obj) {
  const Dict* d = Live(self);
  if (d == nullptr) return -1;
  KeyBytes key;
  if (!key.From(key_obj)) {
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
    PyErr_Clear();
    return 0;
  }
  // A zero-byte buffer: present is OK (an empty value) or kBuffer; nothing is copied.
  size_t len = 0;
  const absl::Status st = d->GetInto(key.view(), nullptr, 0, &len);
  if (st.ok() || IsBufferCode(st)) return 1;
  if (IsNotFoundCode(st)) return 0;
  RaiseStatus(st, key_obj);
  return -1;
}

// get_many(keys, default=None): [self.get(k, default) for k in keys], in Dict::GetMany
// calls of kManyChunk keys.
PyObject* CoreGetMany(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames) {
  static const char* const kNames[] = {"keys", "default"};
  PyObject* a[2];
  if (!BindArgs("get_many", args, nargs, kwnames, kNames, 1, 2, a)) return nullptr;
  PyObject* dflt = a[1] != nullptr ? a[1] : Py_None;
  if (Live(self) == nullptr) return nullptr;
  PyObject* seq = PySequence_Fast(a[0], "get_many() wants an iterable of keys");
  if (seq == nullptr) return nullptr;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  std::vector<KeyBytes> keys(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!keys[i].From(PySequence_Fast_GET_ITEM(seq, i))) {
      Py_DECREF(seq);
      return nullptr;
    }
  }
  PyObject* out = PyList_New(n);
  if (out == nullptr) {
    Py_DECREF(seq);
    return nullptr;
  }
  PyObject* raws[kManyChunk];  // a value's bytes, or the value itself (decoded[i])
  bool decoded[kManyChunk];
  bool too_long[kManyChunk];
  std::string_view views[kManyChunk];
  absl::Span<char> spans[kManyChunk];
  shmdict::GetManyResult results[kManyChunk];
  for (Py_ssize_t start = 0; start < n; start += kManyChunk) {
    // Looked up afresh for each chunk: a loads below may have closed the table or run
    // get_many itself (which may have grown the buffers).
    const Dict* d = Live(self);
    if (d == nullptr) goto fail;
    const size_t m = std::min<size_t>(kManyChunk, static_cast<size_t>(n - start));
    if (g.many_buf == nullptr) {
      g.many_buf = static_cast<char*>(std::malloc(kManyChunk * g.many_step));
      if (g.many_buf == nullptr) {
        PyErr_NoMemory();
        goto fail;
      }
    }
    const size_t step = g.many_step;
    for (size_t i = 0; i < m; ++i) {
      views[i] = keys[start + i].view();
      spans[i] = absl::Span<char>(g.many_buf + i * step, step);
    }
    const absl::StatusOr<size_t> found = d->GetMany(absl::MakeConstSpan(views, m),
                                                    absl::MakeConstSpan(spans, m),
                                                    absl::MakeSpan(results, m));
    if (!found.ok()) {
      RaiseStatus(found.status());
      goto fail;
    }
    // The bytes of every value found, before any Python code runs (loads may use the
    // buffers for a get_many of its own).
    size_t longest = 0;
    for (size_t i = 0; i < m; ++i) {
      raws[i] = nullptr;
      decoded[i] = false;
      too_long[i] = false;
      const absl::Status& st = results[i].status;
      if (st.ok()) {
        if (AsCore(self)->kind == kPickle) {
          raws[i] = UnpickleFast(spans[i].data(), results[i].value_len);
          decoded[i] = raws[i] != nullptr;
        }
        if (raws[i] == nullptr && !PyErr_Occurred()) {
          raws[i] = PyBytes_FromStringAndSize(spans[i].data(),
                                              static_cast<Py_ssize_t>(results[i].value_len));
        }
        if (raws[i] == nullptr) {
          for (size_t j = 0; j < i; ++j) Py_XDECREF(raws[j]);
          goto fail;
        }
      } else if (IsBufferCode(st)) {
        too_long[i] = true;
        longest = std::max(longest, results[i].value_len);
      } else if (!IsNotFoundCode(st)) {
        for (size_t j = 0; j < i; ++j) Py_XDECREF(raws[j]);
        const ErrorCode code = shmdict::ErrorCodeOf(st);
        std::string message = "get_many: ";
        message += shmdict::ErrorCodeDescription(code);
        PyObject* kb = PyBytes_FromStringAndSize(views[i].data(),
                                                 static_cast<Py_ssize_t>(views[i].size()));
        if (kb != nullptr) {
          RaiseCode(code, message, 0, kb, nullptr);
          Py_DECREF(kb);
        }
        goto fail;
      }
    }
    if (longest > 0) {
      // Later chunks get buffers that fit such values (up to kManyMaxStep).
      size_t next = g.many_step;
      while (next < longest && next < kManyMaxStep) next *= 2;
      if (next != g.many_step) {
        std::free(g.many_buf);
        g.many_buf = nullptr;
        g.many_step = next;
      }
    }
    for (size_t i = 0; i < m; ++i) {
      PyObject* value;
      if (too_long[i]) {
        // Read alone (it may have changed, or gone, since).
        const Dict* again = Live(self);
        bool absent = false;
        PyObject* raw = again == nullptr ? nullptr
                                         : ReadRaw(*again, views[i],
                                                   PySequence_Fast_GET_ITEM(seq, start + i),
                                                   &absent);
        if (raw == nullptr && absent) {
          Py_INCREF(dflt);
          value = dflt;
        } else {
          value = Decode(AsCore(self), raw);
        }
      } else if (raws[i] == nullptr) {
        Py_INCREF(dflt);
        value = dflt;
      } else if (decoded[i]) {
        value = raws[i];
        raws[i] = nullptr;
      } else {
        value = Decode(AsCore(self), raws[i]);
        raws[i] = nullptr;
      }
      if (value == nullptr) {
        for (size_t j = i + 1; j < m; ++j) Py_XDECREF(raws[j]);
        goto fail;
      }
      PyList_SET_ITEM(out, start + static_cast<Py_ssize_t>(i), value);
    }
  }
  Py_DECREF(seq);
  return out;
fail:
  Py_DECREF(seq);
  Py_DECREF(out);
  return nullptr;
}

// --- primitives (shmdict/_ctcore.py's Core documents each) ----------------------------

PyObject* CoreOpen(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_open", nargs, 3)) return nullptr;
  std::string_view path_view;
  if (!BytesArg("_core_open", args[0], &path_view)) return nullptr;
  const long flags = PyLong_AsLong(args[1]);
  if (flags == -1 && PyErr_Occurred()) return nullptr;
  if (path_view.find('\0') != std::string_view::npos) {
    return RaiseCode(ErrorCode::kInvalid, "table name contains a NUL character", 0, nullptr,
                     nullptr);
  }
  shmdict::OpenOptions o;
  o.create = (flags & kCreate) != 0;
  o.exclusive = (flags & kExclusive) != 0;
  o.read_only = (flags & kReadOnly) != 0;
  o.allow_group = (flags & kAllowGroup) != 0;
  if (o.create) {
    PyObject* opts = args[2];
    if (!PyTuple_Check(opts) || PyTuple_GET_SIZE(opts) != 5) {
      return RaiseCode(ErrorCode::kInvalid, "SHMDICT_CREATE needs options", 0, nullptr,
                       nullptr);
    }
    uint64_t v[5];
    for (int i = 0; i < 5; ++i) {
      if (!U64Arg(PyTuple_GET_ITEM(opts, i), &v[i])) return nullptr;
    }
    o.capacity = v[0];
    o.max_key_size = static_cast<uint32_t>(v[1]);
    o.max_value_size = static_cast<uint32_t>(v[2]);
    o.mode = v[3] == 0 ? 0600 : static_cast<uint32_t>(v[3]);
    if (v[4] != static_cast<uint64_t>(shmdict::Eviction::kNone) &&
        v[4] != static_cast<uint64_t>(shmdict::Eviction::kLrs)) {
      return RaiseCode(ErrorCode::kInvalid,
                       "eviction is neither SHMDICT_EVICT_NONE nor SHMDICT_EVICT_LRS", 0,
                       nullptr, nullptr);
    }
    o.eviction = static_cast<shmdict::Eviction>(v[4]);
  }
  const std::string path(path_view);
  absl::StatusOr<Dict> dict = absl::UnknownError("");
  Py_BEGIN_ALLOW_THREADS
  dict = Dict::Open(path, o);
  Py_END_ALLOW_THREADS
  if (!dict.ok()) {
    return RaiseStatus(dict.status(), nullptr,
                       IsNotFoundCode(dict.status()) ? g.table_not_found : nullptr);
  }
  try {
    AsCore(self)->dict = std::make_shared<Dict>(std::move(*dict));
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  Py_RETURN_NONE;
}

PyObject* CoreClose(PyObject* self, PyObject* const*, Py_ssize_t nargs) {
  if (!CheckArgs("_core_close", nargs, 0)) return nullptr;
  AsCore(self)->dict.reset();
  Py_RETURN_NONE;
}

PyObject* CoreGetClosed(PyObject* self, void*) {
  return PyBool_FromLong(AsCore(self)->dict == nullptr);
}

PyObject* CoreSerializer(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_serializer", nargs, 5)) return nullptr;
  const long kind = PyLong_AsLong(args[3]);
  if (kind == -1 && PyErr_Occurred()) return nullptr;
  if (kind != kGeneric && kind != kPickle && kind != kBytes) {
    PyErr_Format(PyExc_ValueError, "_core_serializer: unknown kind %ld", kind);
    return nullptr;
  }
  Core* c = AsCore(self);
  Py_INCREF(args[0]);
  Py_XSETREF(c->serializer, args[0]);
  Py_INCREF(args[1]);
  Py_XSETREF(c->dumps, args[1]);
  Py_INCREF(args[2]);
  Py_XSETREF(c->loads, args[2]);
  const long protocol = PyLong_AsLong(args[4]);
  if (protocol == -1 && PyErr_Occurred()) return nullptr;
  Py_INCREF(args[4]);
  Py_XSETREF(c->protocol, args[4]);
  c->pickle_protocol = static_cast<int>(protocol);
  c->kind = static_cast<int>(kind);
  Py_RETURN_NONE;
}

// _core_read(kb, key) -> bytes or None.
PyObject* CoreRead(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_read", nargs, 2)) return nullptr;
  const Dict* d = Live(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_read", args[0], &kb)) return nullptr;
  bool absent;
  PyObject* raw = ReadRaw(*d, kb, args[1], &absent);
  if (raw == nullptr && absent) Py_RETURN_NONE;
  return raw;
}

// _core_read_version(kb, key) -> (bytes or None, version).
PyObject* CoreReadVersion(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_read_version", nargs, 2)) return nullptr;
  const Dict* d = Live(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_read_version", args[0], &kb)) return nullptr;
  bool absent;
  uint64_t version = 0;
  PyObject* raw = ReadRaw(*d, kb, args[1], &absent, &version);
  if (raw == nullptr) {
    if (!absent) return nullptr;
    return Py_BuildValue("(OK)", Py_None, 0ULL);
  }
  return Py_BuildValue("(NK)", raw, static_cast<unsigned long long>(version));
}

// _core_erase(kb, key) -> bool: False if absent.
PyObject* CoreErase(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_erase", nargs, 2)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_erase", args[0], &kb)) return nullptr;
  absl::Status st;
  Py_BEGIN_ALLOW_THREADS
  st = d->Erase(kb);
  Py_END_ALLOW_THREADS
  if (st.ok()) Py_RETURN_TRUE;
  if (IsNotFoundCode(st)) Py_RETURN_FALSE;
  return RaiseStatus(st, args[1]);
}

// _core_insert(kb, key, vb) -> bool: False if present.
PyObject* CoreInsert(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_insert", nargs, 3)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb, vb;
  if (!BytesArg("_core_insert", args[0], &kb) || !BytesArg("_core_insert", args[2], &vb)) {
    return nullptr;
  }
  absl::StatusOr<uint64_t> version;
  Py_BEGIN_ALLOW_THREADS
  version = d->Insert(kb, vb);
  Py_END_ALLOW_THREADS
  if (version.ok()) Py_RETURN_TRUE;
  if (IsExistsCode(version.status())) Py_RETURN_FALSE;
  return RaiseStatus(version.status(), args[1]);
}

// _core_set(kb, key, vb, ttl_ms, flags) -> the new version; 0 when a condition
// (kIfAbsent, kIfPresent) was not met.
PyObject* CoreSet(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_set", nargs, 5)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb, vb;
  if (!BytesArg("_core_set", args[0], &kb) || !BytesArg("_core_set", args[2], &vb)) {
    return nullptr;
  }
  uint64_t ttl_ms;
  if (!U64Arg(args[3], &ttl_ms)) return nullptr;
  const long flags = PyLong_AsLong(args[4]);
  if (flags == -1 && PyErr_Occurred()) return nullptr;
  if ((flags & ~(kIfAbsent | kIfPresent)) != 0) {
    return RaiseCode(ErrorCode::kInvalid, "unknown flags", 0, nullptr, nullptr);
  }
  shmdict::SetOptions o;
  o.ttl = TtlOf(ttl_ms);
  o.if_absent = (flags & kIfAbsent) != 0;
  o.if_present = (flags & kIfPresent) != 0;
  absl::StatusOr<uint64_t> version;
  Py_BEGIN_ALLOW_THREADS
  version = flags == 0 && ttl_ms == 0 ? d->Put(kb, vb) : d->Set(kb, vb, o);
  Py_END_ALLOW_THREADS
  if (version.ok()) return PyLong_FromUnsignedLongLong(*version);
  if ((o.if_absent && IsExistsCode(version.status())) ||
      (o.if_present && IsNotFoundCode(version.status()))) {
    return PyLong_FromLong(0);
  }
  return RaiseStatus(version.status(), args[1]);
}

// _core_touch(kb, key, ttl_ms) -> bool: False if absent or expired.
PyObject* CoreTouch(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_touch", nargs, 3)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_touch", args[0], &kb)) return nullptr;
  uint64_t ttl_ms;
  if (!U64Arg(args[2], &ttl_ms)) return nullptr;
  absl::StatusOr<uint64_t> version;
  Py_BEGIN_ALLOW_THREADS
  version = d->Touch(kb, TtlOf(ttl_ms));
  Py_END_ALLOW_THREADS
  if (version.ok()) Py_RETURN_TRUE;
  if (IsNotFoundCode(version.status())) Py_RETURN_FALSE;
  return RaiseStatus(version.status(), args[1]);
}

// _core_ttl(kb, key) -> milliseconds left, -1 for never; KeyNotFoundError if absent.
PyObject* CoreTtl(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_ttl", nargs, 2)) return nullptr;
  const Dict* d = Live(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_ttl", args[0], &kb)) return nullptr;
  const absl::StatusOr<absl::Duration> left = d->Ttl(kb);
  if (!left.ok()) return RaiseStatus(left.status(), args[1]);
  if (*left == absl::InfiniteDuration()) return PyLong_FromLong(-1);
  return PyLong_FromLongLong(absl::ToInt64Milliseconds(*left));
}

// _core_cas(kb, key, expected_version, vb) -> the new version.
PyObject* CoreCas(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_cas", nargs, 4)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb, vb;
  if (!BytesArg("_core_cas", args[0], &kb) || !BytesArg("_core_cas", args[3], &vb)) {
    return nullptr;
  }
  uint64_t expected;
  if (!U64Arg(args[2], &expected)) return nullptr;
  absl::StatusOr<uint64_t> version;
  Py_BEGIN_ALLOW_THREADS
  version = d->CompareAndSwap(kb, expected, vb);
  Py_END_ALLOW_THREADS
  if (version.ok()) return PyLong_FromUnsignedLongLong(*version);
  return RaiseStatus(version.status(), args[1]);
}

// _core_fetch_add(kb, key, delta, if_present) -> the new value.
PyObject* CoreFetchAdd(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_fetch_add", nargs, 4)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_fetch_add", args[0], &kb)) return nullptr;
  int64_t delta;
  if (!I64Arg(args[2], &delta)) return nullptr;
  const int if_present = PyObject_IsTrue(args[3]);
  if (if_present < 0) return nullptr;
  absl::StatusOr<int64_t> value;
  Py_BEGIN_ALLOW_THREADS
  value = d->FetchAdd(kb, delta, nullptr, if_present != 0);
  Py_END_ALLOW_THREADS
  if (value.ok()) return PyLong_FromLongLong(*value);
  return RaiseStatus(value.status(), args[1]);
}

// _core_wait(kb, key, version, timeout_ms) -> True on a change, False on timeout.
PyObject* CoreWait(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_wait", nargs, 4)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  std::string_view kb;
  if (!BytesArg("_core_wait", args[0], &kb)) return nullptr;
  uint64_t version;
  int64_t timeout_ms;
  if (!U64Arg(args[2], &version) || !I64Arg(args[3], &timeout_ms)) return nullptr;
  absl::Status st;
  Py_BEGIN_ALLOW_THREADS
  st = d->WaitForChange(kb, version, timeout_ms);
  Py_END_ALLOW_THREADS
  if (st.ok()) Py_RETURN_TRUE;
  if (st.code() == absl::StatusCode::kDeadlineExceeded) Py_RETURN_FALSE;
  return RaiseStatus(st, args[1]);
}

// _core_count() -> the number of entries; BadFileError if the scan skipped corrupt slots.
PyObject* CoreCount(PyObject* self, PyObject* const*, Py_ssize_t nargs) {
  if (!CheckArgs("_core_count", nargs, 0)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  uint64_t n = 0, corrupt = 0;
  Py_BEGIN_ALLOW_THREADS
  n = d->Count(&corrupt);
  Py_END_ALLOW_THREADS
  if (corrupt != 0) return RaiseCorrupt(corrupt);
  return PyLong_FromUnsignedLongLong(n);
}

PyObject* CoreClear(PyObject* self, PyObject* const*, Py_ssize_t nargs) {
  if (!CheckArgs("_core_clear", nargs, 0)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  absl::Status st;
  Py_BEGIN_ALLOW_THREADS
  st = d->Clear();
  Py_END_ALLOW_THREADS
  if (!st.ok()) return RaiseStatus(st);
  Py_RETURN_NONE;
}

PyObject* CoreSweep(PyObject* self, PyObject* const*, Py_ssize_t nargs) {
  if (!CheckArgs("_core_sweep", nargs, 0)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  absl::StatusOr<uint64_t> erased;
  Py_BEGIN_ALLOW_THREADS
  erased = d->Sweep();
  Py_END_ALLOW_THREADS
  if (!erased.ok()) return RaiseStatus(erased.status());
  return PyLong_FromUnsignedLongLong(*erased);
}

// _core_snapshot(with_values, limit) -> [(key bytes, value bytes (b"" unless
// with_values), version)], at most `limit` (None: all) entries, weakly consistent.
// The scan runs without the GIL, into C++ strings; the list is built afterwards.
PyObject* CoreSnapshot(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("_core_snapshot", nargs, 2)) return nullptr;
  std::shared_ptr<Dict> d = Hold(self);
  if (d == nullptr) return nullptr;
  const int with_values = PyObject_IsTrue(args[0]);
  if (with_values < 0) return nullptr;
  uint64_t limit = 0;  // 0: none
  if (args[1] != Py_None) {
    if (!U64Arg(args[1], &limit)) return nullptr;
    if (limit == 0) return PyList_New(0);
  }
  struct Entry {
    std::string key;
    std::string value;
    uint64_t version;
  };
  std::vector<Entry> found;
  uint64_t corrupt = 0;
  bool no_memory = false;
  Py_BEGIN_ALLOW_THREADS
  try {
    corrupt = d->ForEach([&](std::string_view k, std::string_view v, uint64_t version) {
      found.push_back(Entry{std::string(k), with_values ? std::string(v) : std::string(),
                            version});
      return limit == 0 || found.size() < limit;
    });
  } catch (const std::bad_alloc&) {
    no_memory = true;
  }
  Py_END_ALLOW_THREADS
  if (no_memory) return PyErr_NoMemory();
  if (corrupt != 0) return RaiseCorrupt(corrupt);
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(found.size()));
  if (out == nullptr) return nullptr;
  for (size_t i = 0; i < found.size(); ++i) {
    const Entry& e = found[i];
    PyObject* item = Py_BuildValue("(y#y#K)", e.key.data(), static_cast<Py_ssize_t>(e.key.size()),
                                   e.value.data(), static_cast<Py_ssize_t>(e.value.size()),
                                   static_cast<unsigned long long>(e.version));
    if (item == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), item);
  }
  return out;
}

// --- type and module -----------------------------------------------------------------

PyObject* CoreNew(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  // tp_alloc zeroed the object; the shared_ptr needs its constructor.
  new (&AsCore(self)->dict) std::shared_ptr<Dict>();
  return self;
}

int CoreTraverse(PyObject* self, visitproc visit, void* arg) {
  Core* c = AsCore(self);
  Py_VISIT(Py_TYPE(self));  // a heap type: its instances keep it alive
  Py_VISIT(c->serializer);
  Py_VISIT(c->dumps);
  Py_VISIT(c->loads);
  Py_VISIT(c->protocol);
  return 0;
}

int CoreClearRefs(PyObject* self) {
  Core* c = AsCore(self);
  Py_CLEAR(c->serializer);
  Py_CLEAR(c->dumps);
  Py_CLEAR(c->loads);
  Py_CLEAR(c->protocol);
  return 0;
}

void CoreDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  CoreClearRefs(self);
  AsCore(self)->dict.~shared_ptr();
  type->tp_free(self);
  Py_DECREF(type);
}

template <typename F>
PyCFunction AsCFunction(F f) {
  // Through void(*)(void), which the compiler accepts as a cast between any two
  // function types: CPython calls each with the signature its METH_ flags say.
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(f));
}

PyMethodDef core_methods[] = {
    {"get", AsCFunction(CoreGet), METH_FASTCALL | METH_KEYWORDS,
     "get($self, key, default=None)\n--\n\nThe value of key, or default if absent."},
    {"get_many", AsCFunction(CoreGetMany), METH_FASTCALL | METH_KEYWORDS,
     "get_many($self, keys, default=None)\n--\n\n[d.get(k, default) for k in keys], in "
     "fewer engine calls: faster per key on large tables (the keys' memory misses "
     "overlap). Each value is read atomically; the list is not one snapshot."},
    {"_core_open", AsCFunction(CoreOpen), METH_FASTCALL, nullptr},
    {"_core_close", AsCFunction(CoreClose), METH_FASTCALL, nullptr},
    {"_core_serializer", AsCFunction(CoreSerializer), METH_FASTCALL, nullptr},
    {"_core_read", AsCFunction(CoreRead), METH_FASTCALL, nullptr},
    {"_core_read_version", AsCFunction(CoreReadVersion), METH_FASTCALL, nullptr},
    {"_core_erase", AsCFunction(CoreErase), METH_FASTCALL, nullptr},
    {"_core_insert", AsCFunction(CoreInsert), METH_FASTCALL, nullptr},
    {"_core_set", AsCFunction(CoreSet), METH_FASTCALL, nullptr},
    {"_core_touch", AsCFunction(CoreTouch), METH_FASTCALL, nullptr},
    {"_core_ttl", AsCFunction(CoreTtl), METH_FASTCALL, nullptr},
    {"_core_cas", AsCFunction(CoreCas), METH_FASTCALL, nullptr},
    {"_core_fetch_add", AsCFunction(CoreFetchAdd), METH_FASTCALL, nullptr},
    {"_core_wait", AsCFunction(CoreWait), METH_FASTCALL, nullptr},
    {"_core_count", AsCFunction(CoreCount), METH_FASTCALL, nullptr},
    {"_core_clear", AsCFunction(CoreClear), METH_FASTCALL, nullptr},
    {"_core_sweep", AsCFunction(CoreSweep), METH_FASTCALL, nullptr},
    {"_core_snapshot", AsCFunction(CoreSnapshot), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef core_getset[] = {
    {"closed", CoreGetClosed, nullptr, "Whether this SharedDict is closed.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot core_slots[] = {
    {Py_tp_doc, const_cast<char*>("The engine binding that SharedDict inherits from.")},
    {Py_tp_new, reinterpret_cast<void*>(CoreNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(CoreDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(CoreTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(CoreClearRefs)},
    {Py_tp_methods, core_methods},
    {Py_tp_getset, core_getset},
    {Py_mp_subscript, reinterpret_cast<void*>(CoreSubscript)},
    {Py_mp_ass_subscript, reinterpret_cast<void*>(CoreAssSubscript)},
    {Py_sq_contains, reinterpret_cast<void*>(CoreContains)},
    {0, nullptr},
};

PyType_Spec core_spec = {
    "shmdict._native.Core",
    sizeof(Core),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    core_slots,
};

// unlink(path: bytes): removes the table file (Dict::Unlink); TableNotFoundError if
// absent.
PyObject* ModuleUnlink(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (!CheckArgs("unlink", nargs, 1)) return nullptr;
  std::string_view path_view;
  if (!BytesArg("unlink", args[0], &path_view)) return nullptr;
  if (path_view.find('\0') != std::string_view::npos) {
    return RaiseCode(ErrorCode::kInvalid, "table name contains a NUL character", 0, nullptr,
                     nullptr);
  }
  const std::string path(path_view);
  absl::Status st;
  Py_BEGIN_ALLOW_THREADS
  st = Dict::Unlink(path);
  Py_END_ALLOW_THREADS
  if (st.ok()) Py_RETURN_NONE;
  return RaiseStatus(st, nullptr, IsNotFoundCode(st) ? g.table_not_found : nullptr);
}

PyMethodDef module_methods[] = {
    {"unlink", AsCFunction(ModuleUnlink), METH_FASTCALL,
     "unlink(path: bytes): removes the table file; TableNotFoundError if absent."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "shmdict._native",
    "SharedDict's binding of the shmdict engine (api/shmdict.h) as an extension module.",
    -1,  // module state lives in `g`: one interpreter
    module_methods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

PyObject* Attr(const char* module, const char* name) {
  PyObject* m = PyImport_ImportModule(module);
  if (m == nullptr) return nullptr;
  PyObject* a = PyObject_GetAttrString(m, name);
  Py_DECREF(m);
  return a;
}

}  // namespace

PyMODINIT_FUNC PyInit__native(void) {
  if (g.from_engine == nullptr) {
    g.from_engine = Attr("shmdict.errors", "_from_engine");
    g.no_key = Attr("shmdict.errors", "_NO_KEY");
    g.table_not_found = Attr("shmdict.errors", "TableNotFoundError");
    g.pickle_dumps = Attr("pickle", "dumps");
    g.pickle_loads = Attr("pickle", "loads");
    if (g.from_engine == nullptr || g.no_key == nullptr || g.table_not_found == nullptr ||
        g.pickle_dumps == nullptr || g.pickle_loads == nullptr) {
      Py_CLEAR(g.from_engine);
      Py_CLEAR(g.no_key);
      Py_CLEAR(g.table_not_found);
      Py_CLEAR(g.pickle_dumps);
      Py_CLEAR(g.pickle_loads);
      return nullptr;
    }
    g.buf = static_cast<char*>(std::malloc(kFirstBuffer));
    if (g.buf == nullptr) return PyErr_NoMemory();
    g.cap = kFirstBuffer;
    g.many_step = kManyFirstStep;
  }
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  PyObject* core = PyType_FromSpec(&core_spec);
  if (core == nullptr || PyModule_AddObject(module, "Core", core) != 0) {
    Py_XDECREF(core);
    Py_DECREF(module);
    return nullptr;
  }
  if (PyModule_AddIntConstant(module, "CREATE", kCreate) != 0 ||
      PyModule_AddIntConstant(module, "EXCL", kExclusive) != 0 ||
      PyModule_AddIntConstant(module, "READONLY", kReadOnly) != 0 ||
      PyModule_AddIntConstant(module, "ALLOW_GROUP", kAllowGroup) != 0 ||
      PyModule_AddIntConstant(module, "IF_ABSENT", kIfAbsent) != 0 ||
      PyModule_AddIntConstant(module, "IF_PRESENT", kIfPresent) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
