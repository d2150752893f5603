#!/usr/bin/env python3
"""tally bench - CPU time of the bench's own processes, by program name.

    cpu.py PID...

Prints one line per program name (comm), "name<TAB>microseconds", the
user and system CPU time used so far by the given processes and all of
their descendants, threads included. The bench calls it before and after
a load; the difference is what each part of the stack spent on it. Only
processes under the given roots count, so other stacks on the same
machine (with the same program names) do not. Processes that exited in
between are missing from the second reading: the bench's parts live
through a load, and a short-lived one (a psql) is not part of it.
"""

import os
import sys

import proctree

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def processes():
    """{pid: (ppid, comm, cpu_us)} of every process readable now."""
    table = {}
    for pid, stat in proctree.read_all("stat").items():
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[1] is ppid; fields[11], fields[12] utime, stime
        table[pid] = (int(fields[1]), comm,
                      (int(fields[11]) + int(fields[12])) * TICK_US)
    return table


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    roots = {int(p) for p in argv}
    table = processes()
    totals = {}
    for pid in proctree.under(table, roots):
        _, comm, cpu = table[pid]
        # postgres names its processes "postgres: ..." in the title only
        totals[comm] = totals.get(comm, 0) + cpu
    for comm in sorted(totals):
        print(f"{comm}\t{totals[comm]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
