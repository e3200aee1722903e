#!/usr/bin/env python3
"""The JAX peer of `mspinn bench`: the same Fig. 4 Darcy PINN, timed the same way.

Network: 4x40 tanh, scalar in and out, weights W (out x in) and b (out) per layer, Glorot normal
(truncated, as Keras/DeepXDE) with zero biases, or mspinn's own weights from a safetensors file
(`layers.{k}.weight`, `layers.{k}.bias`, what `mspinn train` saves). Problem: eq. (27) of the
paper, -(a(x/eps) u')' = f on (-pi, pi), a(y) = 1/(2.1 + 2 sin y), eps = 1/32, f from appendix C,
u(+-pi) = 0; N_c equispaced points including both ends, boundary weight lambda = 2 over N_b = 2
rows. Loss (eq. 7): (1/N_c) sum 1/2 r_i^2 + (lambda/N_b) sum 1/2 u(x_b)^2 with
r = -(a u'' + (a'(x/eps)/eps) u') - f.

u'' three ways (every one jitted; the fastest is "JAX" in the comparison):
  grad  nested jax.grad of the scalar network, vmapped over points: what most PINN code does;
  jvp   forward-over-forward: jvp of jvp of the batched network with an all-ones tangent;
  jet   jax.experimental.jet, second-order Taylor mode (the same algorithm as mspinn's jets).
Adam: beta = (0.9, 0.999), eps_hat = 1e-8, lr 1e-3: the arithmetic of mspinn's Adam, jitted as one
function of (params, m, v, t) with the loss and gradient.

K_uu = J_u J_u^T (J_u = dr/dtheta over the PDE rows; mspinn's dense measurement, without the
1/N_c weight, which is a scalar) three ways:
  vmap-grad   vmap over points of jax.grad of the per-point residual (nested-grad u''), then J J^T;
  vmap-jvp    the same with the per-point residual from jvp-of-jvp;
  jacrev      jax.jacrev of the batched residual vector (jvp-of-jvp inside), then J J^T.
neural-tangents' empirical NTK is tried when the package imports (see install.sh).

Timing: warm-up (compile and >= 0.2 s), then `reps` repetitions of `inner` calls each (a
repetition >= 20 ms), block_until_ready after each repetition; per-call median and min. Output:
one JSON document on stdout.

Threads are set by the caller before this process starts (XLA_FLAGS, taskset): see compare.py.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

EPS = 1.0 / 32.0
LAMBDA = 2.0
WIDTHS = [40, 40, 40, 40]


def problem_rows(nc):
    """Points and coefficients of eq. (27), in f64 on the host."""
    x = np.linspace(-np.pi, np.pi, nc)
    # linspace computes a + i*(b-a)/(n-1); mspinn lerps a(1-t) + b t. Same points to an ulp or two;
    # use mspinn's formula so the loss check compares the same inputs.
    t = np.arange(nc, dtype=np.float64) / (nc - 1)
    x = -np.pi * (1.0 - t) + np.pi * t
    y = x / EPS
    den = 2.1 + 2.0 * np.sin(y)
    a = 1.0 / den
    da = -2.0 * np.cos(y) / den**2  # a'(y)
    pi, eps = np.pi, EPS
    s, c = np.sin(x), np.cos(x)
    g = 10 * (20 * pi + 168 * pi * eps * c * s
              - 20 * (2 * pi - 4 * pi * c**2 + eps * np.sin(pi / eps)) * np.cos(y)
              + (21 * pi + 160 * pi * eps * c * s) * np.sin(y))
    h = 100 * pi * eps * den**2  # appendix C's h, factored as mspinn does
    f = g / h
    return x, a, da / EPS, f


def glorot_params(dims, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for fi, fo in zip(dims[:-1], dims[1:]):
        std = math.sqrt(2.0 / (fi + fo)) / 0.8796256610342398
        w = rng.standard_normal((fo, fi))
        while np.any(np.abs(w) > 2):
            bad = np.abs(w) > 2
            w[bad] = rng.standard_normal(bad.sum())
        params.append((std * w, np.zeros(fo)))
    return params


def load_params(path):
    from safetensors.numpy import load_file

    tensors = load_file(path)
    params = []
    k = 0
    while f"layers.{k}.weight" in tensors:
        params.append((tensors[f"layers.{k}.weight"].astype(np.float64),
                       tensors[f"layers.{k}.bias"].astype(np.float64)))
        k += 1
    return params


def build(jax, jnp, dtype):
    """Every jitted function of the bench, closed over nothing but jax."""
    from jax.experimental import jet as jetmod

    def net_scalar(params, x):
        h = jnp.reshape(x, (1,))
        for w, b in params[:-1]:
            h = jnp.tanh(w @ h + b)
        w, b = params[-1]
        return (w @ h + b)[0]

    def net_batch(params, xs):  # (N,) -> (N,)
        h = xs[:, None]
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w.T + b)
        w, b = params[-1]
        return (h @ w.T + b)[:, 0]

    def jets_grad(params, xs):
        u1 = jax.grad(net_scalar, argnums=1)
        u2 = jax.grad(u1, argnums=1)
        return (jax.vmap(u1, (None, 0))(params, xs), jax.vmap(u2, (None, 0))(params, xs))

    def jets_jvp(params, xs):
        f = lambda z: net_batch(params, z)  # noqa: E731
        ones = jnp.ones_like(xs)
        d1 = lambda z: jax.jvp(f, (z,), (ones,))[1]  # noqa: E731
        du, d2u = jax.jvp(d1, (xs,), (ones,))
        return du, d2u

    def jets_jet(params, xs):
        f = lambda z: net_batch(params, z)  # noqa: E731
        _, (du, d2u) = jetmod.jet(f, (xs,), ((jnp.ones_like(xs), jnp.zeros_like(xs)),))
        return du, d2u

    jets = {"grad": jets_grad, "jvp": jets_jvp, "jet": jets_jet}

    def make_loss(jf):
        def loss(params, data):
            xs, a, b, f, xb = data
            du, d2u = jf(params, xs)
            r = -(a * d2u + b * du) - f
            ub = net_batch(params, xb)
            return jnp.mean(0.5 * r * r) + (LAMBDA / xb.shape[0]) * jnp.sum(0.5 * ub * ub)
        return loss

    losses = {k: make_loss(v) for k, v in jets.items()}

    def make_adam(loss):
        vg = jax.value_and_grad(loss)

        def step(params, m, v, t, data):
            lr, b1, b2, eh = 1e-3, 0.9, 0.999, 1e-8
            val, g = vg(params, data)
            t = t + 1
            sm = 1.0 / (1.0 - b1 ** t)
            sv = 1.0 / (1.0 - b2 ** t)
            m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
            v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
            params = jax.tree_util.tree_map(
                lambda p, m_, v_: p - lr * (m_ * sm) / (jnp.sqrt(v_ * sv) + eh), params, m, v)
            return params, m, v, t, val
        return jax.jit(step, donate_argnums=(0, 1, 2))

    adams = {k: make_adam(v) for k, v in losses.items()}

    # Per-point residuals for the Jacobian.
    def res_point_grad(params, x, a, b, f):
        u1 = jax.grad(net_scalar, argnums=1)
        u2 = jax.grad(u1, argnums=1)
        return -(a * u2(params, x) + b * u1(params, x)) - f

    def res_point_jvp(params, x, a, b, f):
        g = lambda z: net_scalar(params, z)  # noqa: E731
        d1 = lambda z: jax.jvp(g, (z,), (jnp.ones_like(z),))[1]  # noqa: E731
        du, d2u = jax.jvp(d1, (x,), (jnp.ones_like(x),))
        return -(a * d2u + b * du) - f

    def flat_rows(tree, n):
        return jnp.concatenate([jnp.reshape(l, (n, -1)) for l in jax.tree_util.tree_leaves(tree)],
                               axis=1)

    def make_kuu_vmap(res):
        def kuu(params, data):
            xs, a, b, f, _ = data
            g = jax.vmap(jax.grad(res), (None, 0, 0, 0, 0))(params, xs, a, b, f)
            j = flat_rows(g, xs.shape[0])
            return j @ j.T
        return jax.jit(kuu)

    def kuu_jacrev(params, data):
        xs, a, b, f, _ = data

        def res_vec(p):
            du, d2u = jets_jvp(p, xs)
            return -(a * d2u + b * du) - f
        j = flat_rows(jax.jacrev(res_vec)(params), xs.shape[0])
        return j @ j.T

    kuus = {"vmap-grad": make_kuu_vmap(res_point_grad), "vmap-jvp": make_kuu_vmap(res_point_jvp),
            "jacrev": jax.jit(kuu_jacrev)}
    try:
        import neural_tangents as nt

        def kuu_nt_fn():
            def f(params, xs_aux):
                xs, a, b, f_ = xs_aux
                return res_point_jvp(params, xs, a, b, f_)
            return nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0)
        kuus["neural-tangents"] = kuu_nt_fn()
    except Exception as e:  # noqa: BLE001 - optional peer
        print(f"jax_bench: neural-tangents skipped ({type(e).__name__}: {e})", file=sys.stderr)
    return {"jets": jets, "losses": {k: jax.jit(v) for k, v in losses.items()}, "adams": adams,
            "kuus": kuus, "net_batch": jax.jit(net_batch)}


def timed(fn, warmup_s=0.2, min_rep_s=0.02, reps=7, budget_s=30.0):
    """fn() runs one call and blocks; returns (median s, min s, reps, inner)."""
    t0 = time.perf_counter()
    fn()  # compile
    last = time.perf_counter() - t0
    w0 = time.perf_counter()
    warm = 0
    while time.perf_counter() - w0 < warmup_s and warm < 50:
        t = time.perf_counter()
        fn()
        last = time.perf_counter() - t
        warm += 1
    per = max(last, 1e-7)
    inner = max(1, math.ceil(min_rep_s / per))
    reps = max(1, min(reps, max(3, int(budget_s // (per * inner)))))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner)
    times.sort()
    return times[len(times) // 2], times[0], reps, inner


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="f64", choices=["f32", "f64"])
    ap.add_argument("--nc", type=int, default=1024)
    ap.add_argument("--measure", default="adam", help="adam, kuu or loss (comma separated)")
    ap.add_argument("--variants", default="all", help="u'' variants / K_uu ways (comma separated)")
    ap.add_argument("--weights", help="mspinn safetensors weights (default: Glorot, seed 0)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    import jax
    if args.dtype == "f64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jaxlib

    dt = jnp.float64 if args.dtype == "f64" else jnp.float32
    params = load_params(args.weights) if args.weights else glorot_params([1, *WIDTHS, 1])
    params = [(jnp.asarray(w, dt), jnp.asarray(b, dt)) for w, b in params]
    x, a, b, f = problem_rows(args.nc)
    data = tuple(jnp.asarray(v, dt) for v in (x, a, b, f, np.array([-np.pi, np.pi])))
    fns = build(jax, jnp, dt)
    out = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "dtype": args.dtype,
           "nc": args.nc, "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "affinity": sorted(os.sched_getaffinity(0)), "records": []}
    kw = dict(reps=args.reps) if not args.quick else dict(reps=3, warmup_s=0.01, min_rep_s=0.002)
    measures = [m.strip() for m in args.measure.split(",") if m.strip()]
    pick = (lambda d: d) if args.variants == "all" else (
        lambda d: {k: v for k, v in d.items() if k in args.variants.split(",")})
    for m in measures:
        if m == "loss":
            for name, lf in pick(fns["losses"]).items():
                out["records"].append({"measure": "loss", "impl": f"jax-{name}",
                                       "value": float(lf(params, data))})
        elif m == "adam":
            for name, step in pick(fns["adams"]).items():
                state = {"p": jax.tree_util.tree_map(jnp.array, params)}
                state["m"] = jax.tree_util.tree_map(jnp.zeros_like, state["p"])
                state["v"] = jax.tree_util.tree_map(jnp.zeros_like, state["p"])
                state["t"] = jnp.asarray(0, dt)

                def call():
                    p, m_, v_, t_, val = step(state["p"], state["m"], state["v"], state["t"], data)
                    state.update(p=p, m=m_, v=v_, t=t_)
                    val.block_until_ready()
                med, mn, reps, inner = timed(call, **kw)
                out["records"].append({"measure": "adam", "impl": f"jax-{name}", "median_ms": med * 1e3,
                                       "min_ms": mn * 1e3, "reps": reps, "inner": inner})
        elif m == "kuu":
            for name, kf in pick(fns["kuus"]).items():
                if name == "jacrev" and args.nc > 2048:
                    # jacrev carries N_c cotangents through N_c-row activations: (N_c² · 40) per
                    # layer, 5 GB in f64 at 4096. Skipped rather than swapping the machine.
                    print(f"jax_bench: K_uu jacrev skipped at N_c = {args.nc} (memory)", file=sys.stderr)
                    continue
                if name == "neural-tangents":
                    call = lambda: kf(data[0:4], None, params).block_until_ready()  # noqa: E731
                else:
                    call = lambda: kf(params, data).block_until_ready()  # noqa: E731
                try:
                    med, mn, reps, inner = timed(call, **kw)
                except Exception as e:  # noqa: BLE001 - report, keep going
                    print(f"jax_bench: K_uu {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
                    continue
                out["records"].append({"measure": "kuu", "impl": f"jax-{name}", "median_ms": med * 1e3,
                                       "min_ms": mn * 1e3, "reps": reps, "inner": inner})
        else:
            ap.error(f"--measure {m!r}: expected adam, kuu or loss")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
