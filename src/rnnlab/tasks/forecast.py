"""Time-series forecasting: from the last ``W`` observations, the next ``H`` values of one or more series.

Data: a built-in series (``--series sunspots``: yearly mean sunspot numbers 1700-2008; ``--series co2``: weekly
CO2 at Mauna Loa 1958-2001, with 59 missing weeks) or the user's table (``--data FILE --value-column COL[,COL2..]
[--date-column COL]``). The pipeline is :func:`rnnlab.data.series.prepare_forecasting`: a chronological split
(70/15/15), gaps filled by linear interpolation in time *within each split*, a standardiser fitted on the
training rows only, and sliding windows whose targets lie wholly inside their split (their inputs may reach back
into the previous split: that history is known when the forecast is made).

Model: the recurrent layer reads the ``W`` scaled input steps; a linear head on its last output gives the ``H``
next steps of every channel at once (direct multi-step forecasting), trained with the MSE of scaled values.
With ``--difference on`` (the default for co2, whose trend leaves the training range: a model of levels would
have to extrapolate) the model reads and predicts the first differences ``y[t] - y[t-1]``, scaled by a
standardiser fitted on the training rows' differences, and the forecasts are the last observed value plus the
running sum of the predicted differences.

Metrics, in the series' own units (predictions are unscaled first): ``mae``, ``rmse`` and ``mase`` (Hyndman &
Koehler 2006: the MAE divided by the in-sample MAE of the naive forecast on the training rows, at lag 1, or at
the seasonal period for a seasonal series such as co2), averaged over every target step of every test window
and every channel. Baselines, scored on the same test windows: ``naive`` (the last observed value, repeated),
``seasonal_naive`` (the value one season earlier; the plain metric names of the baseline are this one) and
``arima`` (a statsmodels ARIMA per channel, fitted on the training rows only; from each test window's origin it
forecasts the same ``H`` steps from the observations before that origin, with the fitted parameters; the order
comes from an ADF test and AIC, with seasonal differencing for a calendar season such as co2's 52 weeks).

Covariates and calendar (``--input-columns``, ``--calendar``): the built-in ``sp500`` (daily S&P 500 OHLCV from
the ``arch`` package; forecast column ``Adj Close``, inputs ``Open, High, Low, Volume``, differenced) and
``seattle_weather`` (``vega_datasets``; forecast ``temp_max``, inputs ``precipitation, temp_min, wind``) read
covariates and calendar features (day of week and of year as sine/cosine pairs) besides the forecast columns; the
model still predicts the forecast columns only, and covariates are scaled (and differenced) like them, on the
training rows only. ``--quantiles``: the head gives the 10%, 50% and 90% quantiles, trained with the pinball loss;
the median is the point forecast, and ``coverage_80`` (the share of true values inside the 10-90% interval) and
``interval_width`` are reported; differenced series forecast the quantiles of the cumulative change since the last
observation, which map to levels exactly. The ``naive`` baseline (the random walk, the honest baseline for prices)
gets an 80% interval from the empirical 10% and 90% quantiles of the ``h``-step changes in the training rows.

Seasonal period: co2 52 weeks; seattle_weather 365 days (seasonal naive only: its ARIMA and MASE use lag 1);
sunspots 11 years (the solar cycle, not a fixed period: its MASE is scaled by the lag-1 naive forecast); sp500 1;
a file ``--period`` (default 1: no season, seasonal naive is naive).

``predict`` forecasts beyond the end of the series (the run's, or a new file with the same columns), for any
horizon: the first ``H`` steps directly, later ones by feeding the forecasts back one step at a time, carrying
the layer's state; ``plot_forecast`` draws history and forecast.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rnnlab.data.scaling import Standardizer
from rnnlab.data.series import (
    BUILTIN_SERIES,
    ForecastData,
    Series,
    calendar_features,
    check_window,
    fill_gaps,
    load_series,
    prepare_forecasting,
    sliding_windows,
)
from rnnlab.errors import InputError
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.heads import last_step
from rnnlab.tasks.streams import IndexedTask

__all__ = ["Forecast", "ForecastResult", "arima_forecasts", "plot_forecast", "seasonal_naive"]

#: Seasonal period of the seasonal-naive baseline for each built-in series, in steps.
SEASONAL_PERIOD = {"sunspots": 11, "co2": 52, "sp500": 1, "seattle_weather": 365}
#: Built-in series whose model reads and predicts first differences by default (co2 and the S&P 500 leave their
#: training range).
DIFFERENCED = ("co2", "sp500")
#: What the values of each built-in series measure (the plot's y label) and its time step (the x label).
UNITS = {"sunspots": ("mean sunspot number (yearly)", "year"), "co2": ("CO2 mole fraction (ppmv)", "date"),
         "sp500": ("S&P 500 adjusted close", "date"), "seattle_weather": ("daily maximum temperature (deg C)", "date")}
#: The column each built-in series forecasts, and the covariates its model reads by default (--input-columns auto).
TARGET_COLUMN = {"sunspots": "SUNACTIVITY", "co2": "co2", "sp500": "Adj Close", "seattle_weather": "temp_max"}
DEFAULT_INPUTS = {"sp500": ["Open", "High", "Low", "Volume"], "seattle_weather": ["precipitation", "temp_min", "wind"]}
#: Input steps of a built-in series whose seasonal period is too long to read twice (its calendar features carry
#: the season).
DEFAULT_WINDOW = {"seattle_weather": 28}
#: The quantiles of --quantiles: the median is the point forecast, 10% and 90% bound the 80% interval.
QUANTILES = (0.1, 0.5, 0.9)
VALID_FRACTION = 0.15
TEST_FRACTION = 0.15
ARIMA_Q = (0, 1, 2)  # the MA orders searched by AIC (see _arima_order)


def seasonal_naive(values: np.ndarray, origins: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The seasonal-naive forecasts ``(N, H, C)``: the value at ``t + h`` is that of the latest step of the
    same season observed before the origin ``t``, ``values[t + h - period * (h // period + 1)]``.
    ``period = 1`` is the naive forecast (the last observed value, repeated)."""
    h = np.arange(horizon)  # (H,)
    rows = origins[:, None] + h[None, :] - period * (h[None, :] // period + 1)  # (N, H)
    return values[np.clip(rows, 0, None)]  # (N, H, C)


def _arima_order(train: np.ndarray, period: int) -> tuple[tuple[int, int, int], tuple[int, int, int, int]]:
    """``(order, seasonal_order)`` for one channel's training values.

    A seasonal series (a fixed calendar ``period > 1``) gets ``(1, 1, 1) x (0, 1, 0, period)``. Otherwise ``d`` is
    1 when an ADF test cannot reject a unit root (p >= 0.05), ``p`` is the AR order that minimises the AIC of
    least-squares fits of the (differenced) series up to lag ``min(12, n / 10)``, and ``q`` in 0..2 minimises
    the AIC of the ARIMA fits.
    """
    from statsmodels.tsa.ar_model import ar_select_order
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.stattools import adfuller

    if period > 1:
        return (1, 1, 1), (0, 1, 0, period)
    d = 0 if adfuller(train, result_object=False)[1] < 0.05 else 1
    series = np.diff(train) if d else train
    max_lag = max(1, min(12, len(series) // 10))
    lags = ar_select_order(series, maxlag=max_lag, ic="aic", trend="c" if d == 0 else "n").ar_lags
    p = max(lags) if lags else 0
    best: tuple[float, tuple[int, int, int]] | None = None
    for q in ARIMA_Q:
        aic = ARIMA(train, order=(p, d, q)).fit().aic
        if math.isfinite(aic) and (best is None or aic < best[0]):
            best = (aic, (p, d, q))
    return (best[1] if best else (max(p, 1), d, 0)), (0, 0, 0, 0)


def arima_forecasts(
    values: np.ndarray,
    n_train: int,
    origins: np.ndarray,
    horizon: int,
    period: int = 1,
    *,
    order: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """ARIMA forecasts ``(N, H, C)`` from every origin, and each channel's model as text.

    Per channel: the order is chosen (unless ``order`` is given, then without a seasonal part) and the
    parameters fitted on ``values[:n_train]`` only; the fitted model
    then filters the whole series with those parameters fixed, and the forecast from origin ``t`` (rows
    ``t..t+H-1``) uses the observations before ``t`` only (dynamic prediction from ``t``).
    """
    from statsmodels.tsa.arima.model import ARIMA

    out = np.empty((len(origins), horizon, values.shape[1]))
    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and frequency chatter of statsmodels
        for c in range(values.shape[1]):
            if order is None:
                chosen, seasonal = _arima_order(values[:n_train, c], period)
            else:
                chosen, seasonal = order, (0, 0, 0, 0)
            fitted = ARIMA(values[:n_train, c], order=chosen, seasonal_order=seasonal).fit()
            full = fitted.apply(values[:, c])
            for n, t in enumerate(origins.tolist()):
                pred = full.get_prediction(start=t, end=t + horizon - 1, dynamic=True).predicted_mean
                out[n, :, c] = np.asarray(pred)[:horizon]
            models.append(f"ARIMA{chosen}" + (f"x{seasonal}" if seasonal[3] else ""))
    return out, models


@dataclass(frozen=True)
class ForecastResult:
    """A forecast beyond the end of a series, in its units.

    ``history (T, C)`` the observed series (gaps filled), ``forecast (H, C)`` the next ``H`` values;
    ``history_time (T,)`` / ``forecast_time (H,)`` dates (``datetime64``) or step numbers.
    """

    name: str
    columns: list[str]
    history_time: np.ndarray
    history: np.ndarray
    forecast_time: np.ndarray
    forecast: np.ndarray
    value_label: str
    time_label: str

    def table(self) -> str:
        """The forecast as text: one line per step, time then one value per column."""
        head = "\t".join(["time", *self.columns])
        rows = [
            "\t".join([_time_text(t), *(f"{v:.6g}" for v in row)])
            for t, row in zip(self.forecast_time, self.forecast, strict=True)
        ]
        return "\n".join([head, *rows])


def _time_text(t: Any) -> str:
    if isinstance(t, np.datetime64):
        return str(t.astype("datetime64[D]"))
    return str(int(t))


class _ForecastHead(nn.Module):
    """Linear map of the last step's output to ``H x C`` values, ``(B, H, C)``, or with ``quantiles`` ``Q > 0``
    to ``H x C x Q`` quantiles, ``(B, H, C, Q)``."""

    def __init__(self, features: int, horizon: int, channels: int, quantiles: int = 0) -> None:
        super().__init__()
        self.horizon, self.channels, self.quantiles = horizon, channels, quantiles
        self.linear = nn.Linear(features, horizon * channels * max(quantiles, 1))

    def forward(self, output) -> torch.Tensor:
        last = last_step(output)  # (B, F)
        shape = (-1, self.horizon, self.channels) + ((self.quantiles,) if self.quantiles else ())
        return self.linear(last).view(shape)  # (B, H, C) or (B, H, C, Q)


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]) -> torch.Tensor:
    """Mean quantile (pinball) loss of ``predicted (..., Q)`` quantiles against ``target (...)``:
    ``mean(max(q (y - y_q), (q - 1) (y - y_q)))``."""
    q = torch.tensor(quantiles, dtype=predicted.dtype, device=predicted.device)  # (Q,)
    error = target.unsqueeze(-1) - predicted  # (..., Q)
    return torch.maximum(q * error, (q - 1) * error).mean()


@register_task
class Forecast(IndexedTask):
    """Multi-step forecasting of a (multichannel) series; MAE, RMSE, MASE in the series' units."""

    name = "forecast"
    summary = (
        "time-series forecasting: the next --horizon steps from the last --window (built-in sunspots, co2, sp500, "
        "seattle_weather, or --data FILE --value-column COL), covariates, calendar features, quantiles; MAE, RMSE, "
        "MASE, 80% coverage beside naive, seasonal-naive and ARIMA"
    )
    options = (
        TaskOption("series", str, "sunspots", "built-in series (without --data)", choices=BUILTIN_SERIES),
        TaskOption("data", str, "", "the user's table (CSV, TSV, JSON Lines) instead of a built-in series"),
        TaskOption("value_column", str, "", "with --data: the column(s) to forecast, comma-separated"),
        TaskOption("date_column", str, "", "with --data: a column of dates that orders the rows"),
        TaskOption("period", int, 0, "seasonal period in steps (0: sunspots 11, co2 52, a file 1)", min_value=0),
        TaskOption("window", int, 0, "input steps per forecast (0: max(20, 2 x period); seattle_weather 28)",
                   min_value=0),
        TaskOption("horizon", int, 1, "steps forecast at once", min_value=1),
        TaskOption("difference", str, "auto", "model the first differences (a trend beyond the training range): "
                   "on, off, auto (on for co2, sp500)", choices=("auto", "on", "off")),
        TaskOption("input_columns", str, "auto", "covariates the model reads besides the forecast columns, "
                   "comma-separated; auto: sp500 Open,High,Low,Volume, seattle_weather precipitation,temp_min,wind; "
                   "none: no covariates"),
        TaskOption("calendar", str, "auto", "day-of-week and day-of-year features: on, off, auto (on for sp500 "
                   "and seattle_weather)", choices=("auto", "on", "off")),
        TaskOption("quantiles", bool, False, "forecast the 10/50/90% quantiles (pinball loss): the median is the "
                   "point forecast; coverage of the 80% interval is reported"),
    )
    monitor = "mase"
    higher_is_better = False
    allows_bidirectional = False  # the layer reads the past only; the head reads its last step
    defaults = {
        "hidden_size": 64,
        "epochs": 150,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 10,
        "patience": 20,
        "weight_decay": 1e-4,
        "optimizer": "adamw",
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        s = self.settings
        if s["data"]:
            if not s["value_column"]:
                raise InputError("--data needs --value-column: the column(s) to forecast")
            self.columns = [c.strip() for c in s["value_column"].split(",")]
            if not all(self.columns) or len(set(self.columns)) != len(self.columns):
                raise InputError(f"--value-column expects distinct column names separated by commas, "
                                 f"got {s['value_column']!r}")
        else:
            if s["value_column"] or s["date_column"]:
                raise InputError("--value-column and --date-column apply to --data FILE; got no --data")
            self.columns = [TARGET_COLUMN[s["series"]]]
        self.series_name = Path(s["data"]).stem if s["data"] else s["series"]
        if s["input_columns"] == "auto":
            self.input_columns = [] if s["data"] else list(DEFAULT_INPUTS.get(s["series"], []))
        elif s["input_columns"] == "none":
            self.input_columns = []
        else:
            self.input_columns = [c.strip() for c in s["input_columns"].split(",")]
            if not all(self.input_columns) or len(set(self.input_columns + self.columns)) != len(
                    self.input_columns + self.columns):
                raise InputError(f"--input-columns expects distinct column names other than the forecast ones, "
                                 f"separated by commas; got {s['input_columns']!r}")
        if s["calendar"] == "auto":
            self.calendar = not s["data"] and s["series"] in DEFAULT_INPUTS
        else:
            self.calendar = s["calendar"] == "on"
            if self.calendar and s["data"] and not s["date_column"]:
                raise InputError("--calendar on needs dates: give --date-column")
            if self.calendar and not s["data"] and s["series"] == "sunspots":
                raise InputError("--calendar on: sunspots are yearly; a calendar within the year does not apply")
        self.quantiles = QUANTILES if s["quantiles"] else ()
        self.n_targets = len(self.columns)
        self.input_size = len(self.columns) + len(self.input_columns) + (4 if self.calendar else 0)
        self.period = s["period"] or (SEASONAL_PERIOD.get(s["series"], 1) if not s["data"] else 1)
        self.window = s["window"] or DEFAULT_WINDOW.get(self.series_name if not s["data"] else "",
                                                        max(20, 2 * self.period))
        self.horizon = s["horizon"]
        check_window(self.window, self.horizon)
        self.difference = s["difference"] == "on" or (s["difference"] == "auto" and self.series_name in DIFFERENCED)
        self._forecast: ForecastData | None = None
        self._scaler: Standardizer | None = None
        if s["data"]:
            _ = self.prepared  # read and check the user's file now: a bad file fails before any run directory exists

    # ------------------------------------------------------------------------------------------------ data
    def load(self, data: str | None = None) -> Series:
        """The run's series, or the table ``data`` read with the run's columns."""
        s = self.settings
        path = data or s["data"] or None
        wanted = self.columns + self.input_columns  # the forecast columns first, then the covariates
        if path is None:
            series = load_series(None, name=s["series"])
            missing = [c for c in wanted if c not in series.columns]
            if missing:
                raise InputError(f"built-in series {s['series']} has no column '{missing[0]}'; its columns are: "
                                 f"{', '.join(series.columns)}")
            index = [series.columns.index(c) for c in wanted]
            return Series(series.name, series.values[:, index], wanted, series.dates, series.period)
        return load_series(path, value_columns=wanted, date_column=s["date_column"] or None, period=self.period)

    @property
    def prepared(self) -> ForecastData:
        """The series split, gap-filled and scaled in its own units (built on first use; see
        :func:`~rnnlab.data.series.prepare_forecasting`)."""
        if self._forecast is None:
            self._forecast = prepare_forecasting(
                self.load(), window=self.window + int(self.difference), horizon=self.horizon,
                valid_fraction=VALID_FRACTION, test_fraction=TEST_FRACTION,
            )
        return self._forecast

    def model_space(self, values: np.ndarray) -> np.ndarray:
        """What the model reads and predicts, unscaled: the values ``(T, C)``, or with differencing
        ``values[t] - values[t-1]`` (NaN at row 0)."""
        if not self.difference:
            return values
        return np.concatenate([np.full_like(values[:1], np.nan), np.diff(values, axis=0)])

    def features(self, values: np.ndarray, dates: np.ndarray | None) -> np.ndarray:
        """What the model reads at every row, ``(T, C + K [+ 4])``: the scaled model space of the forecast columns
        and covariates, then the calendar features of the row's date (with ``--calendar``)."""
        scaled = self.scaler.transform(self.model_space(values))  # (T, C + K), NaN at row 0 if differenced
        if not self.calendar:
            return scaled
        if dates is None:
            raise InputError("calendar features need dates; the series has none")
        return np.concatenate([scaled, calendar_features(dates)], axis=1)

    @property
    def cumulative(self) -> bool:
        """Quantiles of differenced series are forecast as cumulative changes since the last observation (a sum
        of quantiles is not a quantile of the sum; a quantile of the cumulative change is)."""
        return self.difference and bool(self.quantiles)

    @property
    def scaler(self) -> Standardizer:
        """The model's scaler, fitted on the training rows only: the series' (``prepared.scaler``), or with
        differencing one fitted on the differences within the training rows."""
        if self._scaler is None:
            data = self.prepared
            if self.difference:
                self._scaler = Standardizer.fit(self.model_space(data.values[data.rows.train])[1:])
            else:
                self._scaler = data.scaler
        return self._scaler

    def load_split(self, split: str) -> TensorDataset:
        """Windows whose targets lie in ``split``: inputs ``(N, W, C)`` and targets ``(N, H, C)`` in the model's
        scaled space, the first target's row ``(N,)``, the last value before it ``(N, C)`` and the targets in
        the series' units ``(N, H, C)``."""
        data = self.prepared
        n_train, n_valid = len(data.rows.train), len(data.rows.valid)
        first, end = {"train": (0, n_train), "valid": (n_train, n_train + n_valid),
                      "test": (n_train + n_valid, len(data.values))}[split]
        model_values = self.features(data.values, data.dates)  # (T, C + K [+ 4]), NaN at row 0 if differenced
        w = sliding_windows(model_values, self.window, self.horizon, first_target=max(first, self.window + 1)
                            if self.difference else first, end=end)
        rows = w.target_rows
        C = self.n_targets
        targets = w.targets[:, :, :C]  # (N, H, C): only the forecast columns are predicted
        if self.cumulative:
            targets = targets.cumsum(axis=1)
        levels = data.values[rows[:, None] + np.arange(self.horizon), :C]  # (N, H, C)
        return TensorDataset(torch.from_numpy(w.inputs), torch.from_numpy(np.ascontiguousarray(targets)),
                             torch.from_numpy(rows), torch.from_numpy(data.values[rows - 1, :C]),
                             torch.from_numpy(levels))

    def make_batch(self, inputs, targets, rows, base, levels) -> Batch:
        return Batch(inputs=inputs.transpose(0, 1).contiguous(), targets=targets,
                     extra={"rows": rows, "base": base, "levels": levels})  # (W, B, C), (B, H, C)

    def to_levels(self, outputs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Model outputs ``(B, H, C)`` (or quantiles ``(B, H, C, Q)``) -> forecasts in the series' units (float64);
        ``base (B, C)`` is the last value before the first target (used with differencing)."""
        C = self.n_targets
        quantiles = outputs.dim() == 4
        x = outputs.double() if quantiles else outputs.double().unsqueeze(-1)  # (B, H, C, Q)
        scale = torch.from_numpy(self.scaler.scale[:C]).view(1, 1, C, 1)
        mean = torch.from_numpy(self.scaler.mean[:C]).view(1, 1, C, 1)
        if self.cumulative:  # x[h] ~ sum of the scaled differences up to h
            steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1, 1)
            out = base.double().view(-1, 1, C, 1) + x * scale + steps * mean
        else:
            out = x * scale + mean
            if self.difference:
                out = base.double().view(-1, 1, C, 1) + out.cumsum(dim=1)
        return out if quantiles else out.squeeze(-1)

    # ----------------------------------------------------------------------------------------------- model
    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return _ForecastHead(features, self.horizon, self.n_targets, len(self.quantiles))  # (B, H, C[, Q])

    # ------------------------------------------------------------------------------------ loss and metrics
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.quantiles:
            return pinball_loss(outputs, batch.targets, self.quantiles)
        return F.mse_loss(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        levels = self.to_levels(outputs, batch.extra["base"])  # (B, H, C) or (B, H, C, Q)
        if not self.quantiles:
            return self._error_sums(levels, batch.extra["levels"])
        low, median, high = levels.unbind(-1)
        return self._error_sums(median, batch.extra["levels"], (low, high))

    def _error_sums(self, forecasts: torch.Tensor, truth: torch.Tensor,
                    interval: tuple[torch.Tensor, torch.Tensor] | None = None) -> MetricSums:
        """MAE, squared error and MASE sums of point ``forecasts (N, H, C)``; with an ``interval`` (its lower and
        upper bounds, each ``(N, H, C)``) also ``coverage_80`` (the share of the truth inside) and
        ``interval_width``."""
        truth = truth.double()
        error = forecasts.double() - truth  # (N, H, C), series units
        n = error.numel()
        scaled = error.abs() / torch.from_numpy(self.prepared.mase_scale[: self.n_targets])
        out = {
            "mae": (error.abs().sum().item(), n),
            "mse": (error.pow(2).sum().item(), n),
            "mase": (scaled.sum().item(), n),
        }
        if interval is not None:
            low, high = interval[0].double(), interval[1].double()
            out["coverage_80"] = (((low <= truth) & (truth <= high)).sum().item(), n)
            out["interval_width"] = ((high - low).sum().item(), n)
        return out

    def finalize_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """``rmse = sqrt(mean squared error)``, replacing the squared error."""
        out = {k: v for k, v in means.items() if k != "mse"}
        if "mse" in means:
            out["rmse"] = math.sqrt(means["mse"])
        return out

    def _score(self, forecasts: np.ndarray, split: str = "test", interval=None) -> dict[str, float]:
        """The metrics of forecasts ``(N, H, C)`` in series units, one per window of ``split``, in order (and of
        an ``interval``, two arrays like ``forecasts``)."""
        truth = self.data(split).tensors[4]  # (N, H, C)
        as_tensor = lambda a: torch.from_numpy(np.asarray(a, np.float64))  # noqa: E731
        sums = self._error_sums(as_tensor(forecasts), truth,
                                None if interval is None else (as_tensor(interval[0]), as_tensor(interval[1])))
        return self.finalize_metrics({k: total / count for k, (total, count) in sums.items()})

    def naive_interval(self, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The random walk's 80% interval ``(low, high)``, each ``(N, H, C)``: the last observed value plus the
        10% and 90% quantiles of the ``h``-step changes ``y[t + h] - y[t - 1]`` within the training rows."""
        data = self.prepared
        train = data.values[data.rows.train, : self.n_targets]  # (T_train, C)
        last = data.values[origins - 1, : self.n_targets]  # (N, C)
        lows, highs = [], []
        for h in range(self.horizon):
            change = train[h + 1 :] - train[: len(train) - h - 1]  # (T_train - h - 1, C)
            lows.append(np.quantile(change, QUANTILES[0], axis=0))
            highs.append(np.quantile(change, QUANTILES[-1], axis=0))
        return last[:, None] + np.stack(lows)[None], last[:, None] + np.stack(highs)[None]

    def baselines(self, split: str = "test") -> dict[str, dict[str, float]]:
        """Metrics of the naive (random walk, with its empirical 80% interval), seasonal-naive and ARIMA
        forecasts on the windows of ``split``."""
        data = self.prepared
        values = data.values[:, : self.n_targets]  # (T, C) the forecast columns
        origins = self.data(split).tensors[2].numpy()  # (N,) the first target row of each window
        naive = seasonal_naive(values, origins, self.horizon, 1)
        out = {
            "naive": self._score(naive, split, self.naive_interval(origins) if self.quantiles else None),
            "seasonal_naive": self._score(seasonal_naive(values, origins, self.horizon, self.period), split),
        }
        arima, _ = arima_forecasts(values, len(data.rows.train), origins, self.horizon, data.period)
        out["arima"] = self._score(arima, split)
        return out

    def baseline(self) -> dict[str, float]:
        """The seasonal-naive metrics under the plain names, and every baseline's as ``<baseline>_<metric>``."""
        every = self.baselines("test")
        flat = dict(every["seasonal_naive"])
        for kind, metrics in every.items():
            flat.update({f"{kind}_{k}": v for k, v in metrics.items()})
        return flat

    # ---------------------------------------------------------------------------------------- forecasting
    def predict(self, model: nn.Module, inputs: Any = None, *, horizon: int | None = None, **kwargs: Any):
        """Forecast the ``horizon`` steps after the end of a series (default: the run's horizon).

        Args:
            model: the trained model of a run of this task.
            inputs: ``None`` (the run's own series) or the path of a table with the run's value (and date)
                columns; it is scaled with the run's scaler (fitted on the run's training rows).
            horizon: steps to forecast; beyond the model's own horizon ``H`` the forecasts are fed back as
                inputs one step at a time (the layer's state carried), each new step taken from the far end of
                the model's ``H``-step output.

        Returns:
            a :class:`ForecastResult`.
        """
        if kwargs:
            raise InputError(f"task forecast does not take {', '.join(sorted(kwargs))} for a forecast")
        horizon = self.horizon if horizon is None else horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise InputError(f"--horizon expects a positive number of steps, got {horizon!r}")
        if horizon > self.horizon and (self.input_columns or self.calendar or self.quantiles):
            raise InputError(f"this run forecasts at most {self.horizon} steps: beyond them its covariates, calendar "
                             f"or quantiles would have to be fed back, which they cannot; got --horizon {horizon}")
        series = self.load(str(inputs)) if inputs is not None else self.load()
        values, _ = fill_gaps(series.values, series.dates)  # (T, C)
        needs = self.window + int(self.difference)
        if len(values) < needs:
            raise InputError(
                f"too few rows in '{series.name}' to forecast: the model reads the last {needs} steps, "
                f"the series has {len(values)}"
            )
        model_values = self.features(values, series.dates)[-self.window :]  # (W, C + K [+ 4])
        scaled = free_run(model, torch.from_numpy(model_values.astype(np.float32)), horizon)  # (horizon, C[, Q])
        base = torch.from_numpy(values[-1:, : self.n_targets])  # (1, C)
        forecast = self.to_levels(scaled.unsqueeze(0), base)[0].numpy()  # (horizon, C[, Q])
        if self.quantiles:
            forecast = forecast[..., QUANTILES.index(0.5)]  # the median
        values = values[:, : self.n_targets]
        history_time, forecast_time = _time_axes(series.dates, len(values), horizon)
        builtin = inputs is None and not self.settings["data"]
        value_label, time_label = UNITS[series.name] if builtin else (", ".join(self.columns), "date")
        if series.dates is None:
            time_label = "time step"
        return ForecastResult(series.name, self.columns, history_time, values, forecast_time, forecast,
                              value_label, time_label)

    def plot_forecast(self, result: ForecastResult, path: str | Path) -> Path:
        """Write the PNG of :func:`plot_forecast` at ``path``: the whole history up to 400 steps, else the last
        ``max(400, 10 x horizon)`` steps, so that the forecast stays visible."""
        shown = None if len(result.history) <= 400 else max(400, 10 * len(result.forecast))
        return plot_forecast(result, path, history=shown)


def free_run(model: nn.Module, window: torch.Tensor, horizon: int) -> torch.Tensor:
    """``horizon`` forecasts ``(horizon, C)`` after the scaled input ``window (W, C)`` (see
    :meth:`Forecast.predict`)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out, state = model(window.unsqueeze(1), None)  # (1, H, C)
            direct = out[0]  # (H, C)
            steps = list(direct[:horizon])
            k = 0
            while len(steps) < horizon:
                # feed the forecast of step k back: the new output covers steps k+1..k+H, its far end is new
                out, state = model(steps[k].view(1, 1, -1), state)  # (1, H, C)
                steps.append(out[0, -1])
                k += 1
    finally:
        model.train(was_training)
    return torch.stack(steps)  # (horizon, C)


def _time_axes(dates: np.ndarray | None, n: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """History and forecast time axes: dates continued by their calendar step (a whole number of months, for
    monthly and yearly data on a fixed day of the month) or else by their median spacing in days; step numbers
    when there are no dates."""
    if dates is None or n < 2:
        return np.arange(n), np.arange(n, n + horizon)
    dates = dates.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    day_of_month = dates - months.astype("datetime64[D]")  # (T,) days since the 1st
    month_steps = np.diff(months.astype(np.int64))
    if (day_of_month == day_of_month[0]).all() and month_steps.min() == month_steps.max() > 0:
        future_months = months[-1] + np.arange(1, horizon + 1) * int(month_steps[0])
        return dates, future_months.astype("datetime64[D]") + day_of_month[0]
    step = int(np.median(np.diff(dates).astype(np.int64)))
    return dates, dates[-1] + np.arange(1, horizon + 1) * np.timedelta64(step, "D")


def plot_forecast(result: ForecastResult, path: str | Path, *, history: int | None = None) -> Path:
    """Write a PNG of the series (the last ``history`` steps, default all) and its forecast at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"the plot is written as PNG: expected a path ending in .png, got {path.name}")
    start = 0 if history is None else max(0, len(result.history) - history)
    fig, ax = plt.subplots(figsize=(10, 4))
    try:
        for c, column in enumerate(result.columns):
            line = ax.plot(result.history_time[start:], result.history[start:, c], label=f"{column} (observed)")[0]
            # join the forecast to the last observation so the two read as one curve
            ax.plot(
                np.concatenate([result.history_time[-1:], result.forecast_time]),
                np.concatenate([result.history[-1:, c], result.forecast[:, c]]),
                linestyle="--", marker="o", markersize=3, color=line.get_color(), label=f"{column} (forecast)",
            )
        ax.axvline(result.history_time[-1], color="grey", linewidth=0.8)
        ax.set_xlabel(result.time_label)
        ax.set_ylabel(result.value_label)
        ax.set_title(f"{result.name}: {len(result.forecast)}-step forecast")
        ax.legend()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
