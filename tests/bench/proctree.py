"""tally bench - the process table of /proc and the processes under given
roots, for cpu.py and rss.py."""

import os


def read_all(name):
    """{pid: text of /proc/PID/NAME} of every process readable now (one
    that exits meanwhile is left out)."""
    texts = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{name}", encoding="ascii",
                      errors="replace") as f:
                texts[int(entry)] = f.read()
        except OSError:
            continue
    return texts


def under(table, roots):
    """The pids of table ({pid: (ppid, ...)}) that are one of roots or a
    descendant of one, each once."""
    children = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    seen, todo = set(), [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen
