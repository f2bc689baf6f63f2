"""Forecasting with covariates, calendar features and quantiles: built-in S&P 500 and Seattle weather, inputs that
never leak the future, exact levels from cumulative quantiles, interval coverage, bad covariates."""

import numpy as np
import pytest
import torch

from rnnlab.data.series import calendar_features
from rnnlab.errors import InputError
from rnnlab.tasks.forecast import QUANTILES, Forecast, pinball_loss, seasonal_naive
from rnnlab.train import Trainer, build_config
from tests.cli_helpers import assert_one_line_error, run_cli


def _csv(rows: int, *, test_scale: float = 1.0) -> str:
    """Daily sales driven by yesterday's price and the day of the week; the last 15% scaled by ``test_scale``."""
    rng = np.random.default_rng(0)
    days = np.arange(rows)
    price = 10 + np.cumsum(rng.normal(0, 0.2, rows))
    sales = 50 + 5 * np.sin(2 * np.pi * days / 7) - 2 * np.roll(price, 1) + rng.normal(0, 0.5, rows)
    first_test = rows - round(0.15 * rows)
    sales[first_test:] *= test_scale
    price[first_test:] *= test_scale
    dates = np.datetime64("2024-01-01") + days
    return "day,sales,price\n" + "".join(f"{d},{s:.4f},{p:.4f}\n" for d, s, p in zip(dates, sales, price, strict=True))


def _task(write, name="s.csv", text=None, **options):
    path = write(name, text or _csv(200))
    return Forecast(data=str(path), value_column="sales", date_column="day", input_columns="price", **options)


def test_builtin_stock_and_weather_series_with_covariates_and_calendar():
    stock = Forecast(series="sp500")
    assert stock.columns == ["Adj Close"] and stock.input_columns == ["Open", "High", "Low", "Volume"]
    assert stock.difference and stock.calendar and stock.input_size == 1 + 4 + 4
    weather = Forecast(series="seattle_weather", input_columns="none", calendar="off")
    assert weather.columns == ["temp_max"] and weather.input_size == 1 and weather.period == 365
    batch = Forecast(series="seattle_weather").collate("test", torch.arange(2))
    data = Forecast(series="seattle_weather").prepared
    row = int(Forecast(series="seattle_weather").data("test").tensors[2][0])  # first target row
    window = 28
    np.testing.assert_allclose(batch.inputs[:, 0, 4:].numpy(),
                               calendar_features(data.dates[row - window : row]), atol=1e-6)


def test_covariates_are_inputs_only_and_never_leak_the_test_rows(write, tmp_path):
    plain = _task(write, window=7, horizon=2)
    assert plain.input_size == 2 and plain.n_targets == 1
    batch = plain.collate("train", torch.arange(3))
    assert batch.inputs.shape == (7, 3, 2) and batch.targets.shape == (3, 2, 1)
    shifted = _task(write, "b.csv", _csv(200, test_scale=100.0), window=7, horizon=2)
    assert np.array_equal(plain.scaler.mean, shifted.scaler.mean)  # the covariate's scaler too
    for split in ("train", "valid"):
        for a, b in zip(plain.data(split).tensors, shifted.data(split).tensors, strict=True):
            assert torch.equal(a, b)


def test_quantile_levels_are_exact_for_cumulative_differences(write):
    task = _task(write, window=7, horizon=3, difference="on", quantiles=True)
    assert task.cumulative
    _, targets, _, base, levels = task.data("test")[:]
    exact = targets.unsqueeze(-1).expand(*targets.shape, 3)  # every quantile at the truth
    torch.testing.assert_close(task.to_levels(exact, base)[..., 1], levels)
    spread = torch.tensor([-0.01, 0.0, 0.01])  # a narrow interval around the truth, in scaled units
    perfect = task.evaluate_predictor(lambda b: b.targets.unsqueeze(-1) + spread)
    assert perfect["mae"] == pytest.approx(0, abs=1e-3) and perfect["coverage_80"] == 1.0
    assert 0 < perfect["interval_width"] < 0.1 * perfect["mae"] + 1.0
    missed = task.evaluate_predictor(lambda b: b.targets.unsqueeze(-1) + spread + 0.02)  # truth below the interval
    assert missed["coverage_80"] == 0.0


def test_pinball_loss_by_hand():
    predicted = torch.tensor([[0.0, 1.0, 2.0]])  # quantiles 0.1, 0.5, 0.9 of one target
    target = torch.tensor([1.5])
    # errors 1.5, 0.5, -0.5 -> 0.1 * 1.5, 0.5 * 0.5, 0.1 * 0.5
    assert pinball_loss(predicted, target, QUANTILES).item() == pytest.approx((0.15 + 0.25 + 0.05) / 3)


def test_random_walk_interval_and_coverage(write):
    task = _task(write, window=7, horizon=2, quantiles=True)
    origins = task.data("test").tensors[2].numpy()
    low, high = task.naive_interval(origins)
    train = task.prepared.values[task.prepared.rows.train, 0]
    change = train[2:] - train[:-2]  # two-step changes
    np.testing.assert_allclose(high[0, 1, 0] - task.prepared.values[origins[0] - 1, 0], np.quantile(change, 0.9))
    values = task.prepared.values[:, :1]
    naive = task._score(seasonal_naive(values, origins, 2, 1), "test", (low, high))  # as baselines() scores it
    assert 0.5 < naive["coverage_80"] <= 1.0 and naive["interval_width"] > 0


def test_bad_covariates_are_one_line_errors(write, capsys, tmp_path):
    text = _csv(100).replace(",10.", ",ten.", 1)  # a price in words
    path = write("t.csv", text)
    code, _, err = run_cli(capsys, "train", "forecast", "--data", path, "--value-column", "sales", "--date-column",
                           "day", "--input-columns", "price", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "column 'price' of t.csv must be numeric")
    with pytest.raises(InputError, match="distinct column names other than the forecast ones"):
        Forecast(data=str(path), value_column="sales", input_columns="sales")
    with pytest.raises(InputError, match="--calendar on needs dates"):
        Forecast(data=str(path), value_column="sales", calendar="on")
    with pytest.raises(InputError, match="has no column 'rain'"):
        _ = Forecast(series="seattle_weather", input_columns="rain").prepared


def test_a_short_quantile_run_learns_and_covers(write):
    path = write("s.csv", _csv(400))
    options = {"data": str(path), "value_column": "sales", "date_column": "day", "input_columns": "price",
               "window": 14, "quantiles": "true"}
    trainer = Trainer(build_config("forecast", options, {"hidden_size": 16, "steps": 150, "eval_every": 150,
                                                         "patience": None, "lr": 1e-2}))
    before = trainer.evaluate("test")
    results = trainer.fit()
    metrics = results["metrics"]
    assert metrics["test_mae"] < 0.5 * before["mae"]
    assert metrics["test_coverage_80"] > before["coverage_80"] + 0.2  # the quantiles spread apart as they learn
    assert metrics["test_interval_width"] > 0
    assert 0.5 < results["baseline"]["test_naive_coverage_80"] <= 1.0
