#!/usr/bin/env python3
"""mspinn against JAX on the same Darcy PINN, in one run, alternating size by size.

    bench/peers/install.sh                      # once
    cargo build --release                       # the binary under test
    bench/peers/.venv/bin/python bench/peers/compare.py [--threads 1|2] [--quick] [--out DIR]

Steps:
 1. Same computation: `mspinn train` writes f64 weights (safetensors) and its loss at them; the JAX
    code loads the weights and must reproduce the loss to 1e-12 relative (all three u'' variants),
    and to 1e-5 in f32. A failure stops the run.
 2. Peak: `mspinn bench --only gemm` per dtype (candle and faer n x n matmul; the larger counts).
 3. For each dtype and N_c: `mspinn bench --only adam` then `jax_bench.py --measure adam` (the three
    u'' variants; the fastest is "JAX"), then the same for dense K_uu at the K_uu sizes.
 4. A table: N_c, dtype, mspinn ms, JAX ms (best variant), ratio mspinn/JAX, GFLOP/s of each and
    % of the measured peak (FLOPs from mspinn's model of the jet computation, the same count for
    both: JAX's nested-gradient u'' does more arithmetic than that), written as compare.md and
    compare.json.

Threads: --threads 1 pins both processes to CPU 0 (taskset) and sets RAYON_NUM_THREADS=1 and
XLA_FLAGS=--xla_cpu_multi_thread_eigen=false; --threads 2 leaves both on every core
(RAYON_NUM_THREADS=2, XLA's default thread pools).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def env_for(threads):
    e = dict(os.environ)
    e["RAYON_NUM_THREADS"] = str(threads)
    e["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if threads == 1:
        e["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    else:
        e.pop("XLA_FLAGS", None)
    return e


def prefix(threads):
    return ["taskset", "-c", "0"] if threads == 1 and shutil.which("taskset") else []


def run_json(cmd, threads):
    p = subprocess.run(prefix(threads) + cmd, env=env_for(threads), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"compare: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    # mspinn prints one (pretty) document; JAX may print notices before its one-line document.
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        pass
    for line in reversed(p.stdout.strip().splitlines()):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            return doc
    sys.exit(f"compare: no JSON from {' '.join(cmd)}:\n{p.stdout[-2000:]}")


def mspinn_bench(bin_, threads, tmp, *args):
    out = os.path.join(tmp, "mspinn-bench")
    doc = run_json([bin_, "bench", "--json", "--quiet", "--threads", str(threads), "--out", out,
                    *args], threads)
    return doc


def jax_bench(threads, *args):
    return run_json([sys.executable, os.path.join(HERE, "jax_bench.py"), *args], threads)


def loss_check(bin_, threads, tmp, nc):
    """mspinn's loss at its own saved weights against JAX's at the same weights."""
    results = []
    for dtype, tol in (("f64", 1e-12), ("f32", 1e-5)):
        run = os.path.join(tmp, f"train-{dtype}")
        p = subprocess.run(prefix(threads) + [bin_, "train", "--preset", "fig4-darcy", "--trials", "1",
                            "--schedule", "5@1e-3", "--nc", str(nc), "--dtype", dtype, "--quiet",
                            "--out", run], env=env_for(threads), capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"compare: mspinn train failed:\n{p.stderr[-3000:]}")
        with open(os.path.join(run, "result.json")) as fh:
            ours = json.load(fh)["final_loss"][0]
        w = os.path.join(run, "trial-000", "weights.safetensors")
        doc = jax_bench(threads, "--measure", "loss", "--nc", str(nc), "--dtype", dtype, "--weights", w)
        for r in doc["records"]:
            rel = abs(r["value"] - ours) / abs(ours)
            results.append({"dtype": dtype, "impl": r["impl"], "mspinn": ours, "jax": r["value"],
                            "rel_diff": rel, "tol": tol, "ok": rel <= tol})
    return results


def main():
    ap = argparse.ArgumentParser(description="mspinn vs JAX, side by side")
    ap.add_argument("--threads", type=int, default=1, choices=[1, 2])
    ap.add_argument("--dtypes", default="f32,f64")
    ap.add_argument("--sizes", default="256,1024,4096,16384,65536", help="Adam-step N_c")
    ap.add_argument("--kuu-sizes", default="256,1024,4096", help="dense K_uu N_c")
    ap.add_argument("--mspinn", default=os.path.join(ROOT, "target", "release", "mspinn"))
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, 3 reps")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "compare"))
    args = ap.parse_args()
    bin_ = os.environ.get("MSPINN", args.mspinn)
    if not os.path.exists(bin_):
        sys.exit(f"compare: no mspinn binary at {bin_} (cargo build --release, or set MSPINN)")
    if args.quick:
        args.sizes, args.kuu_sizes = "64,256", "64"
    sizes = [int(s) for s in args.sizes.split(",")]
    kuu_sizes = [int(s) for s in args.kuu_sizes.split(",")]
    dtypes = args.dtypes.split(",")
    q = ["--quick"] if args.quick else []
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="mspinn-compare-")
    t = args.threads

    check = loss_check(bin_, t, tmp, 1024)
    for c in check:
        print(f"loss check {c['dtype']} {c['impl']}: mspinn {c['mspinn']:.17g} jax {c['jax']:.17g} "
              f"rel {c['rel_diff']:.2e} (tol {c['tol']:.0e}) {'ok' if c['ok'] else 'FAIL'}", flush=True)
    if not all(c["ok"] for c in check):
        sys.exit("compare: JAX and mspinn disagree on the loss: not the same computation")

    # The peak is the best gemm rate seen: measured before and again after the comparison
    # (one short gemm run on a shared machine can land in a slow patch and make every
    # "% of peak" above 100), from each run's fastest repetition.
    peaks = {}
    versions = {}

    def measure_peaks(when):
        for dt in dtypes:
            doc = mspinn_bench(bin_, t, tmp, "--only", "gemm", "--dtype", dt, *q)
            best = max(r["flops"] / r["min_ms"] / 1e6 for r in doc["records"])
            peaks[dt] = max(peaks.get(dt, 0.0), best)
            versions["cpu_model"] = doc["cpu_model"]
            print(f"peak {dt} ({when}): {best:.1f} GFLOP/s", flush=True)

    measure_peaks("before")

    rows = []
    for measure, ms_measure, jax_measure, ns in (("adam", "adam", "adam", sizes),
                                                 ("kuu", "dense", "kuu", kuu_sizes)):
        for dt in dtypes:
            for n in ns:
                ours = mspinn_bench(bin_, t, tmp, "--only", ms_measure, "--dtype", dt,
                                    "--sizes" if ms_measure == "adam" else "--dense-sizes", str(n), *q)
                r = ours["records"][0]
                theirs = jax_bench(t, "--measure", jax_measure, "--nc", str(n), "--dtype", dt, *q)
                versions["jax"], versions["jaxlib"] = theirs["jax"], theirs["jaxlib"]
                best = min(theirs["records"], key=lambda x: x["median_ms"])
                row = {"measure": measure, "nc": n, "dtype": dt, "mspinn_ms": r["median_ms"],
                       "mspinn_min_ms": r["min_ms"], "jax_ms": best["median_ms"],
                       "jax_min_ms": best["min_ms"], "jax_impl": best["impl"],
                       "jax_all": {x["impl"]: x["median_ms"] for x in theirs["records"]},
                       "ratio": r["median_ms"] / best["median_ms"], "flops": r["flops"],
                       "mspinn_gflops": r["flops"] / r["median_ms"] / 1e6,
                       "jax_gflops": r["flops"] / best["median_ms"] / 1e6, "peak_gflops": peaks.get(dt)}
                pk = peaks.get(dt)
                row["mspinn_pct_peak"] = 100 * row["mspinn_gflops"] / pk if pk else None
                row["jax_pct_peak"] = 100 * row["jax_gflops"] / pk if pk else None
                rows.append(row)
                print(f"{measure:5} {dt} N_c={n:>6}: mspinn {row['mspinn_ms']:10.3f} ms  "
                      f"JAX {row['jax_ms']:10.3f} ms ({best['impl']})  ratio {row['ratio']:.2f}", flush=True)

    measure_peaks("after")
    for row in rows:
        pk = peaks.get(row["dtype"])
        row["peak_gflops"] = pk
        row["mspinn_pct_peak"] = 100 * row["mspinn_gflops"] / pk if pk else None
        row["jax_pct_peak"] = 100 * row["jax_gflops"] / pk if pk else None

    threads_note = ("1 thread: both pinned to CPU 0 (taskset -c 0), RAYON_NUM_THREADS=1, "
                    "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false" if t == 1 else
                    "2 threads: both on every core, RAYON_NUM_THREADS=2, XLA default pools")
    md = [f"Command: `bench/peers/.venv/bin/python bench/peers/compare.py --threads {t}"
          f"{' --quick' if args.quick else ''}`  ",
          f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}  ",
          f"Machine: {versions.get('cpu_model')}, {os.cpu_count()} CPUs, {platform.platform()}  ",
          f"Versions: jax {versions.get('jax')}, jaxlib {versions.get('jaxlib')}, Python "
          f"{platform.python_version()}  ",
          f"Threads: {threads_note}  ",
          "Peak (n x n gemm, best of candle and faer, best repetition before and after): "
          + ", ".join(f"{d} {p:.1f} GFLOP/s" for d, p in peaks.items()) + "  ",
          "",
          "Loss check (mspinn weights, N_c = 1024): "
          + "; ".join(f"{c['dtype']} {c['impl']} rel {c['rel_diff']:.1e}" for c in check),
          "",
          "| measure | N_c | dtype | mspinn ms | JAX ms | JAX way | mspinn/JAX | mspinn GFLOP/s | "
          "JAX GFLOP/s | mspinn % peak | JAX % peak | JAX others (ms) |",
          "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        others = ", ".join(f"{k.removeprefix('jax-')} {v:.2f}" for k, v in r["jax_all"].items())
        md.append(f"| {r['measure']} | {r['nc']} | {r['dtype']} | {r['mspinn_ms']:.3f} | "
                  f"{r['jax_ms']:.3f} | {r['jax_impl'].removeprefix('jax-')} | {r['ratio']:.2f} | "
                  f"{r['mspinn_gflops']:.2f} | {r['jax_gflops']:.2f} | {r['mspinn_pct_peak']:.1f} | "
                  f"{r['jax_pct_peak']:.1f} | {others} |")
    text = "\n".join(md) + "\n"
    print()
    print(text)
    with open(os.path.join(args.out, "compare.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(args.out, "compare.json"), "w") as fh:
        json.dump({"threads": t, "peaks": peaks, "versions": versions, "loss_check": check,
                   "rows": rows}, fh, indent=1)
    print(f"wrote {args.out}/compare.md and compare.json")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
