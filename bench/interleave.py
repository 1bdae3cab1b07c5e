#!/usr/bin/env python3
"""Times commands run alternately, so that noise from other work on the
machine falls on all of them alike (hyperfine runs each command's runs in
one block, which a noisy neighbour can skew by 2x).

    interleave.py [--json FILE] RUNS NAME=COMMAND...

Each round runs every command once (in alternating order); the first 10
rounds are warm-up. Commands are started with posix_spawn, their output
going to /dev/null. Prints, per command, the median, the mean of its
fastest 80% of runs and the mean, in milliseconds. With --json, also writes
{NAME: {"median_ms", "fast80_mean_ms", "mean_ms", "times_ms" (sorted)}} to
FILE, for scripts that compare the commands.
"""
import json
import os
import shlex
import statistics
import sys
import time


def main():
    args = sys.argv[1:]
    json_path = None
    if args[:1] == ["--json"]:
        json_path, args = args[1], args[2:]
    runs = int(args[0])
    cmds = [arg.split("=", 1) for arg in args[1:]]
    times = {name: [] for name, _ in cmds}
    argvs = {name: shlex.split(cmd) for name, cmd in cmds}
    devnull = os.open(os.devnull, os.O_WRONLY)
    # posix_spawn (vfork underneath): a small, constant cost per run.
    to_devnull = [(os.POSIX_SPAWN_DUP2, devnull, 1)]
    for i in range(runs + 10):
        order = cmds if i % 2 == 0 else cmds[::-1]
        for name, _ in order:
            argv = argvs[name]
            t = time.perf_counter()
            pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=to_devnull)
            _, status = os.waitpid(pid, 0)
            elapsed = time.perf_counter() - t
            if status != 0:
                sys.exit(f"{name}: {argv} failed (wait status {status})")
            if i >= 10:
                times[name].append(elapsed)
    stats = {}
    print(f"{'command':<28} {'median ms':>10} {'fast-80% mean ms':>17} {'mean ms':>9}")
    for name, ts in times.items():
        ts.sort()
        stats[name] = (
            statistics.median(ts) * 1e3,
            statistics.mean(ts[: max(1, len(ts) * 4 // 5)]) * 1e3,
            statistics.mean(ts) * 1e3,
        )
        print(f"{name:<28} {stats[name][0]:>10.3f} {stats[name][1]:>17.3f} {stats[name][2]:>9.3f}")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump({name: {"median_ms": m, "fast80_mean_ms": f, "mean_ms": a,
                              "times_ms": [t * 1e3 for t in times[name]]}
                       for name, (m, f, a) in stats.items()}, fh)
    return stats


if __name__ == "__main__":
    main()
