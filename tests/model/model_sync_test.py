"""Keeps the Relacy models (tests/model/slot_model.cc, bucket_model.cc) in step with
the engine.

protocol_orders.txt lists the memory orders of the slot protocol. This test checks
that core/table.cc and core/words.h use exactly those orders in the functions listed,
and that each model declares exactly the rows that name it (`slot`, `bucket`).
Changing an order in the engine therefore fails here until the list and the models
are updated (and the models rerun). See protocol_orders.txt for the row formats.

Runs under Bazel (files from the runfiles) or directly from the repository root:
    python3 tests/model/model_sync_test.py
"""

import collections
import os
import re
import sys
import unittest


def _path(relative):
    if "TEST_SRCDIR" in os.environ:
        return os.path.join(os.environ["TEST_SRCDIR"],
                            os.environ.get("TEST_WORKSPACE", "shmdict"), relative)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, relative)


ORDERS = _path("tests/model/protocol_orders.txt")
# The models, by the name protocol_orders.txt's rows give them.
MODELS = {
    "slot": _path("tests/model/slot_model.cc"),
    "bucket": _path("tests/model/bucket_model.cc"),
}
FENCES = ("WriterReleaseFence", "ReaderAcquireFence")
PAYLOAD_CONSTANTS = ("kPayloadLoad", "kPayloadStore")
# The calls a `calls` row lists, in the order the body makes them: the slot
# protocol's steps, and the writers' lookup, locks and rechecks.
PROTOCOL_CALLS = ("SetTag", "WriteCopy", "WriteEmptyCopy", "LocateAndLock", "LookupWhere",
                  "Lock", "HoldsKeyLocked", "UnlockAll", "FindLocked", "WriteLocked",
                  "EraseSlotLocked")


def strip_comments(text):
    """C++ text with comments removed and string/char literals emptied."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text[i] in "\"'":
            quote = text[i]
            j = i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(quote * 2)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def function_body(source, name):
    """The body of the one function definition `name` (or `Table::name`) that starts
    at the beginning of a line in `source` (comments already stripped)."""
    head = re.compile(
        r"^(?:template\s*<[^>]*>\s*)?[A-Za-z_][\w:<>,\s\*&]*?\b(?:Table::)?"
        + re.escape(name) + r"\s*\(", re.M)
    bodies = []
    for m in head.finditer(source):
        i, depth = m.end(), 1
        while depth:
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        after = re.match(r"\s*(?:const\s*)?(?:noexcept\s*)?\{", source[i:])
        if not after:
            continue  # a declaration
        start = k = i + after.end()
        depth = 1
        while depth:
            depth += {"{": 1, "}": -1}.get(source[k], 0)
            k += 1
        bodies.append(source[start:k - 1])
    if len(bodies) != 1:
        raise AssertionError(f"expected one definition of {name}, found {len(bodies)}")
    return bodies[0]


def order_tokens(body):
    tokens = re.findall(r"\bmemory_order_(\w+)", body)
    tokens += re.findall(r"\b(" + "|".join(FENCES) + r")\s*\(", body)
    tokens += re.findall(r"\b(" + "|".join(PAYLOAD_CONSTANTS) + r")\b", body)
    return collections.Counter(tokens)


def payload_constants(words_h):
    """{(name, "normal" | "tsan"): order} from core/words.h's #ifdef SHMDICT_TSAN."""
    m = re.search(r"^#ifdef SHMDICT_TSAN\n(.*?)^#else\n(.*?)^#endif", words_h, re.M | re.S)
    if not m:
        raise AssertionError("core/words.h: no #ifdef SHMDICT_TSAN ... #else ... #endif "
                             "block with the payload orders")
    found = {}
    for branch, text in (("tsan", m.group(1)), ("normal", m.group(2))):
        for name, order in re.findall(r"\b(kPayload\w+)\s*=\s*std::memory_order_(\w+)", text):
            found[(name, branch)] = order
    return found


def read_rows():
    rows = []
    with open(ORDERS) as f:
        for lineno, line in enumerate(f, 1):
            line = re.split(r"\s#", " " + line, maxsplit=1)[0].strip()
            if line:
                rows.append((lineno, line.split()))
    return rows


def model_declarations(model):
    """{(scope, step): (kind, value)} declared by the model's ENGINE_* lines."""
    path = MODELS[model]
    with open(path) as f:
        text = f.read()
    decls = {}
    for m in re.finditer(r"^ENGINE_(ORDER|FENCE|TEXT)\((\w+),\s*(\w+),\s*(\w+)\)",
                         text, re.M):
        key = (m.group(2), m.group(3))
        if key in decls:
            raise AssertionError(f"{os.path.basename(path)} declares {key} twice")
        decls[key] = (m.group(1), m.group(4))
    return decls


def models_of(lineno, marker):
    """The models a row's last column names ('-': none; 'slot,bucket': both)."""
    if marker == "-":
        return []
    names = marker.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise AssertionError(f"protocol_orders.txt:{lineno}: unknown model {unknown}; "
                             f"the models are {sorted(MODELS)}")
    return names


class ModelSyncTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.rows = read_rows()
        cls.sources = {}
        cls.raw = {}
        for _, fields in cls.rows:
            path = fields[1]
            if path not in cls.sources:
                with open(_path(path)) as f:
                    cls.raw[path] = f.read()
                cls.sources[path] = strip_comments(cls.raw[path])

    def test_engine_orders(self):
        expected = collections.defaultdict(collections.Counter)
        for lineno, f in self.rows:
            if f[0] == "order":
                self.assertEqual(len(f), 7, f"protocol_orders.txt:{lineno}: {f}")
                expected[(f[1], f[2])][f[4]] += int(f[5])
        self.assertTrue(expected)
        errors = []
        for (path, function), want in sorted(expected.items()):
            got = order_tokens(function_body(self.sources[path], function))
            if got != want:
                errors.append(f"{path} {function}: the engine uses {dict(sorted(got.items()))}, "
                              f"protocol_orders.txt says {dict(sorted(want.items()))}")
        if errors:
            self.fail("\n" + "\n".join(errors) +
                      "\nUpdate protocol_orders.txt and the model (slot_model.cc) "
                      "together, and rerun it: tools/bazel test //tests/model:all")

    def test_payload_constants(self):
        for lineno, f in self.rows:
            if f[0] != "define":
                continue
            path, name, branch, order = f[1], f[2], f[3], f[4]
            got = payload_constants(self.sources[path]).get((name, branch))
            self.assertEqual(got, order,
                             f"protocol_orders.txt:{lineno}: {path} defines {name} as "
                             f"{got} in the {branch} build, the list says {order}")

    def test_protocol_call_order(self):
        for lineno, f in self.rows:
            if f[0] != "calls":
                continue
            path, function, want = f[1], f[2], f[3:]
            body = function_body(self.sources[path], function)
            got = re.findall(r"\b(" + "|".join(PROTOCOL_CALLS) + r")\s*\(", body)
            self.assertEqual(got, want,
                             f"protocol_orders.txt:{lineno}: {function} calls {got}, "
                             f"the list (and the model) say {want}")

    def test_text(self):
        for lineno, f in self.rows:
            if f[0] != "text":
                continue
            path, function = f[1], f[2]
            snippet = " ".join(f[6:])
            body = function_body(self.sources[path], function)
            if re.sub(r"\s+", " ", snippet) not in re.sub(r"\s+", " ", body):
                self.fail(f"protocol_orders.txt:{lineno}: {path} {function} no longer "
                          f"contains '{snippet}'")

    def test_models_declare_exactly_their_rows(self):
        want = {model: {} for model in MODELS}
        for lineno, f in self.rows:
            if f[0] == "order":
                kind = "FENCE" if f[4] in FENCES else "ORDER"
                entry, marker = (kind, f[4]), f[6]
            elif f[0] == "define":
                entry, marker = ("ORDER", f[4]), f[5]
            elif f[0] == "text":
                entry, marker = ("TEXT", f[4]), f[5]
            else:
                continue
            for model in models_of(lineno, marker):
                want[model][(f[2], f[3])] = entry
        errors = []
        for model, path in sorted(MODELS.items()):
            got = model_declarations(model)
            self.assertTrue(want[model], f"no row names the {model} model")
            for key in sorted(set(want[model]) | set(got)):
                if want[model].get(key) != got.get(key):
                    errors.append(f"{key[0]} {key[1]}: protocol_orders.txt says "
                                  f"{want[model].get(key)}, {os.path.basename(path)} "
                                  f"declares {got.get(key)}")
        if errors:
            self.fail("\n" + "\n".join(errors))


if __name__ == "__main__":
    unittest.main()
