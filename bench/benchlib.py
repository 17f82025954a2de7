"""Helpers shared by the benchmarks' Python scripts (bench/api/summary.py,
bench/worker/summary.py, bench/worker/recur.py); standard library only.

A script imports it with its own directory's parent on sys.path, so that it
runs from any working directory:

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import benchlib
"""
import json
import math
import os
import re
import sys


# --- figures ----------------------------------------------------------------------

def percentile(vals, p):
    """The nearest-rank p-th percentile of vals (None entries left out), or
    None when there is none."""
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    k = max(0, min(len(vals) - 1, math.ceil(p / 100.0 * len(vals)) - 1))  # nearest rank
    return vals[k]


def median(vals):
    """The median of vals (None entries left out), or None when there is none."""
    vals = sorted(v for v in vals if v is not None)
    n = len(vals)
    if not n:
        return None
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2.0


def hist_quantile(q, buckets):
    """buckets: upper bound -> cumulative count; linear inside the bucket
    (Prometheus' histogram_quantile)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    prev_b, prev_c = 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if b == float("inf"):
                return prev_b
            if c == prev_c:
                return b
            return prev_b + (b - prev_b) * (rank - prev_c) / (c - prev_c)
        prev_b, prev_c = b, c
    return prev_b


def grab(text, pattern, cast=float, default=None):
    """cast(the first group of pattern's first match in text, lines
    anchored), or default."""
    m = re.search(pattern, text, re.M)
    return cast(m.group(1)) if m else default


def pgbench_tps(text):
    """pgbench's tps (without the initial connection time when it says so),
    from its output text; None when absent."""
    tps = grab(text, r"^tps = ([0-9.]+) \(without initial connection time\)")
    if tps is None:
        tps = grab(text, r"^tps = ([0-9.]+)")
    return tps


def split_round(label):
    """("name", "3") for "name.3", (label, "") for a label without a round."""
    base, _, rnd = label.rpartition(".")
    if not base or not rnd.isdigit():
        return label, ""
    return base, rnd


# --- files ------------------------------------------------------------------------

def append(results, rec):
    """rec as one JSON line appended to the file results."""
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def load_raw(path, missing_ok=False):
    """The JSON lines of a results file by their "label" (the last wins);
    with missing_ok, {} for a file that is not there."""
    out = {}
    if missing_ok and not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rec = json.loads(line)
                out[rec["label"]] = rec
    return out


def read_tsv(path, fields):
    """The tab-separated rows of path with at least fields columns ([] when
    the file cannot be read)."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) >= fields:
                    out.append(p)
    except OSError:
        pass
    return out


def load_info(path):
    """The key=value lines of an info file (run.sh's info())."""
    info = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                info[k] = v
    return info


# --- the table --------------------------------------------------------------------

def table_lines(headers, rows):
    """headers, a rule and rows as aligned text lines: the first column
    left-aligned, the others right-aligned."""
    widths = [max(len(str(x[i])) for x in rows + [headers]) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                         for i, c in enumerate(row)).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows]


def write_summary(results_path, lines, info, results, headers, rows, notes=()):
    """Finishes the summary: lines, then "TEXT: value" for each (key, TEXT)
    of notes whose key info has, then where the raw outputs are.  Prints it
    and writes it beside results_path as summary.txt, and the figures as
    summary.json (info, results, the table's rows by header)."""
    lines = lines + [f"{text}: {info[key]}" for key, text in notes if key in info]
    outdir = os.path.dirname(os.path.abspath(results_path))
    lines.append(f"raw outputs: {outdir}/")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(outdir, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(outdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({"info": info, "results": results,
                   "table": [dict(zip(headers, row)) for row in rows]}, f, indent=2)


# --- the command line -------------------------------------------------------------

def main(argv, doc, cmds):
    """Runs cmds[argv[1]] = (number of arguments, function) with the
    arguments after the command's name: 0; else doc to stderr: 2."""
    if len(argv) >= 2 and argv[1] in cmds and len(argv) - 2 == cmds[argv[1]][0]:
        cmds[argv[1]][1](*argv[2:])
        return 0
    sys.stderr.write(doc)
    return 2
