"""What the processes under test use, read from /proc: the PIDs behind a port, CPU ticks, RSS, and
waiting for a quiet box before a phase."""

import os
import resource
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def listening_pids(port):
    """PIDs holding a LISTEN socket on `port`, plus all their descendants."""
    inodes = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % parts[9])
        except OSError:
            pass
    pids, parent = set(), {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as fh:
                parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            if inodes:
                for fd in os.listdir("/proc/%s/fd" % d):
                    try:
                        if os.readlink("/proc/%s/fd/%s" % (d, fd)) in inodes:
                            pids.add(int(d))
                            break
                    except OSError:
                        pass
        except OSError:
            pass
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in pids and pid not in pids:
                pids.add(pid)
                changed = True
    return pids


def cpu_ticks(pids):
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            out[pid] = int(f[11]) + int(f[12])  # utime + stime
        except OSError:
            pass
    return out


def rss_mb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as fh:
                total += next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return round(total / 1024.0, 1)


def sys_ticks():
    """(all, busy, steal) ticks summed over CPUs; busy excludes idle, iowait and steal."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return sum(f[:8]), f[0] + f[1] + f[2] + f[5] + f[6], f[7]


class CpuMeter:
    """CPU seconds of the target's and the mock's processes, wrk, this process, whole box."""

    def __init__(self, target_port, mock_port):
        self.tp, self.mp = target_port, mock_port

    def __enter__(self):
        self.tpids = listening_pids(self.tp)
        self.mpids = listening_pids(self.mp) if self.mp != self.tp else set()
        self.t0, self.m0 = cpu_ticks(self.tpids), cpu_ticks(self.mpids)
        self.s0 = sys_ticks()
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.kid0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.w0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.w0
        t1, m1 = cpu_ticks(self.tpids), cpu_ticks(self.mpids)
        s1 = sys_ticks()
        me = resource.getrusage(resource.RUSAGE_SELF)
        kid = resource.getrusage(resource.RUSAGE_CHILDREN)
        tot, busy, steal = (s1[i] - self.s0[i] for i in range(3))
        target = sum(v - self.t0.get(p, 0) for p, v in t1.items()) / CLK
        mock = sum(v - self.m0.get(p, 0) for p, v in m1.items()) / CLK
        loadgen = (kid.ru_utime + kid.ru_stime - self.kid0.ru_utime - self.kid0.ru_stime
                   + me.ru_utime + me.ru_stime - self.self0.ru_utime - self.self0.ru_stime)
        self.result = {
            "wall_s": round(wall, 3),
            "target_cpu_s": round(target, 3) if self.tpids else None,
            "target_pids": len(self.tpids),
            "target_rss_mb": rss_mb(self.tpids) if self.tpids else None,
            "target_cpu_s_by_pid": sorted((round((v - self.t0.get(p, 0)) / CLK, 2) for p, v in t1.items()),
                                          reverse=True),
            "mock_cpu_s": round(mock, 3) if self.mpids else None,
            "loadgen_cpu_s": round(loadgen, 3),
            "box_busy_pct": round(100.0 * busy / tot, 1) if tot else None,
            "box_steal_pct": round(100.0 * steal / tot, 1) if tot else None,
            # CPU used by anything else on the box (a noisy neighbour process skews every figure)
            "other_cpu_s": round(busy / CLK - target - mock - loadgen, 2),
        }
        return False


def wait_quiet(port, max_wait=120.0, target_max=0.05, box_max=0.10):
    """Wait (bounded) until the target's processes use < target_max of a core (start-up work,
    leftovers) and the whole box is < box_max busy (someone else's job skews every figure)."""
    pids = listening_pids(port)
    t_end = time.monotonic() + max_wait
    while True:
        c0, s0 = sum(cpu_ticks(pids).values()), sys_ticks()
        time.sleep(1.0)
        used = (sum(cpu_ticks(pids).values()) - c0) / CLK
        s1 = sys_ticks()
        box = (s1[1] - s0[1]) / max(1, s1[0] - s0[0])
        if used < target_max and box < box_max:
            return True
        if time.monotonic() > t_end:
            log("   box still busy (%.0f%%) after %ds, measuring anyway" % (100 * box, max_wait))
            return False
        log("   waiting for a quiet box (target %.0f%% of a core, box %.0f%% busy)" % (100 * used, 100 * box))
