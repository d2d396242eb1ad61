#!/usr/bin/env python3
"""Summarizes a callgrind profile of peer_bench --profile_probe as Markdown: the cost
per operation, the self cost per function, and the source lines that execute the most
instructions and miss the simulated caches the most.

Run it from the repository root (the binary's debug information names sources as
/proc/self/cwd/<path>, which callgrind_annotate then finds).

  callgrind_summary.py --ops N [--label TEXT] callgrind.out > summary.md
"""

import argparse
import os
import re
import subprocess
import sys

EVENTS = ["Ir", "D1mr", "DLmr"]
NUM = r"([\d,]+|\.)(?:\s+\([^)]*\))?"
ROW = re.compile(r"^\s*" + r"\s+".join([NUM] * len(EVENTS)) + r"\s+(.*)$")


def annotate(path, auto):
    cmd = ["callgrind_annotate", "--inclusive=no", "--show=" + ",".join(EVENTS),
           "--threshold=100", "--context=0", "--auto=" + ("yes" if auto else "no"), path]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def number(s):
    return 0 if s == "." else int(s.replace(",", ""))


def drop_groups(s):
    """Replaces every top-level <...> and (...) group by <> and ()."""
    out, depth = [], 0
    for ch in s:
        if ch in "<(":
            if depth == 0:
                out.append(ch)
            depth += 1
        elif ch in ">)" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(ch)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def short_function(name):
    name = re.sub(r"\s*\[[^\]]*\]$", "", name)  # the object file
    if ":" in name and not name.startswith(("shmdict", "std", "XXH")):
        name = name.split(":", 1)[1]            # the source file
    name = name.replace("(anonymous namespace)::", "")
    name = drop_groups(name.replace("operator()", "operator_call"))
    name = name.replace("operator_call", "operator()")
    name = re.sub(r"^(int|double|bool|void|unsigned long) ", "", name)
    return (name.replace("shmdict::internal::", "").replace("shmdict::bench::", "")
            .replace("shmdict::", ""))


def short_file(path):
    for prefix in ("/proc/self/cwd/./", "/proc/self/cwd/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path.split("/")[-1]


def functions(text):
    rows, started = [], False
    for line in text.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = ROW.match(line)
        if m and "PROGRAM TOTALS" not in line:
            rows.append(([number(x) for x in m.groups()[:3]], m.group(4)))
    return rows


def totals(text):
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            m = ROW.match(line)
            if m:
                return [number(x) for x in m.groups()[:3]]
    return None


def source_lines(text):
    rows, current, line_no = [], None, 0
    for line in text.splitlines():
        m = re.match(r"-- Auto-annotated source: (.*)", line)
        if m:
            current = m.group(1).strip()
            continue
        m = re.match(r"-- line (\d+) -+", line)
        if m:
            line_no = int(m.group(1)) - 1
            continue
        if current is None or line.startswith("--"):
            continue
        m = ROW.match(line)
        if not m:
            continue
        line_no += 1
        src = m.group(4).strip()
        if src.startswith("=>") or src.endswith("events annotated"):
            # A call's inclusive cost, or a file's total: not this line's own cost.
            line_no -= 1
            continue
        v = [number(x) for x in m.groups()[:3]]
        if any(v):
            rows.append((v, short_file(current), line_no, src))
    return rows


# --- instruction-level attribution (callgrind --dump-instr=yes) --------------------

def parse_number(tok, prev):
    if tok == "*":
        return prev
    if tok[0] in "+-":
        return prev + int(tok, 0)
    return int(tok, 0)


def instruction_costs(path, binary_name):
    """{address: [events]} for the instructions of the object named binary_name, the
    events as listed on the file's "events:" line; and the names of those events. Call
    lines (the inclusive cost of a call) are skipped."""
    names = {"ob": {}, "fn": {}}
    events, costs = [], {}
    ob = fn = None
    addr = line_no = 0
    skip_next = False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            m = re.match(r"^(c?)(ob|fn|fl|fi|fe)=(?:\((\d+)\))?\s*(.*)$", line)
            if m:
                called, kind, ident, name = m.groups()
                if kind in names and ident:
                    if name:
                        names[kind][ident] = name
                    name = names[kind].get(ident, name)
                if not called:
                    if kind == "ob":
                        ob = name
                    elif kind == "fn":
                        fn = name
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            if not (line[0].isdigit() or line[0] in "+-*"):
                continue
            toks = line.split()
            addr = parse_number(toks[0], addr)
            line_no = parse_number(toks[1], line_no)
            if skip_next:
                skip_next = False
                continue
            if ob is None or not ob.endswith(binary_name):
                continue
            v = [int(x) for x in toks[2:]]
            acc = costs.setdefault(addr, [0] * len(events))
            for i, x in enumerate(v):
                acc[i] += x
    return costs, events


def inline_chains(binary, addresses):
    """{address: [(function, file:line), ...] innermost first} via addr2line -i."""
    if not addresses:
        return {}
    text = subprocess.run(
        ["addr2line", "-i", "-f", "-C", "-a", "-e", binary] + ["0x%x" % a for a in addresses],
        capture_output=True, text=True, check=True).stdout
    chains, current = {}, None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("0x"):
            current = int(lines[i], 16)
            chains[current] = []
            i += 1
            continue
        if i + 1 < len(lines) and current is not None:
            loc = re.sub(r" \(discriminator \d+\)", "", lines[i + 1])
            loc = loc.replace("/proc/self/cwd/", "")
            loc = loc[2:] if loc.startswith("./") else loc
            if loc.startswith("/"):
                loc = loc.split("/")[-1]
            chains[current].append((lines[i], loc))
        i += 2
    return chains


def attribute_misses(profile, binary, ops):
    costs, events = instruction_costs(profile, os.path.basename(binary))
    if "DLmr" not in events or "D1mr" not in events:
        return []
    d1, dl, ir = events.index("D1mr"), events.index("DLmr"), events.index("Ir")
    hot = sorted((a for a, v in costs.items() if v[d1] / ops >= 0.01),
                 key=lambda a: -costs[a][d1])[:16]
    chains = inline_chains(binary, hot)
    rows = []
    for a in hot:
        chain = chains.get(a, [])
        engine = [loc for _, loc in chain if loc.startswith(("core/", "api/", "bench/"))]
        innermost = chain[0][1] if chain else "?"
        where = " < ".join(dict.fromkeys([innermost] + engine[:4]))
        rows.append((a, costs[a][ir] / ops, costs[a][d1] / ops, costs[a][dl] / ops, where))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, required=True)
    parser.add_argument("--label", default="")
    parser.add_argument("--binary", default="",
                        help="the profiled binary, to attribute misses to source lines by "
                        "instruction (needs a profile made with --dump-instr=yes)")
    parser.add_argument("profile")
    args = parser.parse_args()
    try:
        plain = annotate(args.profile, auto=False)
        auto = annotate(args.profile, auto=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("callgrind_summary: callgrind_annotate failed: %s" % e)
    ops = float(args.ops)
    t = totals(plain)
    out = []
    if args.label:
        out.append(args.label)
        out.append("")
    if t:
        out.append("Per operation: %.0f instructions, %.2f first-level data read misses, "
                   "%.2f last-level data read misses (callgrind's simulated caches)."
                   % (t[0] / ops, t[1] / ops, t[2] / ops))
        out.append("")
    out.append("| function (self cost) | Ir per operation | D1mr per operation | DLmr per operation |")
    out.append("|---|---|---|---|")
    merged = {}
    for v, name in functions(plain):
        key = short_function(name)
        merged[key] = [a + b for a, b in zip(merged.get(key, [0, 0, 0]), v)]
    for name, v in sorted(merged.items(), key=lambda kv: -kv[1][0])[:12]:
        if v[0] / ops < 0.05:
            continue
        out.append("| `%s` | %.1f | %.2f | %.2f |" % (name, v[0] / ops, v[1] / ops, v[2] / ops))
    out.append("")
    lines = source_lines(auto)
    for title, key in (("instructions", 0), ("last-level misses", 2)):
        top = [r for r in sorted(lines, key=lambda r: -r[0][key])
               if r[0][key] / ops >= 0.01][:12]
        if not top:
            continue
        out.append("Source lines with the most %s (inlined code is charged to the line "
                   "it came from):" % title)
        out.append("")
        out.append("| source | Ir per operation | D1mr per operation | DLmr per operation |")
        out.append("|---|---|---|---|")
        for v, f, n, _ in top:
            out.append("| %s:%d | %.1f | %.2f | %.2f |" % (f, n, v[0] / ops, v[1] / ops, v[2] / ops))
        out.append("")
    if args.binary:
        rows = attribute_misses(args.profile, args.binary, ops)
        if rows:
            out.append("The loads that miss, by instruction (the inline chain from the "
                       "load outwards, via addr2line):")
            out.append("")
            out.append("| instruction | executions per operation | D1mr per operation | DLmr per operation | "
                       "source (load < callers) |")
            out.append("|---|---|---|---|---|")
            for a, ir, d1, dl, where in rows:
                out.append("| 0x%x | %.2f | %.2f | %.2f | %s |" % (a, ir, d1, dl, where))
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
