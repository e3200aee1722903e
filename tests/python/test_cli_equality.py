"""The Python results equal the CLI's for the same seeds and options: K_uu bit for bit against
``mspinn ntk --save-matrix``, the NTK report against ``--json``, a network saved from Python
read by ``mspinn ntk --weights``, and a short training run against ``mspinn train``'s
metrics.csv, history.csv, result.json and weights file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import mspinn
from conftest import bits


def _cli_ntk(run, tmp_path, *flags):
    out = tmp_path / "cli"
    doc = json.loads(run("ntk", "--save-matrix", "--out", str(out), "--json", *flags))
    (rec,) = doc["records"]
    (npy,) = sorted(out.glob("k_uu_*.npy"))
    return rec, np.load(npy)


@pytest.mark.parametrize(
    "operator,points,dtype,widths,init",
    [
        ("darcy", "endpoints", "f64", [50], "normal"),  # Fig. 2a's setting
        ("poisson", "random", "f32", [12, 9], "glorot-uniform"),
        ("darcy", "midpoints", "f64", [7, 7, 7], "glorot-normal"),
    ],
)
def test_k_uu_equals_the_cli_save_matrix_to_the_last_bit(run, tmp_path, operator, points, dtype, widths, init):
    seed, nc, eps = 3, 48, "1/20"
    rec, cli_kuu = _cli_ntk(
        run, tmp_path,
        "--problem", operator, "--eps", eps, "--nc", str(nc), "--seed", str(seed), "--points", points,
        "--dtype", dtype, "--widths", ",".join(map(str, widths)), "--init", init, "--lambda", "3",
    )
    net = mspinn.Network(widths, init=init, seed=seed, dtype=dtype)
    k = mspinn.ntk(net, mspinn.Problem.for_ntk(eps, operator=operator), nc=nc, points=points, lam=3.0)
    assert k.k_uu.shape == cli_kuu.shape == (nc, nc)
    assert np.array_equal(bits(k.k_uu), bits(cli_kuu))
    # The leading block of the full K is K_uu, entry for entry.
    assert np.array_equal(bits(k.k[:nc, :nc]), bits(k.k_uu))
    # Every reported number as --json prints it (the timing aside).
    for key, value in rec.items():
        if key not in ("seed", "seconds"):
            assert k.report[key] == value, key


def test_a_network_saved_from_python_is_the_one_the_cli_measures(run, tmp_path):
    net = mspinn.Network([10, 10], activation="sin", init="glorot-normal", seed=11)
    path = tmp_path / "net.safetensors"
    net.save(path)
    rec, cli_kuu = _cli_ntk(run, tmp_path, "--weights", str(path), "--eps", "1/16", "--nc", "40")
    k = mspinn.ntk(net, mspinn.Problem.for_ntk(1 / 16), nc=40)
    assert np.array_equal(bits(k.k_uu), bits(cli_kuu))
    assert rec["np"] == net.num_params == 141


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_training_equals_the_cli_run_for_the_same_seed(run, tmp_path):
    # A problem file with fields (not a preset), as `--config` and Problem.from_toml read it.
    toml = tmp_path / "problem.toml"
    toml.write_text(
        '[problem]\nkind = "darcy"\neps = "1/8"\ncoefficient = "1/(2.1 + 2*sin(y))"\n'
        'period = "2*pi"\nforcing = "sin(x) + 0.5*cos(3*x)"\nboundary = [0, "1/2"]\n'
    )
    schedule, seed = "120@1e-3,30@1e-4,lbfgs:25", 5
    out = tmp_path / "run"
    run(
        "train", "--config", str(toml), "--trials", "1", "--seed", str(seed), "--nc", "64",
        "--widths", "8,8", "--schedule", schedule, "--log-every", "10", "--lambda", "2",
        "--out", str(out), "--quiet",
    )
    r = mspinn.train(
        mspinn.Problem.from_toml(toml), schedule, widths=[8, 8], seed=seed, nc=64, log_every=10,
        lam=2.0, progress=False,
    )
    metrics = _read_csv(out / "trial-000" / "metrics.csv")
    assert [int(m["iteration"]) for m in metrics] == r.history.iteration.tolist()
    assert [m["optimizer"] for m in metrics] == r.history.optimizer
    # metrics.csv writes shortest round-trip decimals: parsing them gives the same doubles.
    for col in ("loss", "loss_pde", "loss_bc", "lr"):
        assert np.array_equal(bits([float(m[col]) for m in metrics]), bits(getattr(r.history, col))), col
    hist = _read_csv(out / "trial-000" / "history.csv")
    assert [int(h["iteration"]) for h in hist] == r.errors.iteration.tolist()
    for col in ("rel_linf", "rel_l2"):
        assert np.array_equal(bits([float(h[col]) for h in hist]), bits(getattr(r.errors, col))), col
    res = json.loads((out / "result.json").read_text())
    for key in ("max_error_mean_network", "rel_l2_mean_network", "max_error_vs_homogenized", "rel_l2", "rel_linf"):
        assert res[key] == r.metrics[key], key
    assert res["final_loss"] == [r.final_loss[0]]
    assert res["iterations"] == [r.iterations]
    # The CLI's weights file holds the network Python trained, bit for bit.
    cli_net = mspinn.Network.load(out / "trial-000" / "weights.safetensors")
    assert np.array_equal(bits(cli_net.parameters()), bits(r.network.parameters()))
    assert (cli_net.widths, cli_net.seed, cli_net.activation) == ([8, 8], seed, "tanh")
