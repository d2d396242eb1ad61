"""The shmdict tool's machine-readable side, checked with Python's own json and base64:
--json output of every command, the dump format, watch across processes, the progress
display (on a terminal only), and the Redis and memcached recipes of docs/cli.md run
against private servers."""

import base64
import json
import os
import pty
import random
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unicodedata
import unittest


def _runfile(relative):
    return os.path.join(os.environ["TEST_SRCDIR"],
                        os.environ.get("TEST_WORKSPACE", "shmdict"), relative)


BIN = _runfile("tools/shmdict")
def _doc_path():
    """docs/cli.md, a data dependency of this test."""
    path = _runfile("docs/cli.md")
    if not os.path.exists(path):
        raise AssertionError(f"docs/cli.md is not among the runfiles ({path})")
    return path


DOC = _doc_path()
SEED = int(os.environ.get("SHMDICT_TEST_SEED", time.time_ns()))
print(f"[seed] SHMDICT_TEST_SEED={SEED}")


def run(*args, input=b"", check_code=None):
    """Runs shmdict; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([BIN, *args], input=input, capture_output=True, timeout=60)
    if check_code is not None and p.returncode != check_code:
        raise AssertionError(f"shmdict {' '.join(args)}: exit {p.returncode}, "
                             f"stderr {p.stderr.decode(errors='replace')!r}")
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def is_text(b):
    """The dump format's definition of text, from Python's UTF-8 decoder and Unicode
    database: well-formed UTF-8 without control characters but tab, LF and CR."""
    try:
        s = b.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return False
    return all(c in "\t\n\r" or unicodedata.category(c) != "Cc" for c in s)


def field(obj, name):
    return base64.b64decode(obj[name + "_b64"], validate=True) if name + "_b64" in obj \
        else obj[name].encode("utf-8")


def decode_dump(data):
    """{key: (value, version)} from a dump, checking each line's encoding choice."""
    out = {}
    for line in data.decode("utf-8").splitlines():
        obj = json.loads(line)
        key, value = field(obj, "key"), field(obj, "value")
        assert ("key" in obj) == is_text(key), line
        assert ("value" in obj) == is_text(value), line
        assert set(obj) <= {"key", "key_b64", "value", "value_b64", "version",
                            "expires_unix_ms"}, line
        assert isinstance(obj["version"], int) and obj["version"] > 0, line
        assert key not in out, line
        out[key] = (value, obj["version"])
    return out


def awkward_entries(rng, n, max_key=24, max_value=100):
    entries = {
        b"plain": b"text",
        b'quote"back\\slash': b"line\nbreak\ttab\rcr",
        "caf\u00e9 \u20ac".encode(): "\U0001F600 \u2028".encode(),
        b"\0": b"\0\0\0",
        b"nul\0inside": b"invalid \xff\xfe utf-8",
        b"\xc0\xaf": b"overlong",
        b"\xed\xa0\x80": b"surrogate",
        b"empty value": b"",
        b"esc\x1b[31m": b"\x7f\xc2\x85",
        b"K" * max_key: b"\xee" * max_value,
    }
    while len(entries) < n:
        k = bytes(rng.randrange(256) for _ in range(rng.randint(1, max_key)))
        if rng.random() < 0.5:
            v = "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randint(0, 30)))
            v = v.encode("utf-8", errors="ignore")[:max_value]
        else:
            v = bytes(rng.randrange(256) for _ in range(rng.randint(0, max_value)))
        entries[k] = v
    return entries


class Tables:
    """Unique table paths under /dev/shm, removed at exit."""

    def __init__(self, test):
        self.paths = []
        test.addCleanup(self.cleanup)

    def new(self):
        p = f"/dev/shm/shmdict-cli-json-test-{os.getpid()}-{random.randrange(1 << 40)}"
        self.paths.append(p)
        return p

    def cleanup(self):
        for p in self.paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def create(path, capacity=1000, max_key=24, max_value=100):
    run("create", path, f"--capacity={capacity}", f"--max_key_size={max_key}",
        f"--max_value_size={max_value}", check_code=0)


def put_all(path, entries):
    """Puts entries through the tool itself: binary keys in base64, values on stdin."""
    for k, v in entries.items():
        run("put", "--key_b64", "--value_file=-", path, base64.b64encode(k).decode(), input=v,
            check_code=0)


def load_lines(path, entries, *flags):
    lines = "".join(json.dumps({"key_b64": base64.b64encode(k).decode(),
                                "value_b64": base64.b64encode(v).decode()}) + "\n"
                    for k, v in entries.items())
    return run("load", *flags, path, input=lines.encode(), check_code=0)


class JsonOutputTest(unittest.TestCase):

    def test_every_json_output_parses(self):
        tables = Tables(self)
        t = tables.new()
        _, out, _ = run("create", "--json", t, "--capacity=100", "--max_key_size=16",
                        "--max_value_size=32", check_code=0)
        c = json.loads(out)
        self.assertEqual(c["path"], t)
        self.assertIs(c["created"], True)
        self.assertEqual((c["capacity"], c["max_key_size"], c["max_value_size"]), (100, 16, 32))
        self.assertEqual(c["slot_count"], 16 * c["bucket_count"])
        self.assertEqual(os.stat(t).st_size, c["file_size"])
        self.assertEqual(c["eviction"], "none")
        _, out, _ = run("create", "--json", t, "--capacity=100", "--max_key_size=16",
                        "--max_value_size=32", check_code=0)
        self.assertIs(json.loads(out)["created"], False)

        _, out, _ = run("put", "--json", t, "k\u00e9y", "v1", check_code=0)
        v1 = json.loads(out)["version"]
        _, out, _ = run("put", "--json", t, "k\u00e9y", "v2", check_code=0)
        put = json.loads(out)
        self.assertEqual(put["key"], "k\u00e9y")
        self.assertGreater(put["version"], v1)
        _, out, _ = run("get", "--json", t, "k\u00e9y", check_code=0)
        self.assertEqual(json.loads(out), {"key": "k\u00e9y", "value": "v2",
                                           "version": put["version"]})
        run("put", "--value_file=-", t, "bin", input=b"\0\xff", check_code=0)
        _, out, _ = run("get", "--json", t, "bin", check_code=0)
        self.assertEqual(base64.b64decode(json.loads(out)["value_b64"]), b"\0\xff")

        _, out, _ = run("ls", "--json", "--values", t, check_code=0)
        listed = {field(o, "key"): field(o, "value") for o in json.loads(out)}
        self.assertEqual(listed, {"k\u00e9y".encode(): b"v2", b"bin": b"\0\xff"})
        _, out, _ = run("ls", "--json", "--limit=1", t, check_code=0)
        self.assertEqual(len(json.loads(out)), 1)
        self.assertNotIn("value", json.loads(out)[0])

        _, out, _ = run("verify", "--json", t, check_code=0)
        v = json.loads(out)
        self.assertIs(v["ok"], True)
        self.assertEqual(v["entries"], 2)

        copy = tables.new()
        _, out, _ = run("dump", t, check_code=0)
        _, out, _ = run("load", "--json", "--create", copy, input=out, check_code=0)
        self.assertEqual(json.loads(out), {"path": copy, "loaded": 2, "skipped_expired": 0,
                                           "created": True})

        bad = tables.new()
        with open(bad, "wb") as f:
            f.write(b"\xffnot a table" * 1000)
        code, out, _ = run("verify", "--json", bad)
        self.assertEqual(code, 1)
        self.assertIs(json.loads(out)["ok"], False)

    def test_stats_json_is_consistent(self):
        tables = Tables(self)
        t = tables.new()
        create(t, capacity=2000)
        rng = random.Random(SEED)
        entries = {f"key{i}".encode(): bytes([rng.randrange(256)]) for i in range(200)}
        load_lines(t, entries)
        run("put", t, "one more", "v", check_code=0)  # a second writer, dead by now
        _, out, _ = run("stats", "--json", t, check_code=0)
        s = json.loads(out)
        self.assertEqual(s["path"], t)
        self.assertEqual(s["count"], 201)
        self.assertEqual(s["slot_count"], s["bucket_count"] * s["slots_per_bucket"])
        self.assertAlmostEqual(s["load_factor"], 201 / s["slot_count"], places=5)
        self.assertEqual(len(s["bucket_fill"]), 17)
        self.assertEqual(sum(s["bucket_fill"]), s["bucket_count"])
        self.assertEqual(sum(k * n for k, n in enumerate(s["bucket_fill"])), 201)
        self.assertEqual(os.stat(t).st_size, s["file_size"])
        self.assertEqual(s["recoveries"], 0)
        self.assertEqual((s["eviction"], s["evictions"], s["expired"], s["expired_erased"]),
                         ("none", 0, 0, 0))
        procs = s["processes"]
        self.assertEqual(len(procs), 2)  # the load and the put
        self.assertEqual(s["processes_dead"], 2)
        self.assertEqual(s["processes_live"], 0)
        for p in procs:
            self.assertIs(p["live"], False)
            self.assertGreater(p["pid"], 0)
            self.assertEqual(p["incarnation"], 1)
            self.assertLess(abs(p["claimed_unix_ns"] / 1e9 - time.time()), 600)
            self.assertTrue(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["claimed"]))


class ExpiryJsonTest(unittest.TestCase):

    def test_expiry_commands_and_stats_in_json(self):
        tables = Tables(self)
        t = tables.new()
        _, out, _ = run("create", "--json", "--eviction=lrs", t, "--capacity=16",
                        "--max_key_size=8", "--max_value_size=8", check_code=0)
        self.assertEqual(json.loads(out)["eviction"], "lrs")
        run("put", "--ttl=0.1", t, "brief", "b", check_code=0)
        before = time.time()
        _, out, _ = run("put", "--json", "--ttl=100.5", t, "k", "v", check_code=0)
        put = json.loads(out)
        _, out, _ = run("ttl", "--json", t, "k", check_code=0)
        ttl = json.loads(out)
        self.assertEqual(set(ttl), {"key", "ttl"})
        self.assertEqual(ttl["key"], "k")
        self.assertIsInstance(ttl["ttl"], float)
        self.assertLessEqual(ttl["ttl"], 100.5)
        self.assertGreater(ttl["ttl"], 100.5 - (time.time() - before) - 0.01)
        _, out, _ = run("touch", "--json", t, "k", check_code=0)
        touched = json.loads(out)
        self.assertEqual(touched["key"], "k")
        self.assertGreater(touched["version"], put["version"])
        _, out, _ = run("ttl", "--json", t, "k", check_code=0)
        self.assertEqual(json.loads(out), {"key": "k", "ttl": None})

        # Over the capacity: the lrs table evicts; stats counts it all.
        for i in range(200):
            run("put", t, f"e{i}", "v", check_code=0)
        time.sleep(0.2)
        _, out, _ = run("stats", "--json", t, check_code=0)
        s = json.loads(out)
        self.assertEqual(s["eviction"], "lrs")
        self.assertGreater(s["evictions"], 0)
        self.assertLessEqual(s["count"], s["slot_count"])
        _, out, _ = run("sweep", "--json", t, check_code=0)
        swept = json.loads(out)
        self.assertEqual(set(swept), {"path", "erased"})
        self.assertEqual(swept["erased"], s["expired"])
        _, out, _ = run("stats", "--json", t, check_code=0)
        s2 = json.loads(out)
        self.assertEqual(s2["expired"], 0)
        self.assertGreaterEqual(s2["expired_erased"], swept["erased"])
        self.assertGreaterEqual(s2["evictions"], s["evictions"])

    def test_dump_carries_absolute_expiries_in_milliseconds(self):
        tables = Tables(self)
        t = tables.new()
        create(t)
        start_ms = time.time() * 1000
        run("put", "--ttl=3600", t, "hour", "h", check_code=0)
        run("put", t, "forever", "f", check_code=0)
        end_ms = time.time() * 1000
        _, out, _ = run("dump", t, check_code=0)
        objs = {o["key"]: o for o in map(json.loads, out.decode().splitlines())}
        self.assertNotIn("expires_unix_ms", objs["forever"])
        expires = objs["hour"]["expires_unix_ms"]
        self.assertIsInstance(expires, int)
        self.assertGreaterEqual(expires, int(start_ms) + 3600 * 1000)
        self.assertLessEqual(expires, end_ms + 3600 * 1000 + 1)
        # A line written by another program: an expiry 2 s ahead survives a load, and is
        # gone 2 s later.
        copy = tables.new()
        line = json.dumps({"key": "soon", "value": "s",
                           "expires_unix_ms": int(time.time() * 1000) + 2000})
        _, out, _ = run("load", "--json", "--create", copy, input=(line + "\n").encode(),
                        check_code=0)
        self.assertEqual(json.loads(out), {"path": copy, "loaded": 1, "skipped_expired": 0,
                                           "created": True})
        run("get", copy, "soon", check_code=0)
        time.sleep(2.1)
        code, _, _ = run("get", copy, "soon")
        self.assertEqual(code, 1)


class DumpFormatTest(unittest.TestCase):

    def test_dump_decodes_with_json_and_base64(self):
        tables = Tables(self)
        t = tables.new()
        create(t)
        entries = awkward_entries(random.Random(SEED), 12)
        put_all(t, entries)
        _, out, err = run("dump", t, check_code=0)
        self.assertEqual(err, "")
        dumped = decode_dump(out)
        self.assertEqual({k: v for k, (v, _) in dumped.items()}, entries)
        self.assertTrue(out.endswith(b"\n"))

    def test_round_trip_of_binary_data_through_load_and_dump(self):
        tables = Tables(self)
        src, copy = tables.new(), tables.new()
        rng = random.Random(SEED + 1)
        entries = awkward_entries(rng, 200)
        # Python's json.dumps escapes every non-ASCII character (\uXXXX, surrogate pairs):
        # another writer of the format than the tool itself.
        lines = []
        for k, v in entries.items():
            obj = {}
            for name, b in (("key", k), ("value", v)):
                if is_text(b) and rng.random() < 0.7:
                    obj[name] = b.decode()
                else:
                    obj[name + "_b64"] = base64.b64encode(b).decode()
            lines.append(json.dumps(obj))
        _, out, _ = run("load", "--create", src, input="\n".join(lines).encode(), check_code=0)
        self.assertEqual(out, f"loaded {len(entries)} entries into {src} (created)\n".encode())
        _, dump1, _ = run("dump", src, check_code=0)
        self.assertEqual({k: v for k, (v, _) in decode_dump(dump1).items()}, entries)
        run("load", "--create", copy, input=dump1, check_code=0)
        _, dump2, _ = run("dump", copy, check_code=0)
        self.assertEqual({k: v for k, (v, _) in decode_dump(dump2).items()}, entries)


class WatchTest(unittest.TestCase):

    def test_watch_json_sees_writes_of_other_processes(self):
        tables = Tables(self)
        t = tables.new()
        create(t)
        w = subprocess.Popen([BIN, "watch", "--json", "--count=3", "--timeout_ms=60000", t,
                              "k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(json.loads(w.stdout.readline()),
                             {"key": "k", "value": None, "version": 0})
            _, out, _ = run("put", "--json", t, "k", "first", check_code=0)
            version = json.loads(out)["version"]
            self.assertEqual(json.loads(w.stdout.readline()),
                             {"key": "k", "value": "first", "version": version})
            run("put", "--value_file=-", t, "k", input=b"\0binary", check_code=0)
            event = json.loads(w.stdout.readline())
            self.assertEqual(base64.b64decode(event["value_b64"]), b"\0binary")
            self.assertGreater(event["version"], version)
            run("del", t, "k", check_code=0)
            self.assertEqual(json.loads(w.stdout.readline()),
                             {"key": "k", "value": None, "version": 0})
            self.assertEqual(w.wait(timeout=60), 0)
            self.assertEqual(w.stderr.read(), b"")
        finally:
            w.kill()
            w.wait()
            w.stdout.close()
            w.stderr.close()


def run_with_terminal_stderr(args, input=b""):
    """Runs shmdict with stderr on a pseudo-terminal; returns (code, stdout, terminal
    output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=slave)
    os.close(slave)
    out, term = [], []

    def feed():
        p.stdin.write(input)
        p.stdin.close()

    # Feed stdin on the side, and read stdout and the terminal here, so that no pipe
    # fills up.
    feeder = threading.Thread(target=feed)
    feeder.start()
    fds = {p.stdout.fileno(): out, master: term}
    while fds:
        for fd in select.select(list(fds), [], [], 60)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                chunk = b""
            if chunk:
                fds[fd].append(chunk)
            else:
                del fds[fd]
    feeder.join()
    os.close(master)
    p.stdout.close()
    return p.wait(timeout=60), b"".join(out), b"".join(term).decode(errors="replace")


class ProgressTest(unittest.TestCase):

    def test_progress_only_on_a_terminal(self):
        tables = Tables(self)
        t, copy = tables.new(), tables.new()
        create(t, capacity=5000, max_key=16, max_value=16)
        load_lines(t, {f"k{i}".encode(): b"v" for i in range(500)})

        code, dump, term = run_with_terminal_stderr(["dump", t])
        self.assertEqual(code, 0)
        self.assertEqual(len(decode_dump(dump)), 500)
        self.assertIn(f"dump {t} [", term)
        self.assertIn("%", term)
        self.assertTrue(term.endswith("\r\x1b[K"), repr(term[-40:]))  # erased at the end
        code, piped, err = run("dump", t)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(decode_dump(piped).keys(), decode_dump(dump).keys())

        code, out, term = run_with_terminal_stderr(["load", "--create", copy], input=dump)
        self.assertEqual(code, 0)
        self.assertIn(f"load {copy}", term)
        self.assertEqual(out, f"loaded 500 entries into {copy} (created)\n".encode())

        code, out, term = run_with_terminal_stderr(["verify", copy])
        self.assertEqual(code, 0)
        self.assertIn(f"verify {copy}: ", term)
        self.assertIn(b"OK\n", out)
        code, out, err = run("verify", copy)
        self.assertEqual((code, err), (0, ""))


def recipe(name):
    """The command lines of the ```sh block after <!-- recipe:NAME --> in docs/cli.md."""
    with open(DOC) as f:
        doc = f.read()
    m = re.search(r"<!-- recipe:" + re.escape(name) + r" -->\n```sh\n(.*?)```", doc, re.S)
    assert m, f"no recipe {name} in docs/cli.md"
    return [line for line in m.group(1).splitlines() if line.strip()]


# The recipes' python3 is Debian's, where tools/bazel installs python3-redis; a
# python3 of one's own earlier on PATH would lack it.
RECIPE_ENV = dict(os.environ, PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""))


def recipe_python_has(module):
    return subprocess.run(["python3", "-c", "import " + module], env=RECIPE_ENV,
                          capture_output=True).returncode == 0


def run_recipe(line, substitutions):
    for old, new in substitutions:
        line = re.sub(old, new, line)
    line = re.sub(r"(^|\| )shmdict ", lambda m: m.group(1) + BIN + " ", line)
    p = subprocess.run(["bash", "-o", "pipefail", "-c", line], capture_output=True,
                       timeout=60, env=RECIPE_ENV)
    if p.returncode != 0:
        raise AssertionError(f"{line}\nexit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p.stdout


def short_tempdir(test):
    """A directory with a short path (Unix socket paths are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix="shmdict-cli-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, ignore_errors=True)
    return d


def start_server(test, argv, ready):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    test.addCleanup(p.wait)
    test.addCleanup(p.kill)
    deadline = time.time() + 20
    while not ready():
        if time.time() > deadline or p.poll() is not None:
            test.fail(f"{argv[0]} did not start")
        time.sleep(0.02)
    return p


class MigrationRecipeTest(unittest.TestCase):

    def start_redis(self):
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            self.skipTest("redis-server is not installed (tools/bazel installs it)")
        sock = os.path.join(short_tempdir(self), "redis.sock")
        start_server(self, ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                            "--appendonly", "no"],
                     lambda: subprocess.run(["redis-cli", "-s", sock, "PING"],
                                            capture_output=True).stdout == b"PONG\n")
        return sock

    def test_redis_both_ways(self):
        if not recipe_python_has("redis"):  # the way back uses redis-py
            self.skipTest("python3-redis is not installed (tools/bazel installs it)")
        sock = self.start_redis()
        tables = Tables(self)
        prices, prices2 = tables.new(), tables.new()
        create(prices)
        entries = awkward_entries(random.Random(SEED + 2), 200)
        load_lines(prices, entries)
        subs = [(r"\bprices2\b", prices2), (r"\bprices\b", prices),
                (r"redis-cli", f"redis-cli -s {sock}"),
                (r"redis\.Redis\(\)", f'redis.Redis(unix_socket_path="{sock}")')]
        to_redis, from_redis = recipe("redis")
        out = run_recipe(to_redis, subs)
        self.assertIn(b"errors: 0, replies: 200", out)
        dbsize = subprocess.run(["redis-cli", "-s", sock, "DBSIZE"], capture_output=True)
        self.assertEqual(dbsize.stdout, b"200\n")
        run_recipe(from_redis, subs)
        _, dump, _ = run("dump", prices2, check_code=0)
        self.assertEqual({k: v for k, (v, _) in decode_dump(dump).items()}, entries)

    def test_redis_jq_for_text(self):
        if shutil.which("jq") is None:
            self.skipTest("jq is not installed (tools/bazel installs it)")
        sock = self.start_redis()
        tables = Tables(self)
        prices = tables.new()
        create(prices)
        text = {b"plain": b"text", b'q"uote\\': b"line\nbreak\ttab\rcr",
                "caf\u00e9".encode(): "\U0001F600 \u2028 end".encode(), b"empty": b"",
                b"with space": b"a b"}
        put_all(prices, {**text, b"bin\0": b"skipped"})
        [line] = recipe("redis-jq")
        run_recipe(line, [(r"\bprices\b", prices), (r"redis-cli", f"redis-cli -s {sock}")])
        self.assertEqual(
            subprocess.run(["redis-cli", "-s", sock, "DBSIZE"], capture_output=True).stdout,
            f"{len(text)}\n".encode())
        for k, v in text.items():
            got = subprocess.run(["redis-cli", "-s", sock, "--raw", "GET", k],
                                 capture_output=True).stdout
            self.assertEqual(got, v + b"\n", k)  # --raw adds a newline

    def test_memcached(self):
        if shutil.which("memcached") is None:
            self.skipTest("memcached is not installed (tools/bazel installs it)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

        def connect():
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                return None

        def ready():
            c = connect()
            if c:
                c.close()
            return c is not None

        start_server(self, ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
                            "-u", "root"] if os.getuid() == 0 else
                     ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"], ready)
        tables = Tables(self)
        prices = tables.new()
        create(prices)
        rng = random.Random(SEED + 3)
        entries = {f"key:{i}".encode(): bytes(rng.randrange(256) for _ in range(rng.randint(0, 100)))
                   for i in range(100)}
        load_lines(prices, entries)
        [line] = recipe("memcached")
        run_recipe(line, [(r"\bprices\b", prices), (r"\b11211\b", str(port))])
        with connect() as c:
            f = c.makefile("rb")
            for k, v in entries.items():
                c.sendall(b"get " + k + b"\r\n")
                header = f.readline()
                self.assertEqual(header, b"VALUE %s 0 %d\r\n" % (k, len(v)), k)
                self.assertEqual(f.read(len(v) + 2), v + b"\r\n")
                self.assertEqual(f.readline(), b"END\r\n")


if __name__ == "__main__":
    unittest.main()
