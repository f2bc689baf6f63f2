import numpy as np
import pytest

from rnnlab.data.series import (
    Series,
    fill_gaps,
    load_series,
    mase_scale,
    prepare_forecasting,
    sliding_windows,
)
from rnnlab.errors import InputError


def close(a, b):
    return np.allclose(a, b, atol=1e-4)  # windows are float32


def _series(values, dates=None, period=1):
    values = np.asarray(values, dtype=np.float64)
    return Series("toy", values.reshape(len(values), -1), ["y"] * (1 if values.ndim == 1 else values.shape[1]),
                  dates, period)


def test_builtin_sunspots():
    s = load_series(name="sunspots")
    assert s.values.shape == (309, 1) and s.columns == ["SUNACTIVITY"] and s.period == 1
    assert str(s.dates[0]) == "1700-01-01" and str(s.dates[-1]) == "2008-01-01"
    assert not np.isnan(s.values).any()


def test_builtin_co2_gaps_are_filled_and_counted():
    s = load_series(name="co2")
    assert s.values.shape == (2284, 1) and s.period == 52 and int(np.isnan(s.values).sum()) == 59
    data = prepare_forecasting(s, window=52, horizon=4)
    assert data.n_filled == 59 and not np.isnan(data.values).any()
    assert data.train.inputs.shape[1:] == (52, 1) and data.test.targets.shape[1:] == (4, 1)
    assert data.mase_scale.shape == (1,) and data.mase_scale[0] > 0


def test_fill_gaps_interpolates_in_time_and_extends_edges():
    days = np.array(["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05", "2020-01-06"], dtype="datetime64[D]")
    values = np.array([[np.nan], [0.0], [np.nan], [3.0], [np.nan]])
    filled, n = fill_gaps(values, days)
    # 01-04 is 2 days after 01-02 and 1 day before 01-05: 2/3 of the way from 0 to 3 (by position it would be 1.5)
    assert filled[:, 0].tolist() == [0.0, 0.0, 2.0, 3.0, 3.0] and n == 3
    by_position, _ = fill_gaps(values)
    assert by_position[2, 0] == 1.5


def test_gaps_are_filled_within_each_split():
    values = np.arange(20.0)
    values[13] = np.nan  # last train row (train = rows 0..13 with 0.15/0.15 of 20 -> 14/3/3)
    data = prepare_forecasting(_series(values), window=2, horizon=1)
    assert len(data.rows.train) == 14
    assert data.values[13, 0] == 12.0  # nearest train value, not interpolated towards valid's 14.0
    assert data.n_filled == 1


def test_windows_hold_the_right_values_and_targets_stay_in_their_split():
    values = np.arange(30.0)
    data = prepare_forecasting(_series(values), window=4, horizon=2, valid_fraction=0.2, test_fraction=0.2)
    unscale = data.scaler.inverse_transform
    train_x, train_y = unscale(data.train.inputs), unscale(data.train.targets)
    assert train_x.shape == (13, 4, 1) and train_y.shape == (13, 2, 1)  # 18 train rows: targets start at 4..16
    assert close(train_x[0, :, 0], [0, 1, 2, 3]) and close(train_y[0, :, 0], [4, 5])
    assert close(train_y[-1, :, 0], [16, 17])
    valid_x, valid_y = unscale(data.valid.inputs), unscale(data.valid.targets)
    assert data.valid.target_rows.tolist() == [18, 19, 20, 21, 22]
    assert close(valid_x[0, :, 0], [14, 15, 16, 17])  # history from the train split
    assert close(valid_y[-1, :, 0], [22, 23])
    assert unscale(data.test.targets)[-1, -1, 0] == pytest.approx(29)


def test_scaler_sees_train_rows_only():
    rng = np.random.default_rng(0)
    values = rng.normal(size=100)
    changed = values.copy()
    changed[80:] += 1000.0  # the test rows (and valid, rows 70..84 partly)
    changed[70:] *= 3.0
    a = prepare_forecasting(_series(values), window=5, horizon=2)
    b = prepare_forecasting(_series(changed), window=5, horizon=2)
    assert np.array_equal(a.scaler.mean, b.scaler.mean) and np.array_equal(a.scaler.scale, b.scaler.scale)
    assert np.array_equal(a.train.inputs, b.train.inputs) and np.array_equal(a.train.targets, b.train.targets)
    assert np.array_equal(a.mase_scale, b.mase_scale)
    assert not np.array_equal(a.test.targets, b.test.targets)


def test_several_value_columns_and_a_date_column(write):
    rows = "\n".join(f"2021-01-{d:02d},{d},{2 * d}" for d in (3, 1, 2, 5, 4, 6, 7, 8, 9, 10))
    path = write("m.csv", "day,a,b\n" + rows + "\n")
    s = load_series(path, value_columns=["a", "b"], date_column="day")
    assert s.columns == ["a", "b"] and s.values[:, 0].tolist() == list(range(1, 11))  # sorted by date
    data = prepare_forecasting(s, window=3, horizon=2, valid_fraction=0.2, test_fraction=0.2)
    assert data.train.inputs.shape == (2, 3, 2) and data.train.targets.shape == (2, 2, 2)


def test_sliding_windows_shapes():
    w = sliding_windows(np.arange(10.0).reshape(5, 2), 2, 1)
    assert w.inputs.shape == (3, 2, 2) and w.targets.shape == (3, 1, 2) and w.inputs.dtype == np.float32
    assert sliding_windows(np.zeros((3, 1)), 2, 2).inputs.shape == (0, 2, 1)


def test_mase_scale_naive_and_seasonal():
    train = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0], [6.0, 1.0]])
    assert mase_scale(train).tolist() == [(2 + 1 + 4) / 3, 1 / 3]
    assert mase_scale(train, period=2).tolist() == [(1 + 3) / 2, 1.0]
    with pytest.raises(InputError, match="channel 0 does not change at lag 1 in the training data"):
        mase_scale(np.ones((5, 1)))
    with pytest.raises(InputError, match="MASE with period 4 needs more than 4 training rows, got 4"):
        mase_scale(train, period=4)


def test_horizon_zero_and_window_zero():
    with pytest.raises(InputError, match="horizon must be at least 1 step, got 0"):
        prepare_forecasting(_series(np.arange(50.0)), window=5, horizon=0)
    with pytest.raises(InputError, match="window must be at least 1 step, got 0"):
        prepare_forecasting(_series(np.arange(50.0)), window=0, horizon=1)


def test_too_few_rows_says_how_many_are_needed():
    with pytest.raises(InputError) as info:
        prepare_forecasting(_series(np.arange(20.0)), window=24, horizon=3)
    message = str(info.value)
    assert "the train split has 14 of its 20 rows; window 24 + horizon 3 needs at least 27" in message
    assert "the series needs about 39 rows" in message


def test_non_numeric_and_bad_dates(write):
    with pytest.raises(InputError, match="column 'v' of s.csv must be numeric; found 'n/a!' at data row 2"):
        load_series(write("s.csv", "v\n1\nn/a!\n"), value_columns=["v"])
    with pytest.raises(InputError, match="date column 'd' of d.csv must hold dates; found 'soon' at data row 2"):
        load_series(write("d.csv", "d,v\n2020-01-01,1\nsoon,2\n"), value_columns=["v"], date_column="d")
    with pytest.raises(InputError, match="date column 'd' of e.csv repeats the date 2020-01-01"):
        load_series(write("e.csv", "d,v\n2020-01-01,1\n2020-01-01,2\n"), value_columns=["v"], date_column="d")
    with pytest.raises(InputError, match="column 'w' not found in f.csv; columns are: v"):
        load_series(write("f.csv", "v\n1\n"), value_columns=["w"])
    with pytest.raises(InputError, match="built-in series must be one of sunspots, co2, .*; got 'air'"):
        load_series(name="air")


def test_a_split_without_values_is_an_error():
    values = np.arange(40.0)
    values[34:] = np.nan  # the whole test split (rows 34..39)
    with pytest.raises(InputError, match=r"column 'y' of 'toy' has no values in the test split \(rows 35..40\)"):
        prepare_forecasting(_series(values), window=3, horizon=1)
