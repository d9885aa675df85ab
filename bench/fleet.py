#!/usr/bin/env python3
"""Fleet-scale token traffic, simulated with the real binaries: N nodes (each its own cache dir
and machine id) pull M images from R ACR registries with the node's managed identity, against
the fakes of IMDS and ACR's exchange (bench/fake_azure.py), with pullcred's clock and the
fake's moved together (PULLCRED_TEST_CLOCK_OFFSET and /_clock).

It reports
- token calls per node boot: every node pulls all M images at once; the goal is exactly one
  exchange per registry (R, the distinct (registry, identity) pairs), not M;
- the spread of refreshes: the clock steps minute by minute through the refresh window of the
  boot's tokens (ACR refresh tokens live 3 h; pullcred refreshes 25 % before expiry plus up to
  10 % of per-node, per-key jitter), every node pulling every registry each minute; the goal
  is that no minute holds more than 2x the average over the window, although every node
  booted in the same minute.
and plots both as PNGs under bench/out/ (matplotlib; not committed).

Moves pullcred's clock with PULLCRED_TEST_CLOCK_OFFSET (bench/fleet.sh builds first). Usage: bench/fleet.py [--nodes 200] [--images 12]
[--registries 4]
"""
import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target/x86_64-unknown-linux-gnu/debug/pullcred")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(port, method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    return json.load(urllib.request.urlopen(req))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--registries", type=int, default=4)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    port = free_port()
    fake = subprocess.Popen([sys.executable, os.path.join(root, "bench/fake_azure.py"), str(port)])
    work = tempfile.mkdtemp(prefix="pullcred-fleet-")
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        config = os.path.join(work, "config.toml")
        with open(config, "w") as f:
            f.write(
                f'[[registry]]\nmatch = ["*.azurecr.io"]\nsource = "acr"\n'
                f'imds_endpoint = "http://127.0.0.1:{port}"\nendpoint = "http://127.0.0.1:{port}"\n'
            )
        registries = [f"fleetregistry{r}.azurecr.io" for r in range(args.registries)]
        images = [f"{registries[i % len(registries)]}/team/app-{i}:1" for i in range(args.images)]

        def pull(node, image, offset):
            env = dict(os.environ, PULLCRED_CONFIG=config, PULLCRED_CACHE_DIR=os.path.join(work, f"node-{node}"),
                       PULLCRED_TEST_MACHINE_ID=f"machine-{node:04d}", PULLCRED_TEST_CLOCK_OFFSET=str(offset),
                       HOME=work)
            for k in [k for k in env if k.startswith("AZURE_") or k.endswith("_PROXY") or k == "PULLCRED_LOG"]:
                del env[k]
            req = json.dumps({"apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                              "kind": "CredentialProviderRequest", "image": image})
            out = subprocess.run([binary], input=req.encode(), capture_output=True, env=env)
            if out.returncode != 0:
                raise SystemExit(f"node {node} {image}: {out.stderr.decode()}")

        # Boot: each node pulls every image at t=0; its token calls are the fake's count
        # before and after (nodes one after another, their images all at once).
        per_boot = []
        call(port, "POST", "/_clock?offset=0")
        with concurrent.futures.ThreadPoolExecutor(args.images) as pool:
            for node in range(args.nodes):
                before = call(port, "GET", "/_stats")["exchange"]
                list(pool.map(lambda image: pull(node, image, 0), images))
                per_boot.append(call(port, "GET", "/_stats")["exchange"] - before)
        boot_counts = Counter(per_boot)

        # Refreshes: minute steps through the window, every node pulling every registry.
        first, last = 110, 140
        per_minute = {}
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            for minute in range(first, last + 1):
                offset = minute * 60
                call(port, "POST", f"/_clock?offset={offset}")
                before = call(port, "GET", "/_stats")["exchange"]
                jobs = [(n, f"{r}/team/app:1") for n in range(args.nodes) for r in registries]
                list(pool.map(lambda j: pull(j[0], j[1], offset), jobs))
                per_minute[minute] = call(port, "GET", "/_stats")["exchange"] - before
        refreshing = [m for m, c in per_minute.items() if c]
        window = (max(refreshing) - min(refreshing) + 1) if refreshing else 1
        total = sum(per_minute.values())
        average = total / window
        peak_minute, peak = max(per_minute.items(), key=lambda kv: kv[1])

        pairs = args.registries
        print(f"nodes {args.nodes}, images {args.images} from {args.registries} registries, one identity")
        print(f"token calls per node boot: {dict(sorted(boot_counts.items()))} (goal: {pairs} for every node)")
        print(f"refreshes: {total} (goal: {args.nodes * pairs}), over {window} minutes "
              f"({min(refreshing)}..{max(refreshing)} min after boot), average {average:.1f}/min, "
              f"peak {peak} at minute {peak_minute} ({peak / average:.2f}x the average; limit 2x)")
        out = os.path.join(root, "bench/out")
        os.makedirs(out, exist_ok=True)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.bar(list(per_minute), list(per_minute.values()))
            ax.axhline(average, color="gray", linestyle="--", label="average over the window")
            ax.axhline(2 * average, color="red", linestyle=":", label="limit: 2x the average")
            ax.set_xlabel("minutes after a simultaneous boot")
            ax.set_ylabel("token exchanges")
            ax.set_title(f"Refreshes of {args.nodes} nodes x {pairs} registries")
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(out, "fleet-refreshes.png"))
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.bar([str(k) for k in sorted(boot_counts)], [boot_counts[k] for k in sorted(boot_counts)])
            ax.set_xlabel(f"token calls at boot ({args.images} images)")
            ax.set_ylabel("nodes")
            ax.set_title("Token calls per node boot")
            fig.tight_layout()
            fig.savefig(os.path.join(out, "fleet-boot.png"))
            print(f"plots: {out}/fleet-refreshes.png, {out}/fleet-boot.png")
        except ImportError:
            print("plots: matplotlib is not installed (pip install matplotlib)")
        ok = set(per_boot) == {pairs} and total == args.nodes * pairs and peak <= 2 * average
        if not ok:
            raise SystemExit("bench/fleet.py: a goal is missed")
    finally:
        fake.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
