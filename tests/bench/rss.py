"""tally bench - samples the memory of the responders during a load.

    rss.py --duration 60 --out memory.tsv time=PID read=PID ...

Each PID is the root of one responder's process tree (scripts/stack.sh's
keeper loop). Once a second, for each responder, it sums the resident
set size (VmRSS) of every process of the tree whose name starts with
"tally-" (the parent process and its workers), and writes one line per
responder: seconds, responder, processes, rss_kib. Exits 1 if a responder
has no tally-* process at some sample.
"""

import argparse
import sys
import time

import proctree


def process_table():
    """{pid: (ppid, name, rss_kib)} of every process readable in /proc."""
    table = {}
    for pid, status in proctree.read_all("status").items():
        fields = dict(line.split(":", 1) for line in status.splitlines()
                      if ":" in line)
        rss = fields.get("VmRSS", "0 kB").split()[0]
        table[pid] = (int(fields["PPid"]), fields["Name"].strip(), int(rss))
    return table


def tree_usage(table, root):
    """(processes, rss_kib) of the tally-* processes under root."""
    count = rss = 0
    for pid in proctree.under(table, [root]):
        if table[pid][1].startswith("tally-"):
            count += 1
            rss += table[pid][2]
    return count, rss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("roots", nargs="+", help="name=pid")
    args = parser.parse_args()
    roots = [(name, int(pid)) for name, pid in
             (root.split("=", 1) for root in args.roots)]
    start = time.monotonic()
    missing = False
    with open(args.out, "w", encoding="ascii") as out:
        out.write("seconds\tresponder\tprocesses\trss_kib\n")
        for i in range(int(args.duration / args.interval) + 1):
            time.sleep(max(0.0, start + i * args.interval - time.monotonic()))
            table = process_table()
            for name, pid in roots:
                count, rss = tree_usage(table, pid)
                missing = missing or count == 0
                out.write(f"{i * args.interval:g}\ttally-{name}\t{count}\t{rss}\n")
            out.flush()
    if missing:
        print("rss.py: a responder had no tally-* process", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
