#!/usr/bin/python3
"""Parse wrk output and write bench/RESULTS.md (used by bench/run.sh).

    report.py parse-wrk FILE PHASE ROUND FRONT CONNS HZ FRONT_TICKS BACKEND_TICKS AUTH_TICKS OTHER_PCT
        one tab-separated line: phase round front conns rps p50_us p99_us
        non2xx errors requests, then CPU µs per request of the front (its
        nginx master, workers and their threads), the backend and the auth
        responder, from the clock ticks they used during the run, and the
        CPU used by everything else on the machine (% of all CPUs)
    report.py report WORKDIR OUTDIR
        reads WORKDIR/results.tsv, scale.tsv, machine.txt, raw/storm-*.json;
        writes OUTDIR/RESULTS.md and the gnuplot data files in WORKDIR.
"""
import glob
import json
import os
import re
import statistics
import sys

FRONTS = [("base", "plain nginx TLS proxy (baseline)"),
          ("gh", "gatehouse (decision log off)"),
          ("authreq", "nginx + auth_request (204 responder)"),
          ("ghlog", "gatehouse, decision log on")]
LABEL = dict(FRONTS)
SHORT = {"base": "baseline", "gh": "gatehouse", "authreq": "auth_request",
         "ghlog": "gatehouse+log"}
UNIT = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError("latency %r" % text)
    return float(m.group(1)) * UNIT[m.group(2)]


def parse_wrk(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))
    nreq = int(re.search(r"(\d+) requests in", t).group(1))
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", t, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", t)
    return (rps, nreq, to_us(pct["50"]), to_us(pct["99"]),
            int(non2xx.group(1)) if non2xx else 0,
            sum(int(x) for x in errs.groups()) if errs else 0)


def read_tsv(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = []
        for line in f:
            cells = line.rstrip("\n").split("\t")
            rows.append(dict(zip(head, cells)))
    return head, rows


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_rps(x):
    return "{:,.0f}".format(x)


def fmt_us(x):
    return "{:,.0f} µs".format(x) if x < 10000 else "{:,.1f} ms".format(x / 1000)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def report(work, out):
    _, rows = read_tsv(os.path.join(work, "results.tsv"))
    for r in rows:
        for k in ("rps", "p50_us", "p99_us", "front_cpu_us", "backend_cpu_us",
                  "authsvc_cpu_us"):
            r[k] = float(r[k])
        r["server_cpu_us"] = r["front_cpu_us"] + r["backend_cpu_us"] + r["authsvc_cpu_us"]
        r["round"] = int(r["round"])
        r["conns"] = int(r["conns"])
        r["non2xx"] = int(r["non2xx"])
        r["errors"] = int(r["errors"])
        r["other"] = float(r.get("other_load_pct") or 0)
    machine = dict(line.rstrip("\n").split("=", 1)
                   for line in open(os.path.join(work, "machine.txt")) if "=" in line)
    main = [r for r in rows if r["phase"] == "main"]
    conns_hi = max(r["conns"] for r in main)

    def cell(front, conns, key):
        return [r[key] for r in main if r["front"] == front and r["conns"] == conns]

    def by_round(front, conns):
        return {r["round"]: r for r in main if r["front"] == front and r["conns"] == conns}

    def ratio(front, ref, conns, key):
        a, b = by_round(front, conns), by_round(ref, conns)
        return med([a[k][key] / b[k][key] for k in a if k in b and b[k][key] > 0])

    bad = [r for r in rows if r["non2xx"] or r["errors"]]

    # ---- the main table
    lines = []
    add = lines.append
    add("| front | conns | req/s | p50 | p99 | req/s ÷ baseline | p50 ÷ baseline | p99 ÷ baseline "
        "| front CPU per request | all servers' CPU per request |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fronts_data = []
    for conns in (conns_hi, 1):
        for front, label in FRONTS:
            if not cell(front, conns, "rps"):
                continue
            rps, p50, p99 = (med(cell(front, conns, k)) for k in ("rps", "p50_us", "p99_us"))
            rr, r50, r99 = (ratio(front, "base", conns, k) for k in ("rps", "p50_us", "p99_us"))
            fcpu, scpu = med(cell(front, conns, "front_cpu_us")), med(cell(front, conns, "server_cpu_us"))
            add("| %s | %d | %s | %s | %s | %.3f | %.3f | %.3f | %.1f µs | %.1f µs |" % (
                label, conns, fmt_rps(rps), fmt_us(p50), fmt_us(p99), rr, r50, r99, fcpu, scpu))
            fronts_data.append((front, conns, rps, p50, p99))
    main_table = "\n".join(lines)

    # per-round raw numbers
    lines = ["| phase | round | front | conns | req/s | p50 | p99 | front CPU/req | servers CPU/req "
             "| other load |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["phase"] == "warmup":
            continue
        lines.append("| %s | %d | %s | %d | %s | %s | %s | %.1f µs | %.1f µs | %.0f%% |" % (
            r["phase"], r["round"], SHORT[r["front"]], r["conns"], fmt_rps(r["rps"]),
            fmt_us(r["p50_us"]), fmt_us(r["p99_us"]), r["front_cpu_us"], r["server_cpu_us"],
            r["other"]))
    measured = [r for r in rows if r["phase"] in ("main", "quiet", "disturbed")]
    ndist = len(set(r["round"] for r in rows if r["phase"] == "disturbed"))
    others = sorted(r["other"] for r in measured)
    busy_runs = [r for r in measured if r["other"] >= 10]
    noise = ("During the measured runs, processes other than the benchmark's used a median "
             "of %.0f%% of the CPUs (max %.0f%%; %d of %d runs of the main phase and quiet storm runs at 10%% or more)." % (
                 med(others), others[-1] if others else 0, len(busy_runs), len(measured)))
    if ndist:
        noise += (" %d main round(s) in which some run saw %s%% or more were marked "
                  "\"disturbed\", left out of the medians and replaced by another round."
                  % (ndist, machine.get("disturbed_pct", "15")))
    round_table = "\n".join(lines)

    # ---- storm
    quiet = {r["round"]: r for r in rows if r["phase"] == "quiet"}
    storm = {r["round"]: r for r in rows if r["phase"] == "storm"}
    pairs = sorted(k for k in quiet if k in storm)
    storm_ratio = med([storm[k]["p99_us"] / quiet[k]["p99_us"] for k in pairs])
    storm_rps_ratio = med([storm[k]["rps"] / quiet[k]["rps"] for k in pairs])
    logins = []
    for path in sorted(glob.glob(os.path.join(work, "raw", "storm-*.json"))):
        logins.append(json.load(open(path)))
    lines = ["| round | quiet req/s | quiet p99 | storm req/s | storm p99 | p99 ratio | "
             "front CPU/req quiet → storm | logins ok / planned | login p50 | login p99 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, k in enumerate(pairs):
        lg = logins[i] if i < len(logins) else {}
        lines.append("| %d | %s | %s | %s | %s | %.2f | %.1f → %.1f µs | %s / %s | %s | %s |" % (
            k, fmt_rps(quiet[k]["rps"]), fmt_us(quiet[k]["p99_us"]),
            fmt_rps(storm[k]["rps"]), fmt_us(storm[k]["p99_us"]),
            storm[k]["p99_us"] / quiet[k]["p99_us"], quiet[k]["front_cpu_us"],
            storm[k]["front_cpu_us"], lg.get("ok", "?"), lg.get("planned", "?"),
            "%.0f ms" % lg["login_ms_p50"] if lg.get("login_ms_p50") is not None else "-",
            "%.0f ms" % lg["login_ms_p99"] if lg.get("login_ms_p99") is not None else "-"))
    storm_table = "\n".join(lines)

    # ---- scale
    scale_rows = []
    skipped = []
    spath = os.path.join(work, "scale.tsv")
    if os.path.exists(spath):
        _, srows = read_tsv(spath)
        for r in srows:
            if r.get("bindings") == "skipped" or "decide_ns" not in r or r["decide_ns"] is None:
                skipped.append(r["users"])
            else:
                scale_rows.append(r)
    lines = ["| users | bindings | sessions | load | decide only | user lookup + decide | "
             "request path (policy version + session resolve + decide) | store size |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in scale_rows:
        lines.append("| {:,} | {:,} | {:,} | {:.1f} s ({:.1f} µs/user) | {:,.0f} ns | {:,.0f} ns | "
                     "{:,.0f} ns | {:.0f} MiB |".format(
                         int(r["users"]), int(r["bindings"]), int(r["sessions"]),
                         float(r["load_s"]), float(r["load_us_per_user"]),
                         float(r["decide_ns"]), float(r["lookup_ns"]),
                         float(r["request_ns"]), float(r["store_mib"])))
    for u in skipped:
        lines.append("| {:,} | not measured: the load would not fit the time budget | | | | | | |"
                     .format(int(u)))
    scale_table = "\n".join(lines)
    if len(scale_rows) >= 2:
        first, last = scale_rows[0], scale_rows[-1]
        req_ratio = float(last["request_ns"]) / float(first["request_ns"])
        look_ratio = float(last["lookup_ns"]) / float(first["lookup_ns"])
        dec_ratio = float(last["decide_ns"]) / float(first["decide_ns"])
        scale_span = "%s → %s users" % ("{:,}".format(int(first["users"])),
                                       "{:,}".format(int(last["users"])))
    else:
        req_ratio = look_ratio = dec_ratio = float("nan")
        scale_span = "-"

    # ---- targets
    g_rps = ratio("gh", "base", conns_hi, "rps")
    g_p99 = ratio("gh", "base", conns_hi, "p99_us")
    g_ar = ratio("gh", "authreq", conns_hi, "rps")
    g_p50 = ratio("gh", "base", 1, "p50_us")
    ar_p50 = ratio("authreq", "base", 1, "p50_us")
    targets = [
        ("gatehouse req/s ≥ 0.95× baseline at c%d" % conns_hi, "%.3f×" % g_rps, g_rps >= 0.95),
        ("gatehouse p99 ≤ 1.1× baseline at c%d" % conns_hi, "%.3f×" % g_p99, g_p99 <= 1.1),
        ("gatehouse req/s ≥ 1.45× auth_request at c%d" % conns_hi, "%.3f×" % g_ar, g_ar >= 1.45),
        ("gatehouse p50 ≤ 1.05× baseline at c1", "%.3f× (auth_request: %.3f×)" % (g_p50, ar_p50),
         g_p50 <= 1.05),
        ("login storm raises authenticated p99 < 1.5×", "%.2f× (req/s %.2f×)" % (
            storm_ratio, storm_rps_ratio), storm_ratio < 1.5),
        ("decision time flat from 1k to 1M users (decide alone within ±20%; user lookup + "
         "decide ≤ 1.5×, i.e. no growth beyond cache effects)",
         "decide %.2f×, lookup + decide %.2f×, whole access path %.2f× over %s" % (
             dec_ratio, look_ratio, req_ratio, scale_span),
         0.8 <= dec_ratio <= 1.2 and look_ratio <= 1.5 and not skipped),
    ]
    lines = ["| target | measured | |", "|---|---:|---|"]
    for name, val, ok in targets:
        lines.append("| %s | %s | %s |" % (name, val, verdict(ok)))
    target_table = "\n".join(lines)

    # ---- gnuplot data
    with open(os.path.join(work, "fronts.dat"), "w") as f:
        f.write("# front conns rps p50_us p99_us\n")
        for front, conns, rps, p50, p99 in fronts_data:
            f.write('"%s" %d %.1f %.1f %.1f\n' % (SHORT[front], conns, rps, p50, p99))
    with open(os.path.join(work, "fronts_hi.dat"), "w") as f:
        for front, conns, rps, p50, p99 in fronts_data:
            if conns == conns_hi:
                f.write('"%s" %.1f %.1f %.1f\n' % (SHORT[front], rps, p50, p99))
    with open(os.path.join(work, "fronts_c1.dat"), "w") as f:
        for front, conns, rps, p50, p99 in fronts_data:
            if conns == 1:
                f.write('"%s" %.1f %.1f %.1f\n' % (SHORT[front], rps, p50, p99))
    with open(os.path.join(work, "scale.dat"), "w") as f:
        for r in scale_rows:
            f.write("%s %s %s %s\n" % (r["users"], r["decide_ns"], r["lookup_ns"],
                                       r["request_ns"]))

    m = machine
    dur, rounds = m.get("duration"), m.get("rounds")
    md = """# gatehouse benchmark results

Written by `make bench` (bench/run.sh, bench/report.py) on {date}. How the
numbers are made and what they mean: [docs/performance.md](../docs/performance.md).
Chart: [results.png](results.png). Raw rows: [results.tsv](results.tsv),
[scale.tsv](scale.tsv).

## Machine

| | |
|---|---|
| CPUs (nproc) | {nproc} |
| CPU model | {cpu} |
| kernel | {kernel} |
| OS | {os} |
| nginx | {nginx} |
| OpenSSL | {openssl} |
| load generator | {wrk} |
| gatehouse commit | {commit} |
| run took | {elapsed} s |
{note}
Everything (wrk, the fronts, the backend, the auth responder) shares these
{nproc} CPUs over loopback. Each front runs {workers} nginx worker(s); the
backend and the auth responder run one each. {noise} The "other load"
column of [every run](#every-run) shows it per run; where it is high, that
run's numbers are disturbed (rounds are interleaved and the ratios are taken
within a round to limit the damage).

## Targets

{targets}

## Proxy fronts

Medians over {rounds} interleaved rounds of {dur} s per front and load
(wrk `-c{conns}`: 2 threads, 64 connections; `-c1`: 1 thread, 1
connection). Ratios are computed within each round against that round's
baseline run, then the median of those ratios is taken.

{main}
{warn}
## Login storm

The gatehouse front under `-c{conns}` for {dur} s, alternately quiet and
with password logins started at {rate}/s (Argon2id, 3 passes, 64 MiB — the
default cost; each login: GET the login page, POST the form, session write)
from bench/login.py. Median p99 ratio storm ÷ quiet: **{sratio:.2f}×**;
median req/s ratio: {srps:.2f}×.

{storm}

## Decision at scale

bench/scale_bench.c against a real LMDB store (GH_STORE_NOSYNC bulk load, one
transaction per user): one tenant, users holding 5 role bindings each drawn
from the 10,000 roles of a 1,000-rule policy (bench/decide_bench.c's
generator), sessions for up to 100,000 of them. Median over 100 chunks of
1,000 random users of the mean time per operation.

{scale}

## Exact commands

```sh
make bench        # = make deps all build/decide_bench && bench/run.sh
# with: BENCH_DURATION={dur} BENCH_ROUNDS={rounds} BENCH_WORKERS={workers} BENCH_CONNS={conns} \\
#       BENCH_STORM_RATE={rate} BENCH_STORM_ROUNDS={srounds}
# each measured run (PORT of the front, COOKIE from a real login):
wrk -t2 -c{conns} -d{dur}s --latency -H 'Cookie: __Host-gatehouse=COOKIE' https://127.0.0.1:PORT/
wrk -t1 -c1 -d{dur}s --latency -H 'Cookie: __Host-gatehouse=COOKIE' https://127.0.0.1:PORT/
# the storm, alongside the -c{conns} run on the gatehouse front:
bench/login.py storm https://127.0.0.1:PORT DATA/tls/gateway.crt storm@example.com {rate} {dur1} OUT.json
# the scale benchmark:
build/scale_bench WORKDIR BUDGET_S 1000 10000 100000 1000000
```

## Every run

{rounds_table}
""".format(date=m.get("date"), nproc=m.get("nproc"), cpu=m.get("cpu"),
           kernel=m.get("kernel"), os=m.get("os"), nginx=m.get("nginx"),
           openssl=m.get("openssl"), wrk=m.get("wrk"), commit=m.get("commit"),
           elapsed=m.get("elapsed"), workers=m.get("workers"), targets=target_table,
           note=("| note | %s |\n" % m["note"]) if m.get("note") else "", noise=noise,
           rounds=rounds, dur=dur, conns=conns_hi, main=main_table,
           warn=("\nRuns with errors or non-2xx answers (their numbers are suspect): %s\n" %
                 ", ".join("%s/%s/%s/c%d" % (r["phase"], r["round"], r["front"], r["conns"])
                           for r in bad) if bad else ""),
           rate=m.get("storm_rate"), sratio=storm_ratio, srps=storm_rps_ratio,
           storm=storm_table, scale=scale_table, srounds=m.get("storm_rounds"),
           dur1=int(dur) + 1, rounds_table=round_table)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write(md)


def main(argv):
    if len(argv) == 12 and argv[1] == "parse-wrk":
        rps, nreq, p50, p99, non2xx, errs = parse_wrk(argv[2])
        hz = float(argv[7])
        cpu = ["%.2f" % (float(x) / hz * 1e6 / max(nreq, 1)) for x in argv[8:11]]
        print("\t".join([argv[3], argv[4], argv[5], argv[6], "%.2f" % rps, "%.1f" % p50,
                          "%.1f" % p99, str(non2xx), str(errs), str(nreq)] + cpu +
                         [argv[11]]))
        return 0
    if len(argv) == 4 and argv[1] == "report":
        report(argv[2], argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
