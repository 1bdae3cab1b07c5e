#!/usr/bin/env python3
"""Times commands with hyperfine in several rounds, rotating which command
goes first, and merges the rounds: each command still runs back to back
(paying for its own deferred kernel work), but no command has all its runs
at one moment of a machine whose speed drifts.

    rounds.py ROUNDS RUNS NAME=COMMAND...

Each round is one hyperfine run (-N, 10 warm-up runs, RUNS runs of each
command). Prints, per command, the mean, standard deviation and median of
all its runs in milliseconds, then the first command's time relative to
each other one's, by mean and by median.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile


def main():
    rounds, runs = int(sys.argv[1]), int(sys.argv[2])
    cmds = [arg.split("=", 1) for arg in sys.argv[3:]]
    times = {name: [] for name, _ in cmds}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            k = r % len(cmds)
            order = cmds[k:] + cmds[:k]
            out = os.path.join(tmp, f"round{r}.json")
            args = ["hyperfine", "-N", "--warmup", "10", "--runs", str(runs), "--export-json", out]
            for name, cmd in order:
                args += ["-n", name, cmd]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for res in json.load(open(out))["results"]:
                times[res["command"]] += [t * 1e3 for t in res["times"]]
    print(f"{'command':<28} {'mean ms':>9} {'stddev':>8} {'median':>8}")
    stats = {}
    for name, ts in times.items():
        stats[name] = (statistics.mean(ts), statistics.stdev(ts), statistics.median(ts))
        print(f"{name:<28} {stats[name][0]:>9.3f} {stats[name][1]:>8.3f} {stats[name][2]:>8.3f}")
    first = cmds[0][0]
    print()
    for name, _ in cmds[1:]:
        by_mean = stats[first][0] / stats[name][0]
        by_median = stats[first][2] / stats[name][2]
        print(f"{first} takes {by_mean:.3f} of {name}'s time by mean ({1 / by_mean:.2f}x), "
              f"{by_median:.3f} by median ({1 / by_median:.2f}x)")


if __name__ == "__main__":
    main()
