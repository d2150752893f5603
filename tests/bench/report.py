"""tally bench - turns the raw measurements into the report.

    report.py latency LOGFILE...      p50, p99 and p99.9 (microseconds)
                                      of pgbench per-transaction logs
    report.py named-check BEFORE AFTER COUNTS
                                      the named loads' check: BEFORE and
                                      AFTER hold "name<TAB>value" lines
                                      (the counters before and after the
                                      load), COUNTS "name<TAB>ok<TAB>
                                      unanswered" (openloop -o); prints
                                      the total growth, how many counters
                                      did not grow by their 200s (plus at
                                      most their unanswered), how many
                                      were written
    report.py report DIR CHART_GP     reads DIR/loads.tsv, DIR/cpu.tsv,
                                      DIR/open.tsv, DIR/memory.tsv,
                                      DIR/memory-idle.tsv and
                                      DIR/machine.txt; writes
                                      results.tsv, table.md, bench.png,
                                      open.png and memory.png into DIR;
                                      prints the table

The targets are checked on the ratios at the highest connection count;
a missed target is reported, it does not fail the run. The targets named
"prod-..." ran with the database's commits slowed down by
commit_delay = BENCH_COMMIT_DELAY_US microseconds (environment, 2000),
production's commit latency.
"""

import csv
import os
import subprocess
import sys

COMMIT_DELAY_MS = int(os.environ.get("BENCH_COMMIT_DELAY_US", "2000")) / 1000
SLOW = f"commit +{COMMIT_DELAY_MS:g} ms"

TARGETS = [
    ("tally-time", "tally /time"),
    ("tally-read", "tally /read"),
    ("tally-write", "tally /write"),
    ("tally-write-keyed", "tally /write, keyed"),
    ("static", "lighttpd static file"),
    ("floor", "lighttpd + FastCGI floor"),
    ("pgbench-update", "pgbench UPDATE"),
    ("pgbench-select", "pgbench SELECT"),
    ("flask-time", "Flask /time"),
    ("flask-read", "Flask /read"),
    ("flask-write", "Flask /write"),
    ("prod-tally-write", f"tally /write, {SLOW}"),
    ("prod-tally-write-keyed", f"tally /write, keyed, {SLOW}"),
    ("prod-pgbench-update", f"pgbench UPDATE, {SLOW}"),
    ("prod-flask-write", f"Flask /write, {SLOW}"),
    ("tally-mixed", "tally mixed (memory load)"),
    ("closed-floor", "lighttpd + FastCGI floor, openloop closed loop"),
    ("closed-tally-write", "tally /write, openloop closed loop"),
    ("named-hot", "tally /write/NAME, one hot counter"),
    ("named-zipf", "tally /write/NAME, Zipf(1.0) over 100,000 counters"),
    ("named-1k", "tally /write/NAME, Zipf(1.0) over a table of 1,000"),
    ("named-1m", "tally /write/NAME, Zipf(1.0) over a table of 1,000,000"),
]
LABELS = dict(TARGETS)

# (numerator, denominator, measure, target): "rps" is num/den req/s,
# "p99" is den/num p99 latency (how many times shorter tally's is), both
# met when at least the target; "p99-times" is num/den p99 latency, met
# when at most the target.
RATIOS = [
    ("tally-time", "floor", "rps", 0.9),
    ("tally-read", "floor", "rps", 0.8),
    ("tally-write", "floor", "rps", 0.8),
    ("tally-write-keyed", "floor", "rps", 0.6),
    ("tally-write", "floor", "p99-times", 2),
    ("prod-tally-write", "prod-pgbench-update", "rps", 40),
    ("prod-tally-write-keyed", "prod-pgbench-update", "rps", None),
    ("prod-tally-write", "prod-flask-write", "rps", None),
    ("tally-write", "pgbench-update", "rps", 5),
    ("tally-write-keyed", "pgbench-update", "rps", 5),
    ("tally-time", "flask-time", "rps", 5),
    ("tally-time", "flask-time", "p99", 5),
    ("tally-read", "flask-read", "rps", 5),
    ("tally-read", "flask-read", "p99", 5),
    ("tally-write", "flask-write", "rps", 5),
    ("tally-write", "flask-write", "p99", 5),
    ("tally-write-keyed", "flask-write", "rps", 5),
    ("tally-write-keyed", "flask-write", "p99", 5),
    ("tally-read", "pgbench-select", "rps", None),
    ("tally-write-keyed", "tally-write", "rps", None),
    ("named-zipf", "closed-floor", "rps", 0.65),
    ("named-hot", "closed-tally-write", "rps", 0.95),
    ("named-1m", "named-1k", "p99-times", 1.2),
    ("closed-tally-write", "closed-floor", "rps", None),
]

CHART_TARGETS = [name for name, _ in TARGETS if name != "tally-mixed"
                 and not name.startswith(("closed-", "named-"))]

# The open-loop loads (open.tsv), in the order of their table and chart.
OPEN_TARGETS = ["floor", "tally-time", "tally-read", "tally-write",
                "tally-write-keyed", "prod-tally-write"]


def percentile(values, p):
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return 0
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def cmd_latency(paths):
    """pgbench -l lines: client transaction latency_us script epoch us."""
    latencies = []
    for path in paths:
        with open(path, encoding="ascii") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
    latencies.sort()
    print(percentile(latencies, 50), percentile(latencies, 99),
          percentile(latencies, 99.9))
    return 0


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def load_results(loads):
    """{(target, connections): its rounds combined}: the median round's
    req/s, p50 and p99 (each the median over the rounds), the slowest and
    fastest round, and the sums of requests, answers 200 and errors; the
    counter check is "ok" only if every round's was."""
    rounds = {}
    for row in loads:
        rounds.setdefault((row["target"], int(row["connections"])),
                          []).append(row)
    results = {}
    for key, rows in rounds.items():
        rps = [int(r["requests"]) / (int(r["duration_us"]) / 1e6)
               if int(r["duration_us"]) else 0.0 for r in rows]
        checks = [r["counter_check"] for r in rows]
        growth = [r["counter_growth"] for r in rows]
        results[key] = {
            "rounds": len(rows),
            "rps": median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50": median(int(r["p50_us"]) for r in rows) / 1000,
            "p99": median(int(r["p99_us"]) for r in rows) / 1000,
            "p999": median(int(r["p999_us"]) for r in rows) / 1000,
            "requests": sum(int(r["requests"]) for r in rows),
            "ok": sum(int(r["ok"]) for r in rows),
            "errors": sum(int(r["errors"]) for r in rows),
            "counter_growth": ("-" if "-" in growth else
                               sum(int(g) for g in growth)),
            "counter_check": ("-" if "-" in checks else
                              "ok" if all(c == "ok" for c in checks)
                              else "FAILED"),
        }
    return results


def ms(value):
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def notes(results, name, conns_list):
    """The slowest and fastest round at the highest connection count,
    "counter exact" or "counter FAILED" after /write loads, and the
    requests that failed (error status, cut connection, timeout)."""
    loads = [results[(name, c)] for c in conns_list if (name, c) in results]
    checks = [r["counter_check"] for r in loads if r["counter_check"] != "-"]
    errors = sum(int(r["errors"]) for r in loads)
    words = []
    top = results.get((name, conns_list[-1])) if conns_list else None
    if top and top["rounds"] > 1:
        words.append(f"rounds {top['rps_min']:.0f}-{top['rps_max']:.0f} "
                     f"req/s @{conns_list[-1]}")
    if checks:
        ok = all(check == "ok" for check in checks)
        words.append("counter exact" if ok else "counter FAILED")
    if errors:
        words.append(f"{errors} errors")
    return ", ".join(words)


def table_rows(results, conns_list):
    header = ["target"]
    for c in conns_list:
        header += [f"req/s @{c}", f"p50 ms @{c}", f"p99 ms @{c}",
                   f"p99.9 ms @{c}"]
    header.append("notes")
    rows = []
    for name, label in TARGETS:
        cells = [label]
        present = False
        for c in conns_list:
            r = results.get((name, c))
            present = present or r is not None
            cells += ([f"{r['rps']:.0f}", ms(r["p50"]), ms(r["p99"]),
                       ms(r["p999"])] if r else ["-", "-", "-", "-"])
        if present:
            rows.append(cells + [notes(results, name, conns_list)])
    return header, rows


def ratio_rows(results, conns):
    rows = []
    for num, den, measure, target in RATIOS:
        a, b = results.get((num, conns)), results.get((den, conns))
        if measure == "rps":
            what = f"{LABELS[num]} / {LABELS[den]}, req/s"
            value = a["rps"] / b["rps"] if a and b and b["rps"] else None
        elif measure == "p99":
            what = f"{LABELS[den]} p99 / {LABELS[num]} p99"
            value = b["p99"] / a["p99"] if a and b and a["p99"] else None
        else:
            what = f"{LABELS[num]} p99 / {LABELS[den]} p99"
            value = a["p99"] / b["p99"] if a and b and b["p99"] else None
        at_most = measure == "p99-times"
        if value is None:
            shown, verdict = "n/a", "not measured"
        else:
            shown = f"{value:.2f}"
            met = value <= target if at_most else value >= target \
                if target is not None else None
            verdict = ("" if target is None else "met" if met else "MISSED")
        bound = ("" if target is None else
                 f"<= {target:g}" if at_most else f">= {target:g}")
        rows.append([what, shown, bound, verdict])
    return rows


CPU_TARGETS = ["floor", "tally-time", "tally-read", "tally-write",
               "tally-write-keyed", "pgbench-update", "flask-write",
               "prod-tally-write", "prod-tally-write-keyed"]
CPU_PARTS = ["lighttpd", "responder", "PostgreSQL"]


def cpu_part(program):
    if program == "lighttpd":
        return "lighttpd"
    if program.startswith("tally-") or program in ("floor", "gunicorn"):
        return "responder"
    if program.startswith("postgres"):
        return "PostgreSQL"
    return None


def cpu_rows(cpu, loads):
    """Per target at the highest connection count: each part's share of
    one core and its CPU microseconds per request, the median over the
    rounds."""
    if not cpu:
        return None, []
    conns = max(int(r["connections"]) for r in cpu)
    runs = {(r["target"], int(r["round"])): r for r in loads
            if int(r["connections"]) == conns}
    spent = {}
    for r in cpu:
        part = cpu_part(r["program"])
        if part is None or int(r["connections"]) != conns:
            continue
        key = (r["target"], int(r["round"]))
        spent.setdefault(key, {}).setdefault(part, 0)
        spent[key][part] += int(r["cpu_us"])
    rows = []
    for name in CPU_TARGETS:
        keys = [k for k in spent if k[0] == name and k in runs]
        if not keys:
            continue
        cells = [LABELS[name], f"{median(int(runs[k]['requests']) / (int(runs[k]['duration_us']) / 1e6) for k in keys):.0f}"]
        for part in CPU_PARTS:
            share = median(spent[k].get(part, 0) / int(runs[k]["duration_us"])
                           * 100 for k in keys)
            per = median(spent[k].get(part, 0) / max(1, int(runs[k]["requests"]))
                         for k in keys)
            cells.append(f"{share:.0f}% ({per:.1f} us)")
        rows.append(cells)
    header = [f"CPU at {conns} connections", "req/s"] + [
        f"{p}, % of a core (us/request)" for p in CPU_PARTS]
    return header, rows


def memory_rows(samples, idle_samples):
    """Per responder: RSS before any load, then at the start, end and
    peak of the memory load."""
    idle = {s["responder"]: int(s["rss_kib"]) / 1024 for s in idle_samples}
    by_name = {}
    for s in samples:
        by_name.setdefault(s["responder"], []).append(s)
    rows = []
    for name, series in by_name.items():
        rss = [int(s["rss_kib"]) / 1024 for s in series]
        procs = max(int(s["processes"]) for s in series)
        rows.append([name, str(procs),
                     f"{idle[name]:.1f}" if name in idle else "-",
                     f"{rss[0]:.1f}", f"{rss[-1]:.1f}", f"{max(rss):.1f}",
                     f"{rss[-1] - rss[0]:+.1f}"])
    return ["responder", "processes", "idle MiB", "start MiB", "end MiB",
            "max MiB", "end - start MiB"], rows


def text_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = []
    for cells in [header] + rows:
        lines.append("  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


def is_text(cell):
    return cell not in ("-", "n/a") and any(c.isalpha() for c in cell)


def markdown_table(header, rows):
    """Columns of words align left, columns of numbers right."""
    align = ["---" if any(is_text(row[i]) for row in rows) else "---:"
             for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
              for row in rows]
    return "\n".join(lines)


def write_results_tsv(path, results):
    with open(path, "w", encoding="utf-8") as f:
        f.write("target\tconnections\trounds\treq_per_s\treq_per_s_min"
                "\treq_per_s_max\tp50_ms\tp99_ms\trequests"
                "\tok\terrors\tcounter_growth\tcounter_check\tp999_ms\n")
        for (name, conns), r in results.items():
            f.write(f"{name}\t{conns}\t{r['rounds']}\t{r['rps']:.1f}"
                    f"\t{r['rps_min']:.1f}\t{r['rps_max']:.1f}"
                    f"\t{r['p50']:.3f}"
                    f"\t{r['p99']:.3f}\t{r['requests']}\t{r['ok']}"
                    f"\t{r['errors']}\t{r['counter_growth']}"
                    f"\t{r['counter_check']}\t{r['p999']:.3f}\n")


def plot(chart_gp, out, kind, data, conns_list=()):
    setting = (f"kind='{kind}'; datafile='{data}'; outfile='{out}'; "
               f"c1='{conns_list[0] if conns_list else ''}'; "
               f"c2='{conns_list[-1] if conns_list else ''}'")
    subprocess.run(["gnuplot", "-e", setting, chart_gp], check=True)


def write_chart_data(path, results, conns_list):
    with open(path, "w", encoding="utf-8") as f:
        for name in CHART_TARGETS:
            cells = []
            for c in (conns_list[0], conns_list[-1]):
                r = results.get((name, c))
                cells += [r["rps"], r["p99"]] if r else ["NaN", "NaN"]
            if cells.count("NaN") < 4:
                f.write(f'"{LABELS[name]}" ' + " ".join(map(str, cells)) + "\n")


def write_memory_data(path, samples):
    names = sorted({s["responder"] for s in samples})
    with open(path, "w", encoding="utf-8") as f:
        for name in names:
            f.write(f'"{name}"\n')
            for s in samples:
                if s["responder"] == name:
                    f.write(f"{s['seconds']} {int(s['rss_kib']) / 1024:.2f}\n")
            f.write("\n\n")


def open_results(directory):
    """{(target, percent): its open.tsv row}, and the connections."""
    rows = read_tsv(os.path.join(directory, "open.tsv"))
    return ({(r["target"], int(r["percent"])): r for r in rows},
            rows[0]["connections"] if rows else "")


def open_rows(opened):
    """One row per open-loop load: the rate asked and the rate sent, the
    latencies from each request's due time, the generator's own lag."""
    header = ["target", "% of capacity", "offered req/s", "sent req/s",
              "p50 ms", "p99 ms", "p99.9 ms", "errors", "generator lag p99 ms",
              "counter"]
    rows = []
    for name in OPEN_TARGETS:
        for (target, pct), r in sorted(opened.items(), key=lambda x: x[0][1]):
            if target != name:
                continue
            rows.append([LABELS[name], str(pct), r["rate"],
                         f"{float(r['sent_rate']):.0f}",
                         ms(int(r["p50_us"]) / 1000),
                         ms(int(r["p99_us"]) / 1000),
                         ms(int(r["p999_us"]) / 1000), r["errors"],
                         ms(int(r["lag_p99_us"]) / 1000),
                         {"ok": "exact", "-": "-"}.get(r["counter_check"],
                                                       r["counter_check"])])
    return header, rows


def open_targets(opened, results, conns):
    """The latency targets: open loop, tally /write's p99 within 1 ms of
    the floor's at 50 and 75 % of the floor's capacity, and within 3 T
    with production's commit latency T at 75 % of its bound; keyed
    /write's p99 at most 3 times the floor's, open loop (75 %) and closed
    loop (the highest connection count)."""
    def p99(name, pct):
        r = opened.get((name, pct))
        return int(r["p99_us"]) / 1000 if r else None

    def row(what, value, bound):
        if value is None or bound is None:
            return [what, "n/a", "", "not measured"]
        return [what, ms(value), f"<= {ms(bound)}",
                "met" if value <= bound else "MISSED"]

    rows = []
    for pct in (50, 75):
        floor = p99("floor", pct)
        rows.append(row(f"open {pct}%: {LABELS['tally-write']} p99 ms",
                        p99("tally-write", pct),
                        floor + 1 if floor is not None else None))
    rows.append(row(f"open 75% of its bound: {LABELS['prod-tally-write']} "
                    "p99 ms", p99("prod-tally-write", 75),
                    3 * COMMIT_DELAY_MS))
    floor = p99("floor", 75)
    rows.append(row(f"open 75%: {LABELS['tally-write-keyed']} p99 ms",
                    p99("tally-write-keyed", 75),
                    3 * floor if floor is not None else None))
    a, b = (results.get(("tally-write-keyed", conns)),
            results.get(("floor", conns)))
    rows.append(row(f"closed @{conns}: {LABELS['tally-write-keyed']} p99 ms",
                    a["p99"] if a else None, 3 * b["p99"] if b else None))
    return ["latency target", "value", "target", ""], rows


def write_open_data(path, opened):
    """One block per target: its "label", then "percent p50 p99 p99.9"."""
    with open(path, "w", encoding="utf-8") as f:
        for name in OPEN_TARGETS:
            points = sorted((pct, r) for (target, pct), r in opened.items()
                            if target == name)
            if not points:
                continue
            label = LABELS[name] + (" (% of its bound)"
                                    if name.startswith("prod-") else "")
            f.write(f'"{label}"\n')
            for pct, r in points:
                f.write(f"{pct} {int(r['p50_us']) / 1000} "
                        f"{int(r['p99_us']) / 1000} "
                        f"{int(r['p999_us']) / 1000}\n")
            f.write("\n\n")


def read_pairs(path):
    with open(path, encoding="utf-8") as f:
        return {fields[0]: [int(x) for x in fields[1:]]
                for fields in (line.rstrip("\n").split("\t") for line in f)
                if fields[0]}


def cmd_named_check(before_path, after_path, counts_path):
    """Every counter grew by its 200s, plus at most its unanswered
    requests; counters not written did not move."""
    before, after = read_pairs(before_path), read_pairs(after_path)
    counts = read_pairs(counts_path)
    growth = off = 0
    for name in sorted(set(before) | set(after) | set(counts)):
        grew = after.get(name, [0])[0] - before.get(name, [0])[0]
        ok, unanswered = counts.get(name, [0, 0])
        growth += grew
        if not ok <= grew <= ok + unanswered:
            off += 1
            if off <= 10:
                print(f"named-check: {name} grew by {grew} for {ok} answers "
                      f"200 ({unanswered} unanswered)", file=sys.stderr)
    print(growth, off, len(counts))
    return 0


def cmd_report(directory, chart_gp):
    results = load_results(read_tsv(os.path.join(directory, "loads.tsv")))
    samples = read_tsv(os.path.join(directory, "memory.tsv"))
    conns_list = sorted({c for (name, c) in results if name != "tally-mixed"})
    if not conns_list:
        print("report.py: no loads measured", file=sys.stderr)
        return 1
    write_results_tsv(os.path.join(directory, "results.tsv"), results)
    header, rows = table_rows(results, conns_list)
    ratios = ratio_rows(results, conns_list[-1])
    ratio_header = [f"ratio at {conns_list[-1]} connections", "value",
                    "target", ""]
    mem_header, mem_rows = memory_rows(
        samples, read_tsv(os.path.join(directory, "memory-idle.tsv")))
    cpu_header, cpu_table = cpu_rows(
        read_tsv(os.path.join(directory, "cpu.tsv")),
        read_tsv(os.path.join(directory, "loads.tsv")))
    with open(os.path.join(directory, "machine.txt"), encoding="utf-8") as f:
        machine = f.read().rstrip("\n")
    opened, open_conns = open_results(directory)
    open_header, open_table = open_rows(opened)
    goal_header, goals = open_targets(opened, results, conns_list[-1])

    print(machine, "", text_table(header, rows), "",
          text_table(ratio_header, ratios), sep="\n")
    if open_table:
        print("", f"open-loop loads ({open_conns} connections), latency "
              "from each request's due time:",
              text_table(open_header, open_table), sep="\n")
    print("", text_table(goal_header, goals), sep="\n")
    if cpu_table:
        print("", "CPU time of each part during the loads:",
              text_table(cpu_header, cpu_table), sep="\n")
    if mem_rows:
        print("", "memory (RSS of all processes of each responder) during "
              "the mixed load:", text_table(mem_header, mem_rows), sep="\n")
    with open(os.path.join(directory, "table.md"), "w",
              encoding="utf-8") as f:
        f.write("\n\n".join(filter(None, [
            "\n".join(f"- {line}" for line in machine.splitlines()),
            markdown_table(header, rows),
            markdown_table(ratio_header, ratios),
            markdown_table(open_header, open_table) if open_table else "",
            markdown_table(goal_header, goals),
            markdown_table(cpu_header, cpu_table) if cpu_table else "",
            markdown_table(mem_header, mem_rows) if mem_rows else "",
        ])) + "\n")

    data = os.path.join(directory, "chart.dat")
    write_chart_data(data, results, conns_list)
    plot(chart_gp, os.path.join(directory, "bench.png"), "loads", data,
         conns_list)
    if opened:
        data = os.path.join(directory, "open.dat")
        write_open_data(data, opened)
        plot(chart_gp, os.path.join(directory, "open.png"), "open", data,
             [open_conns])
    if samples:
        data = os.path.join(directory, "memory.dat")
        write_memory_data(data, samples)
        plot(chart_gp, os.path.join(directory, "memory.png"), "memory", data)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "latency":
        return cmd_latency(argv[1:])
    if len(argv) == 4 and argv[0] == "named-check":
        return cmd_named_check(*argv[1:])
    if len(argv) == 3 and argv[0] == "report":
        return cmd_report(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
