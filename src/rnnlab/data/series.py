"""Time series for forecasting: loading, gap filling, chronological split, scaling, sliding windows, MASE scale.

Built-in series (``statsmodels.datasets``, read from the installed package):

- ``sunspots``: yearly mean sunspot numbers 1700-2008, 309 rows, one column ``SUNACTIVITY``, no gaps.
  Seasonal period 1 (yearly data; the ~11-year solar cycle is not a fixed period).
- ``co2``: weekly atmospheric CO2 at Mauna Loa (ppmv), 1958-03-29 to 2001-12-29, 2,284 rows, one column
  ``co2``, 59 missing weeks (the longest gap 18 weeks). Seasonal period 52.
- ``sp500``: daily S&P 500 index 1999-01-04 to 2018-12-31 (trading days), 5,031 rows, columns ``Open``, ``High``,
  ``Low``, ``Close``, ``Adj Close``, ``Volume`` (from the ``arch`` package's bundled ``sp500.csv.gz``).
- ``seattle_weather``: daily Seattle weather 2012-2015, 1,461 rows, numeric columns ``precipitation`` (mm),
  ``temp_max``, ``temp_min`` (deg C), ``wind`` (m/s) (``vega_datasets``' bundled ``seattle-weather.csv``; its
  text column ``weather`` is left out).

Gap policy (all series, built-in or the user's): a missing value is filled by linear interpolation **in time**
(by the dates when the series has them, else by row position) between the nearest observed values of the
same column; a gap at the start or end is filled with the nearest observed value. Gaps are filled **within
each split separately** (after the chronological split), so no value of a later split ever leaks into an
earlier one; :attr:`ForecastData.n_filled` reports how many values were filled.

Pipeline (:func:`prepare_forecasting`): chronological train/valid/test split of the rows -> gaps filled per split
-> a :class:`~rnnlab.data.scaling.Standardizer` fitted on the train rows only -> windows. A window's targets lie
wholly in its split; its inputs may reach back into the preceding split (that history is known at forecast
time), so the valid and test splits lose no rows to the window length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab.data.files import is_missing, read_table
from rnnlab.data.scaling import Standardizer
from rnnlab.data.split import SplitIndices, chronological_split
from rnnlab.errors import InputError

BUILTIN_SERIES = ("sunspots", "co2", "sp500", "seattle_weather")


@dataclass(frozen=True)
class Series:
    """A multichannel series as loaded, before any split.

    ``values``: ``(T, C) float64``, NaN where a value is missing; ``dates``: ``(T,) datetime64`` or None;
    ``period``: the seasonal period in steps (1 = none), used by the MASE scale and seasonal-naive baselines.
    """

    name: str
    values: np.ndarray
    columns: list[str]
    dates: np.ndarray | None = None
    period: int = 1


@dataclass(frozen=True)
class ForecastWindows:
    """Windows of one split, scaled: ``inputs (N, W, C)``, ``targets (N, H, C)`` (float32);
    ``target_rows (N,)``: the row of the series where each window's first target is."""

    inputs: np.ndarray
    targets: np.ndarray
    target_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class ForecastData:
    """A series ready for forecasting.

    ``values (T, C) float64``: the series in its own units with gaps filled; ``rows``: the row indices of each
    split; ``scaler``: fitted on ``values[rows.train]``; ``mase_scale (C,)``: in the series' units, from the
    train rows (see :func:`mase_scale`).
    """

    name: str
    columns: list[str]
    window: int
    horizon: int
    period: int
    train: ForecastWindows
    valid: ForecastWindows
    test: ForecastWindows
    scaler: Standardizer
    mase_scale: np.ndarray
    values: np.ndarray
    rows: SplitIndices
    n_filled: int
    dates: np.ndarray | None = None


def load_series(
    data: str | Path | None = None,
    *,
    name: str = "sunspots",
    value_columns: Sequence[str] | None = None,
    date_column: str | None = None,
    period: int = 1,
) -> Series:
    """The built-in series ``name`` when ``data`` is None, else the user's table (CSV/TSV/JSON Lines).

    For a file, ``value_columns`` (one or more) must be numeric (gaps allowed; anything else raises
    InputError naming the column and data row); with ``date_column`` the rows are sorted by date (duplicate or
    unparseable dates raise InputError). ``period`` is the user series' seasonal period.
    """
    if data is None:
        if value_columns or date_column:
            raise InputError("value_columns/date_column apply to a data file; got no file")
        return _builtin_series(name)
    if not value_columns:
        raise InputError(f"a value column is needed to read {Path(data).name}; got none")
    if period < 1:
        raise InputError(f"period must be at least 1, got {period}")
    source = Path(data).name
    frame = read_table(data, columns=[date_column] if date_column else [], numeric=list(value_columns))
    dates = None
    if date_column:
        dates = _parse_dates(frame[date_column], date_column, source)
        order = np.argsort(dates, kind="stable")
        frame, dates = frame.iloc[order].reset_index(drop=True), dates[order]
        duplicated = np.flatnonzero(dates[1:] == dates[:-1])
        if len(duplicated):
            raise InputError(f"date column '{date_column}' of {source} repeats the date {dates[duplicated[0]]}")
    values = frame[list(value_columns)].to_numpy(np.float64)  # (T, C)
    for c, column in enumerate(value_columns):
        if np.isnan(values[:, c]).all():
            raise InputError(f"column '{column}' of {source} has no values")
    return Series(Path(data).stem, values, list(value_columns), dates, period)


def _builtin_series(name: str) -> Series:
    if name not in BUILTIN_SERIES:
        raise InputError(f"built-in series must be one of {', '.join(BUILTIN_SERIES)}; got {name!r}")
    if name == "sunspots":
        from statsmodels.datasets import sunspots

        frame = sunspots.load_pandas().data
        dates = np.array([f"{int(y):04d}-01-01" for y in frame["YEAR"]], dtype="datetime64[D]")
        return Series("sunspots", frame[["SUNACTIVITY"]].to_numpy(np.float64), ["SUNACTIVITY"], dates, 1)
    if name in ("sp500", "seattle_weather"):
        from rnnlab.data.packages import package_data_path

        path = (package_data_path("arch", "data/sp500/sp500.csv.gz") if name == "sp500"
                else package_data_path("vega_datasets", "_data/seattle-weather.csv", distribution="vega_datasets"))
        frame = pd.read_csv(path)
        date_column = "Date" if name == "sp500" else "date"
        dates = pd.to_datetime(frame[date_column], format="%m/%d/%Y" if name == "sp500" else "%Y/%m/%d")
        columns = [c for c in frame.columns if c != date_column and pd.api.types.is_numeric_dtype(frame[c])]
        return Series(name, frame[columns].to_numpy(np.float64), columns, dates.to_numpy().astype("datetime64[D]"),
                      1)
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data
    dates = frame.index.to_numpy().astype("datetime64[D]")
    return Series("co2", frame[["co2"]].to_numpy(np.float64), ["co2"], dates, 52)


def _parse_dates(column: pd.Series, name: str, source: str) -> np.ndarray:
    raw = column.tolist()
    for row, value in enumerate(raw):
        if is_missing(value):
            raise InputError(f"date column '{name}' of {source} is empty at data row {row + 1}")
    # Each value parsed on its own (ISO 8601 and the usual forms; "01/02/2020" is month first); offsets -> UTC.
    parsed = pd.to_datetime(pd.Series([str(v) for v in raw]), errors="coerce", format="mixed", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise InputError(
            f"date column '{name}' of {source} must hold dates; found {raw[bad[0]]!r} at data row {bad[0] + 1}"
        )
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def fill_gaps(values: np.ndarray, dates: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``(T, C)`` with NaN gaps -> ``(filled (T, C), number of values filled)``.

    Linear interpolation in time (``dates``, else row position) between observed neighbours; gaps at either end
    take the nearest observed value. A column with no observed value raises InputError.
    """
    values = np.array(values, dtype=np.float64)  # (T, C) copy
    time = dates.astype("datetime64[ns]").astype(np.int64) if dates is not None else np.arange(len(values))
    time = time.astype(np.float64)  # (T,)
    missing = np.isnan(values)
    for c in range(values.shape[1]):
        gaps = missing[:, c]
        if gaps.all():
            raise InputError(f"channel {c} has no observed value to fill its gaps from")
        if gaps.any():
            values[gaps, c] = np.interp(time[gaps], time[~gaps], values[~gaps, c])
    return values, int(missing.sum())


def sliding_windows(
    values: np.ndarray, window: int, horizon: int, *, first_target: int | None = None, end: int | None = None
) -> ForecastWindows:
    """All windows over ``values (T, C)``: inputs ``values[t-W:t]`` ``(N, W, C)``, targets ``values[t:t+H]``
    ``(N, H, C)``, for every target start ``t`` in ``[max(first_target, W), end - H]`` (defaults: ``W`` and
    ``T``). Arrays are float32 copies."""
    check_window(window, horizon)
    values = np.asarray(values)
    first = window if first_target is None else max(first_target, window)
    last = (len(values) if end is None else end) - horizon  # last target start, inclusive
    starts = np.arange(first, last + 1, dtype=np.int64)
    if len(starts) == 0:
        empty = np.zeros((0, window + horizon, values.shape[1]), dtype=np.float32)
        return ForecastWindows(empty[:, :window], empty[:, window:], starts)
    span = np.lib.stride_tricks.sliding_window_view(values, window + horizon, axis=0)  # (T-W-H+1, C, W+H)
    chosen = np.moveaxis(span[starts - window], -1, 1).astype(np.float32)  # (N, W+H, C)
    return ForecastWindows(chosen[:, :window], chosen[:, window:], starts)


def check_window(window: int, horizon: int) -> None:
    """Raise InputError unless ``window >= 1`` and ``horizon >= 1``."""
    if window < 1:
        raise InputError(f"window must be at least 1 step, got {window}")
    if horizon < 1:
        raise InputError(f"horizon must be at least 1 step, got {horizon}")


def mase_scale(train: np.ndarray, period: int = 1) -> np.ndarray:
    """The MASE denominator per channel: ``mean_t |y_t - y_{t-m}|`` over the training values ``(T, C)``,
    ``m = period`` (1: naive, m > 1: seasonal naive). Returns ``(C,)``.

    Raises InputError if ``T <= m`` or a channel is constant at lag ``m`` (MASE would divide by zero).
    """
    train = np.asarray(train, dtype=np.float64)
    if period < 1:
        raise InputError(f"period must be at least 1, got {period}")
    if len(train) <= period:
        raise InputError(f"MASE with period {period} needs more than {period} training rows, got {len(train)}")
    scale = np.abs(train[period:] - train[:-period]).mean(axis=0)
    if np.any(scale == 0):
        channel = int(np.flatnonzero(scale == 0)[0])
        raise InputError(f"channel {channel} does not change at lag {period} in the training data; MASE is undefined")
    return scale


def prepare_forecasting(
    series: Series,
    *,
    window: int,
    horizon: int,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ForecastData:
    """Split, fill, scale and window ``series`` (see the module docstring). Shapes: ``(N, W, C)`` inputs,
    ``(N, H, C)`` targets per split.

    Raises InputError when the train split has fewer than ``window + horizon`` rows or the valid/test split
    fewer than ``horizon`` rows (naming how many the series needs).
    """
    check_window(window, horizon)
    n_rows = len(series.values)
    rows = chronological_split(n_rows, valid_fraction=valid_fraction, test_fraction=test_fraction)
    train_fraction = 1.0 - valid_fraction - test_fraction
    needs = {"train": window + horizon, "valid": horizon, "test": horizon}
    for split, fraction in (("train", train_fraction), ("valid", valid_fraction), ("test", test_fraction)):
        size = len(getattr(rows, split))
        if fraction > 0 and size < needs[split]:
            what = f"window {window} + horizon {horizon}" if split == "train" else f"horizon {horizon}"
            total = math.ceil(needs[split] / fraction)
            raise InputError(
                f"too few rows in '{series.name}': the {split} split has {size} of its {n_rows} rows; {what} needs "
                f"at least {needs[split]}, so the series needs about {total} rows (or a shorter window/horizon)"
            )
    values = np.empty_like(series.values)
    n_filled = 0
    for split in ("train", "valid", "test"):
        idx = getattr(rows, split)
        if len(idx) == 0:
            continue
        dates = series.dates[idx] if series.dates is not None else None
        try:
            values[idx], filled = fill_gaps(series.values[idx], dates)
        except InputError:
            empty = int(np.flatnonzero(np.isnan(series.values[idx]).all(axis=0))[0])
            raise InputError(
                f"column '{series.columns[empty]}' of '{series.name}' has no values in the {split} split "
                f"(rows {idx[0] + 1}..{idx[-1] + 1})"
            ) from None
        n_filled += filled
    scaler = Standardizer.fit(values[rows.train])
    scaled = scaler.transform(values)  # (T, C)
    bounds = {"train": (0, len(rows.train)), "valid": (len(rows.train), len(rows.train) + len(rows.valid))}
    bounds["test"] = (bounds["valid"][1], n_rows)
    windows = {s: sliding_windows(scaled, window, horizon, first_target=a, end=b) for s, (a, b) in bounds.items()}
    return ForecastData(
        name=series.name,
        columns=series.columns,
        window=window,
        horizon=horizon,
        period=series.period,
        train=windows["train"],
        valid=windows["valid"],
        test=windows["test"],
        scaler=scaler,
        mase_scale=mase_scale(values[rows.train], series.period),
        values=values,
        rows=rows,
        n_filled=n_filled,
        dates=series.dates,
    )


def calendar_features(dates: np.ndarray) -> np.ndarray:
    """``(T, 4) float64`` calendar features of ``dates (T,)``: the sine and cosine of the day of the week
    (period 7) and of the day of the year (period 365.25), known in advance for any date."""
    days = dates.astype("datetime64[D]").astype(np.int64)  # days since 1970-01-01 (a Thursday)
    weekday = (days + 3) % 7  # Monday 0
    day_of_year = (dates.astype("datetime64[D]") - dates.astype("datetime64[Y]").astype("datetime64[D]")).astype(
        np.int64)
    week, year = 2 * np.pi * weekday / 7, 2 * np.pi * day_of_year / 365.25
    return np.stack([np.sin(week), np.cos(week), np.sin(year), np.cos(year)], axis=1)
