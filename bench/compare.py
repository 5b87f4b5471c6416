"""Run the benchmarks and print one table of nncore against its peers.

    python bench/compare.py [pytest args...]      e.g. -k dense, or a file

Every benchmark in bench/ names its case with ``benchmark.group`` and its
implementation with ``benchmark.extra_info["impl"]``: "nncore" (or a variant
of it whose name starts with "nncore", such as "nncore avx2") and its peers
("numpy", "torch", "sklearn", ...). Within a case, each peer's median time
divided by nncore's is the speed-up: above 1.0, nncore is faster. Peers are measured in
the same run, so the machine's noise affects both alike.
"""
import json
import os
import subprocess
import sys
import tempfile


def run(pytest_args):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        here = os.path.dirname(os.path.abspath(__file__))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={out}", "--benchmark-columns=median"]
        cmd += pytest_args or [here]
        proc = subprocess.run(cmd)
        if not os.path.exists(out):
            sys.exit(proc.returncode or 1)
        with open(out) as f:
            return json.load(f)


def table(data):
    cases = {}
    for bench in data["benchmarks"]:
        impl = bench.get("extra_info", {}).get("impl", bench["name"])
        cases.setdefault(bench.get("group") or bench["name"], {})[impl] = bench["stats"]["median"]
    rows = []
    for case, impls in sorted(cases.items()):
        ours = {k: v for k, v in impls.items() if k.startswith("nncore")} or {"nncore": None}
        peers = {k: v for k, v in impls.items() if not k.startswith("nncore")}
        for name, base in sorted(ours.items()):
            for impl, median in sorted(peers.items()):
                ratio = f"{median / base:6.2f}x" if base else "   n/a"
                rows.append((case, name, impl, base, median, ratio))
    width = max([len(r[0]) for r in rows] + [4])
    w_ours = max([len(r[1]) for r in rows] + [6])
    w_peer = max([len(r[2]) for r in rows] + [4])
    print(f"\n{'case':<{width}}  {'nncore':<{w_ours}} {'peer':<{w_peer}} "
          f"{'nncore':>11} {'peer':>11}  peer/nncore")
    for case, name, impl, base, median, ratio in rows:
        nn = f"{base * 1e6:9.1f}us" if base else "        n/a"
        print(f"{case:<{width}}  {name:<{w_ours}} {impl:<{w_peer}} {nn} "
              f"{median * 1e6:9.1f}us  {ratio}")


if __name__ == "__main__":
    table(run(sys.argv[1:]))
