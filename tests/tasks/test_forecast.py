import math

import numpy as np
import pytest
import torch

from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.tasks.forecast import Forecast, arima_forecasts, free_run, plot_forecast, seasonal_naive
from rnnlab.train import Trainer, build_config


def _csv(rows: int, *, seed: int = 0, test_scale: float = 1.0) -> str:
    """A noisy two-channel seasonal series with dates; the last 15% of rows multiplied by ``test_scale``."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    a = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, rows)
    b = 100 + 0.5 * t + rng.normal(0, 1.0, rows)
    first_test = rows - round(0.15 * rows)
    a[first_test:] *= test_scale
    b[first_test:] *= test_scale
    lines = ["month,temp,sales"]
    for k in range(rows):
        year, month = divmod(k, 12)
        lines.append(f"{2000 + year}-{month + 1:02d}-01,{a[k]:.4f},{b[k]:.4f}")
    return "\n".join(lines) + "\n"


def _task(write, rows=120, **options):
    path = write("series.csv", _csv(rows))
    return Forecast(data=str(path), value_column="temp,sales", date_column="month", **options)


def test_registered_and_defaults():
    assert get_task("forecast") is Forecast
    task = Forecast()
    assert task.columns == ["SUNACTIVITY"] and task.input_size == 1
    assert task.period == 11 and task.window == 22 and task.horizon == 1
    co2 = Forecast(series="co2", horizon=4)
    assert co2.period == 52 and co2.window == 104 and co2.horizon == 4


def test_windows_batches_and_targets(write):
    task = _task(write, window=6, horizon=3, period=12)
    data = task.prepared
    n_train, n_valid = len(data.rows.train), len(data.rows.valid)
    assert (n_train, n_valid, len(data.rows.test)) == (84, 18, 18)
    assert len(task.data("train")) == n_train - 6 - 3 + 1
    assert len(task.data("test")) == 18 - 3 + 1  # test windows' inputs reach back into valid
    inputs, targets, rows, base, levels = task.data("test")[:]
    scaled = data.scaler.transform(data.values)
    for k in (0, len(rows) - 1):
        t = int(rows[k])
        assert np.allclose(inputs[k].numpy(), scaled[t - 6 : t])
        assert np.allclose(targets[k].numpy(), scaled[t : t + 3])
        assert np.array_equal(base[k].numpy(), data.values[t - 1])
        assert np.array_equal(levels[k].numpy(), data.values[t : t + 3])
        assert n_train + n_valid <= t and t + 3 <= 120  # targets wholly in the test rows
    batch = task.collate("test", torch.arange(4))
    assert batch.inputs.shape == (6, 4, 2) and batch.targets.shape == (4, 3, 2)
    assert task.build_head(16, 1)(torch.randn(6, 4, 16)).shape == (4, 3, 2)


def test_test_rows_do_not_leak_into_scaling_or_training(write, tmp_path):
    """Two files that differ only in their test rows give the same scaler and the same train/valid windows."""
    plain = Forecast(data=str(write("a.csv", _csv(120))), value_column="temp,sales", window=6, horizon=2)
    path_b = tmp_path / "b.csv"
    path_b.write_text(_csv(120, test_scale=1000.0))
    shifted = Forecast(data=str(path_b), value_column="temp,sales", window=6, horizon=2)
    assert np.array_equal(plain.prepared.scaler.mean, shifted.prepared.scaler.mean)
    assert np.array_equal(plain.prepared.scaler.scale, shifted.prepared.scaler.scale)
    assert np.array_equal(plain.prepared.mase_scale, shifted.prepared.mase_scale)
    for split in ("train", "valid"):
        for a, b in zip(plain.data(split).tensors, shifted.data(split).tensors, strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(plain.data("test").tensors[1], shifted.data("test").tensors[1])


def test_metrics_are_in_the_series_units(write):
    task = _task(write, window=6, horizon=2)
    scale = torch.from_numpy(task.prepared.scaler.scale).float()
    exact = task.evaluate_predictor(lambda b: b.targets)
    assert exact["mae"] == pytest.approx(0, abs=1e-4) and exact["rmse"] == pytest.approx(0, abs=1e-4)
    # off by +1 unit on channel 0 and -3 units on channel 1, in the series' own units
    offset = torch.tensor([1.0, -3.0]) / scale
    off = task.evaluate_predictor(lambda b: b.targets + offset)
    assert off["mae"] == pytest.approx(2.0, rel=1e-4)
    assert off["rmse"] == pytest.approx(math.sqrt(5.0), rel=1e-4)
    mase_scale = task.prepared.mase_scale
    assert off["mase"] == pytest.approx((1 / mase_scale[0] + 3 / mase_scale[1]) / 2, rel=1e-4)
    assert "mse" not in off


def test_seasonal_naive_by_hand():
    values = np.arange(30, dtype=float).reshape(30, 1)
    origins = np.array([20, 25])
    naive = seasonal_naive(values, origins, 3, 1)
    assert naive[:, :, 0].tolist() == [[19, 19, 19], [24, 24, 24]]
    seasonal = seasonal_naive(values, origins, 5, 4)
    assert seasonal[0, :, 0].tolist() == [16, 17, 18, 19, 16]  # t+h minus one (or two) seasons, before t


def test_arima_forecasts_use_train_parameters_and_only_the_past():
    """AR(1) with a mean: the h-step forecast from origin t is mu + phi^(h+1) (y[t-1] - mu)."""
    rng = np.random.default_rng(1)
    y = np.empty(160)
    y[0] = 5.0
    for t in range(1, 160):
        y[t] = 5.0 + 0.7 * (y[t - 1] - 5.0) + rng.normal()
    values = y[:, None]
    origins = np.array([130, 150])
    out, models = arima_forecasts(values, 100, origins, 4, order=(1, 0, 0))
    assert models == ["ARIMA(1, 0, 0)"]
    from statsmodels.tsa.arima.model import ARIMA

    params = ARIMA(y[:100], order=(1, 0, 0)).fit().params  # const, ar.L1, sigma2
    mu, phi = params[0], params[1]
    for n, t in enumerate(origins):
        expected = mu + phi ** np.arange(1, 5) * (y[t - 1] - mu)
        assert np.allclose(out[n, :, 0], expected, atol=1e-6)
    changed = values.copy()
    changed[150:] += 100.0  # the future of origin 150 does not change its forecast
    again, _ = arima_forecasts(changed, 100, origins, 4, order=(1, 0, 0))
    assert np.allclose(again, out)


def test_baselines_side_by_side_on_sunspots():
    task = Forecast(horizon=2)
    every = task.baselines("test")
    assert set(every) == {"naive", "seasonal_naive", "arima"}
    for metrics in every.values():
        assert set(metrics) == {"mae", "rmse", "mase"} and all(np.isfinite(list(metrics.values())))
    assert every["arima"]["mase"] < min(every["naive"]["mase"], every["seasonal_naive"]["mase"])
    flat = task.baseline()
    assert flat["mase"] == every["seasonal_naive"]["mase"] and flat["arima_mae"] == every["arima"]["mae"]


def test_a_short_run_on_sunspots_lowers_the_error():
    config = build_config("forecast", {}, {"hidden_size": 16, "steps": 40, "eval_every": 40,
                                            "patience": None, "lr": 1e-2})
    trainer = Trainer(config)
    trainer.task.baseline = lambda: {}  # the ARIMA search is tested above; keep this test short
    before = trainer.evaluate("valid")["mase"]
    results = trainer.fit()
    assert results["metrics"]["test_mase"] < before
    assert trainer.evaluate("valid")["mase"] < 0.7 * before


def test_bad_input_is_one_clear_error(write):
    good = write("good.csv", _csv(120))
    with pytest.raises(InputError, match=r"column 'price' not found in good.csv; columns are: month, temp, sales"):
        Forecast(data=str(good), value_column="price")
    bad = write("bad.csv", "month,temp\n2000-01-01,1.5\n2000-02-01,warm\n")
    with pytest.raises(InputError, match=r"column 'temp' of bad.csv must be numeric; found 'warm' at data row 2"):
        Forecast(data=str(bad), value_column="temp")
    with pytest.raises(InputError, match=r"too few rows .* window 20 \+ horizon 5 needs at least 25"):
        Forecast(data=str(write("short.csv", _csv(30))), value_column="temp", horizon=5)
    with pytest.raises(InputError, match=r"--horizon expects a value >= 1, got 0"):
        Forecast(horizon=0)
    with pytest.raises(InputError, match=r"--horizon expects int, got 'two'"):
        Forecast(horizon="two")
    with pytest.raises(InputError, match="--data needs --value-column"):
        Forecast(data=str(good))
    with pytest.raises(InputError, match="apply to --data FILE"):
        Forecast(value_column="temp")
    with pytest.raises(InputError, match="--series expects one of sunspots, co2"):
        Forecast(series="tides")


def test_free_run_is_direct_then_steps_with_the_carried_state(write):
    trainer = Trainer(build_config("forecast", {"horizon": 3, "window": 5}, {"hidden_size": 8, "steps": 1}))
    model = trainer.model.eval()
    window = torch.randn(5, 1)
    direct, _ = model(window.unsqueeze(1), None)  # (1, 3, 1)
    five = free_run(model, window, 5)
    assert torch.allclose(five[:3], direct[0])
    # step 4 (index 3) is the far end of the output after reading the window and the forecast of step 1
    longer, _ = model(torch.cat([window, five[:1]]).unsqueeze(1), None)
    assert torch.allclose(five[3], longer[0, -1], atol=1e-5)
    longest, _ = model(torch.cat([window, five[:2]]).unsqueeze(1), None)
    assert torch.allclose(five[4], longest[0, -1], atol=1e-5)
    assert torch.allclose(free_run(model, window, 2), direct[0, :2])


def test_predict_and_plot_a_forecast_of_a_new_file(write, tmp_path):
    task = _task(write, window=6, horizon=2)
    config = build_config("forecast", dict(task.settings), {"hidden_size": 8, "steps": 1})
    model = Trainer(config).model
    newer = write("newer.csv", _csv(130, seed=5))
    result = task.predict(model, newer, horizon=7)
    assert result.forecast.shape == (7, 2) and result.history.shape == (130, 2)
    assert result.columns == ["temp", "sales"]
    assert str(result.forecast_time[0].astype("datetime64[M]")) == "2010-11"  # the month after the last row
    assert result.table().splitlines()[0] == "time\ttemp\tsales" and len(result.table().splitlines()) == 8
    png = plot_forecast(result, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="--horizon expects a positive number of steps, got 0"):
        task.predict(model, None, horizon=0)
    with pytest.raises(InputError, match=r"column 'sales' not found"):
        task.predict(model, write("other.csv", "month,temp\n2000-01-01,1\n"), horizon=2)
    with pytest.raises(InputError, match="too few rows in 'few' to forecast: the model reads the last 6 steps"):
        task.predict(model, write("few.csv", _csv(4)), horizon=2)
    with pytest.raises(InputError, match="expected a path ending in .png"):
        plot_forecast(result, tmp_path / "plot.jpg")


def test_builtin_forecast_labels_units():
    task = Forecast()
    model = Trainer(build_config("forecast", {}, {"hidden_size": 8, "steps": 1})).model
    result = task.predict(model, None, horizon=3)
    assert result.value_label == "mean sunspot number (yearly)" and result.time_label == "year"
    assert str(result.forecast_time[0].astype("datetime64[Y]")) == "2009"


def _trend_csv(rows: int, *, test_scale: float = 1.0) -> str:
    """A steep linear trend with a wiggle: the test rows lie far above the training range."""
    t = np.arange(rows)
    y = 5.0 + 2.0 * t + np.sin(t)
    y[rows - round(0.15 * rows) :] *= test_scale
    return "t,y\n" + "".join(f"{k},{v:.6f}\n" for k, v in zip(t, y, strict=True))


def test_differencing_windows_and_exact_levels(write):
    task = Forecast(data=str(write("trend.csv", _trend_csv(100))), value_column="y", window=5, horizon=3,
                    difference="on")
    assert task.difference and not Forecast().difference and Forecast(series="co2").difference
    data = task.prepared
    values = data.values[:, 0]
    diffs = np.diff(values)
    scaler = task.scaler
    train_diffs = np.diff(values[: len(data.rows.train)])
    assert scaler.mean[0] == pytest.approx(train_diffs.mean()) and scaler.scale[0] == pytest.approx(train_diffs.std())
    inputs, targets, rows, base, levels = task.data("test").tensors
    t = int(rows[0])
    assert np.allclose(scaler.inverse_transform(inputs[0].numpy().astype(np.float64))[:, 0], diffs[t - 6 : t - 1],
                       atol=1e-4)  # row r holds y[r] - y[r-1]
    assert base[0, 0].item() == values[t - 1] and np.allclose(levels[0, :, 0].numpy(), values[t : t + 3])
    exact = task.evaluate_predictor(lambda b: b.targets)
    assert exact["mae"] == pytest.approx(0, abs=1e-3)  # targets in model space sum back to the levels
    first_train = int(task.data("train").tensors[2][0])
    assert first_train == 6  # a window of 5 differences needs 6 values before its target


def test_differencing_fits_its_scaler_on_training_rows_only(write, tmp_path):
    plain = Forecast(data=str(write("a.csv", _trend_csv(100))), value_column="y", window=5, difference="on")
    path = tmp_path / "b.csv"
    path.write_text(_trend_csv(100, test_scale=50.0))
    shifted = Forecast(data=str(path), value_column="y", window=5, difference="on")
    assert np.array_equal(plain.scaler.mean, shifted.scaler.mean)
    assert np.array_equal(plain.scaler.scale, shifted.scaler.scale)
    for a, b in zip(plain.data("train").tensors, shifted.data("train").tensors, strict=True):
        assert torch.equal(a, b)


def test_differencing_forecasts_continue_from_the_last_value(write):
    path = write("trend.csv", _trend_csv(100))
    task = Forecast(data=str(path), value_column="y", window=5, horizon=2, difference="on")
    model = Trainer(build_config("forecast", dict(task.settings), {"hidden_size": 8, "steps": 1})).model
    result = task.predict(model, None, horizon=4)
    last = result.history[-1, 0]
    window = task.scaler.transform(task.model_space(result.history)[-5:]).astype(np.float32)
    steps = task.scaler.inverse_transform(free_run(model, torch.from_numpy(window), 4).numpy().astype(np.float64))
    assert np.allclose(result.forecast[:, 0], last + np.cumsum(steps[:, 0]), atol=1e-4)
    with pytest.raises(InputError, match="the model reads the last 6 steps"):
        task.predict(model, write("five.csv", _trend_csv(5)), horizon=2)


def test_a_short_differenced_run_on_a_trend_beats_the_naive_forecast(write):
    """A trend the test rows carry far beyond the training range: differences make it learnable."""
    path = write("trend.csv", _trend_csv(200))
    options = {"data": str(path), "value_column": "y", "window": 10, "difference": "on"}
    trainer = Trainer(build_config("forecast", options, {"hidden_size": 16, "steps": 150, "eval_every": 50,
                                                          "patience": None, "lr": 1e-2}))
    trainer.task.baseline = lambda: {}
    trainer.fit()
    naive = trainer.task._score(seasonal_naive(trainer.task.prepared.values,
                                               trainer.task.data("test").tensors[2].numpy(), 1, 1))
    assert trainer.evaluate("test")["mase"] < naive["mase"]
