#!/usr/bin/env python3
"""Counts the system calls of peer_bench's steady-state loops in an `strace -f` log.

peer_bench --syscall_probe=STORE marks its loops with failing write(-1, ...) calls:
"shmdict-bench-marker get-begin" ... "get-end", then "put-begin" ... "put-end". Every
system call strace logged between a begin and its end, in any process or thread, is
counted (a call that strace split into "unfinished" and "resumed" lines counts once).

  count_syscalls.py --engine NAME --ops N STRACE_LOG  >> syscalls.jsonl
"""

import argparse
import collections
import json
import re
import sys

CALL = re.compile(r"^(?:\[pid\s+)?\d*\]?\s*([a-z_0-9]+)\(")
MARKER = re.compile(r"shmdict-bench-marker (get|put)-(begin|end)")


def count(lines):
    counts = {"get": collections.Counter(), "put": collections.Counter()}
    seen = {"get": [False, False], "put": [False, False]}
    current = None
    for line in lines:
        m = MARKER.search(line)
        if m:
            phase, edge = m.groups()
            seen[phase][0 if edge == "begin" else 1] = True
            current = phase if edge == "begin" else None
            continue
        if current is None or "resumed>" in line:
            continue
        # Drop the pid that strace -f puts first, then read the call's name.
        body = line.split(None, 1)[1] if line[:1].isdigit() else line
        c = CALL.match(body)
        if c:
            counts[current][c.group(1)] += 1
    for phase, (begin, end) in seen.items():
        if not (begin and end):
            sys.exit("count_syscalls: the log lacks the %s markers" % phase)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--ops", type=int, required=True)
    parser.add_argument("log")
    args = parser.parse_args()
    if args.ops < 1:
        parser.error("--ops must be positive")
    with open(args.log, errors="replace") as f:
        counts = count(f)
    for phase in ("get", "put"):
        total = sum(counts[phase].values())
        print(json.dumps({
            "suite": "syscalls",
            "engine": args.engine,
            "op": phase,
            "ops": args.ops,
            "syscalls": total,
            "per_op": total / args.ops,
            "by_name": dict(counts[phase].most_common()),
        }))


if __name__ == "__main__":
    main()
