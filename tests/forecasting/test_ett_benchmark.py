"""manage.py ett_benchmark on a small synthetic file in the ETT format (its own --split). No database."""
import re
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

SPLIT = (600, 900, 1200)
HORIZONS = (24, 48)


@pytest.fixture(scope="module")
def ett_csv(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ett")
    rng = np.random.default_rng(5)
    n = 1300  # rows past the test end must be ignored
    t = np.arange(n)
    ar = np.zeros(n)
    for i in range(1, n):
        ar[i] = 0.9 * ar[i - 1] + rng.normal(0, 0.4)
    ot = 15 + 4 * np.sin(2 * np.pi * t / 24) + 0.004 * t + ar
    dates = pd.date_range("2016-07-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "ETTsynthetic.csv"
    pd.DataFrame({"date": dates, "HUFL": rng.normal(size=n), "OT": ot}).to_csv(path, index=False)
    return path, ot


@pytest.fixture(scope="module")
def benchmark(ett_csv, tmp_path_factory):
    """One run shared by the tests that read its output (Prophet and the selection take a few seconds)."""
    out_dir = tmp_path_factory.mktemp("predictions")
    return run(ett_csv[0], "--predictions-out", str(out_dir)), out_dir


def run(path, *extra):
    out = StringIO()
    call_command("ett_benchmark", "--data", str(path), "--horizon", *map(str, HORIZONS), "--split", *map(str, SPLIT),
                 "--refit-every", "300", *extra, stdout=out, stderr=StringIO())
    return out.getvalue()


def printed(output, label):
    line = next(line for line in output.splitlines() if line.startswith(label))
    return [(float(mse), float(mae)) for mse, mae in re.findall(r"([\d.]+) / ([\d.]+)", line)]


def standardised(ot):
    train = ot[: SPLIT[0]]
    return (ot - train.mean()) / train.std()


def origin_rows(horizon):
    """0-based rows of the last observed reading: every origin whose horizon fits inside the test rows."""
    return np.arange(SPLIT[1] - 1, SPLIT[2] - horizon)


def naive_errors(z, horizon, seasonal):
    rows = origin_rows(horizon)
    steps = np.arange(1, horizon + 1)
    targets = rows[:, None] + steps
    if seasonal:  # the same hour on the last observed day
        sources = targets - 24 * np.ceil(steps / 24).astype(int)
    else:
        sources = np.repeat(rows[:, None], horizon, axis=1)
    return z[sources] - z[targets]


def test_it_prints_the_naive_baselines_of_the_protocol(ett_csv, benchmark):
    z = standardised(ett_csv[1])
    output, _ = benchmark

    for label, seasonal in (("naive (last value)", False), ("seasonal naive", True)):
        expected = [naive_errors(z, h, seasonal) for h in HORIZONS]
        assert len(printed(output, label)) == len(HORIZONS), label
        for (mse, mae), errors in zip(printed(output, label), expected):
            assert mse == pytest.approx(np.mean(errors ** 2), abs=6e-5)
            assert mae == pytest.approx(np.mean(np.abs(errors)), abs=6e-5)
    assert len(printed(output, "production")) == len(HORIZONS)
    assert len(printed(output, "Prophet alone")) == len(HORIZONS)
    assert "Informer" not in output  # the published table is for ETTh1 with its own split only


def test_it_writes_every_origin_and_step_of_the_production_forecast(ett_csv, benchmark):
    z = standardised(ett_csv[1])
    output, out_dir = benchmark

    for horizon, (mse, mae) in zip(HORIZONS, printed(output, "production")):
        frame = pd.read_csv(out_dir / f"h{horizon}.csv")
        rows = origin_rows(horizon)
        assert list(frame.columns) == ["origin_index", "step", "yhat"]
        assert len(frame) == len(rows) * horizon
        assert (frame["origin_index"].to_numpy() == np.repeat(rows, horizon)).all()
        assert (frame["step"].to_numpy() == np.tile(np.arange(1, horizon + 1), len(rows))).all()
        errors = frame["yhat"].to_numpy() - z[frame["origin_index"].to_numpy() + frame["step"].to_numpy()]
        assert mse == pytest.approx(np.mean(errors ** 2), abs=6e-5)
        assert mae == pytest.approx(np.mean(np.abs(errors)), abs=6e-5)


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "absent.csv")


def test_a_file_without_the_target_column_is_a_command_error(tmp_path):
    path = tmp_path / "no_ot.csv"
    pd.DataFrame({"date": pd.date_range("2016-07-01", periods=10, freq="h"), "HUFL": range(10)}).to_csv(path)
    with pytest.raises(CommandError, match="no 'OT' column"):
        run(path)


def test_a_file_shorter_than_the_split_is_a_command_error(ett_csv):
    path, _ = ett_csv
    with pytest.raises(CommandError, match="has 1300 rows; the split needs 14400.*--split"):
        call_command("ett_benchmark", "--data", str(path), stdout=StringIO(), stderr=StringIO())
