"""Bad input raises ValueError (or FileNotFoundError / OSError for files) naming the argument or
field, and never crashes the interpreter."""

from __future__ import annotations

import numpy as np
import pytest

import mspinn


@pytest.fixture(scope="module")
def darcy():
    return mspinn.Problem.for_ntk(1 / 8)


@pytest.fixture(scope="module")
def net():
    return mspinn.Network([6], seed=1)


GOOD = dict(kind="darcy", forcing="sin(x)", eps="1/8", coefficient="2 + sin(y)")


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(eps="1/0"), "problem.eps"),
        (dict(eps=-0.5), "eps"),
        (dict(coefficient=None), "problem.coefficient"),
        (dict(coefficient="sin(y)"), "coefficient"),  # a ≤ 0: not elliptic
        (dict(coefficient="2 + sin(q)"), "problem.coefficient"),
        (dict(forcing="sin(x"), "problem.forcing"),
        (dict(forcing="1/(x-x)"), "forcing"),
        (dict(kind="heat"), "kind"),
        (dict(domain=(1, "pie")), "domain"),
        (dict(domain=(1, 0)), "domain"),
        (dict(boundary=(0, "1/0")), "problem.boundary"),
        (dict(period=0), "period"),
    ],
)
def test_bad_problem_fields_name_the_field(change, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.").replace("[", r"\[")):
        mspinn.Problem(**{**GOOD, **change})


def test_bad_presets_and_files(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        mspinn.Problem.preset("twoscale-heat")
    with pytest.raises(ValueError, match="eps"):
        mspinn.Problem.preset("fp-poisson", eps=0.1)  # a preset without ε
    with pytest.raises(ValueError, match="operator"):
        mspinn.Problem.for_ntk(0.1, operator="regression")
    with pytest.raises(ValueError, match="coef"):
        mspinn.Problem.for_ntk(0.1, coef="-1 + 0*y")
    bad = tmp_path / "bad.toml"
    bad.write_text('[problem]\npreset = "twoscale-darcy"\nepsilon = 0.1\n')
    with pytest.raises(ValueError, match="epsilon"):
        mspinn.Problem.from_toml(bad)
    with pytest.raises(OSError):
        mspinn.Problem.from_toml(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(widths=[0]), "widths"),
        (dict(widths=[]), "widths"),
        (dict(widths=[4], activation="relu"), "activation"),
        (dict(widths=[4], init="he"), "init"),
        (dict(widths=[4], dtype="f16"), "dtype"),
        (dict(widths=[4], device="tpu"), "device"),
    ],
)
def test_bad_network_options_name_the_option(kwargs, field):
    with pytest.raises(ValueError, match=field):
        mspinn.Network(**kwargs)


@pytest.mark.skipif(mspinn.cuda_built, reason="this build has CUDA")
def test_cuda_without_the_cuda_feature_is_a_clear_error():
    with pytest.raises(ValueError, match="device.*cuda.*feature"):
        mspinn.Network([4], device="cuda")


def test_bad_points_and_weights_files(net, tmp_path):
    with pytest.raises(ValueError, match="x"):
        net.predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="x"):
        net.predict(["a", "b"])
    with pytest.raises(ValueError, match="parameter"):
        net.set_parameters(np.zeros(net.num_params + 1))
    with pytest.raises(FileNotFoundError):
        mspinn.Network.load(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        mspinn.Network.load(junk)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(nc=0), "nc"),
        (dict(nc=10**12), "nc"),  # refused before anything is allocated
        (dict(points="grid"), "points"),
        (dict(scaling="lemma"), "scaling"),
        (dict(method="svd"), "method"),
        (dict(lam=float("nan")), "lam"),
        (dict(engine="gpu"), "engine"),
        (dict(engine_threads=0), "engine_threads"),
        (dict(chunk_mb=0), "chunk_mb"),
        (dict(dtype="f8"), "dtype"),
    ],
)
def test_bad_ntk_arguments_name_the_argument(darcy, net, kwargs, field):
    with pytest.raises(ValueError, match=field):
        mspinn.ntk(net, darcy, **kwargs)


@pytest.mark.parametrize(
    "schedule,kwargs,field",
    [
        ("100@", {}, "schedule"),
        ("lbfgs:x", {}, "schedule"),
        ("10@1e-3", dict(lbfgs_memory=0), "lbfgs_memory"),
        ("10@1e-3", dict(lm_tau=-1.0), "lm_tau"),
        ("10@1e-3", dict(lm_space="both"), "lm_space"),
        ("10@1e-3", dict(widths=[3], network=mspinn.Network([3])), "widths"),
        ("10@1e-3", dict(nc=0), "nc"),
        ("10@1e-3", dict(progress="yes"), "progress"),
    ],
)
def test_bad_training_arguments_name_the_argument(darcy, schedule, kwargs, field):
    kwargs = dict(kwargs)
    if "network" not in kwargs:
        kwargs.setdefault("widths", [4])
    kwargs.setdefault("progress", False)
    with pytest.raises(ValueError, match=field):
        mspinn.train(darcy, schedule, nc=kwargs.pop("nc", 16), **kwargs)


def test_solve_needs_two_points_and_a_reference():
    with pytest.raises(ValueError, match="points"):
        mspinn.solve(mspinn.Problem.preset("twoscale-darcy"), points=1)
    regression = mspinn.Problem("regression", "sin(3*x)")
    with pytest.raises(ValueError, match="no exact solution"):
        mspinn.solve(regression)
