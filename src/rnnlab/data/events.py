"""Event sequences from one transactions table: per-entity sequences in time order, a split by time, features
scaled and categories coded on the training events only.

The table (the user's ``--data``, or :func:`synthetic_transactions`) has one row per event: an entity column
(a card, a customer), a time column (numbers or dates), a 0/1 label column, numeric feature columns and
categorical feature columns. :func:`prepare_events` turns it into :class:`EventData`:

* **Order.** Events are sorted by entity, then time (a stable sort). An entity whose rows were out of time order
  is sorted with a one-line warning.
* **Split by time.** The cut times are the 70% and 85% quantiles of all event times: events before the first are
  ``train``, before the second ``valid``, the rest ``test``. A model of split ``s`` reads each entity's events up
  to its last event of ``s`` (its earlier events are the known past) and is scored on the events of ``s`` only;
  nothing after an event ever reaches its features.
* **Features.** Numeric columns standardised with the training events' statistics (a missing value becomes the
  training mean, with a warning); the log of the seconds since the entity's previous event (0 for its first);
  categorical values coded ``1..V`` by the values seen in training events, ``0`` for any other value or a gap.

:func:`synthetic_transactions` is a documented **synthetic** generator of card transactions with injected fraud,
for tests and demos only (no real transactions table with a licence fit to ship was found in an installable
package).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab.data.files import is_missing, read_table, time_in_seconds, to_numeric
from rnnlab.data.scaling import Standardizer
from rnnlab.errors import InputError, InputWarning

__all__ = ["EventData", "prepare_events", "running_features", "synthetic_transactions"]

SPLIT_QUANTILES = (0.70, 0.85)
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


@dataclass(frozen=True)
class EventData:
    """Every event, sorted by entity then time (``N`` events, ``E`` entities).

    ``entity (N,) int64`` entity index; ``time (N,) float64`` seconds; ``split (N,) int8`` 0/1/2 for train,
    valid, test; ``labels (N,) int64`` 0/1; ``numeric (N, Fn) float32`` scaled numeric features then the scaled
    log gap since the entity's previous event; ``categorical (N, Fc) int64`` codes (0: unseen or missing);
    ``vocab_sizes`` the number of codes per categorical column (including 0); ``raw`` the sorted table itself
    (the baselines derive their own features from it); ``starts (E + 1,)`` the first event of each entity.
    """

    name: str
    entity: np.ndarray
    time: np.ndarray
    split: np.ndarray
    labels: np.ndarray
    numeric: np.ndarray
    categorical: np.ndarray
    numeric_columns: list[str]
    categorical_columns: list[str]
    vocab_sizes: list[int]
    raw: pd.DataFrame
    starts: np.ndarray
    cut_times: tuple[float, float]


def _labels(column: pd.Series, name: str, source: str) -> np.ndarray:
    out = np.empty(len(column), dtype=np.int64)
    for row, value in enumerate(column.tolist()):
        if is_missing(value):
            raise InputError(f"label column '{name}' of {source} is empty at data row {row + 1}")
        text = str(value).strip().lower()
        if text in ("1", "1.0", "true", "yes"):
            out[row] = 1
        elif text in ("0", "0.0", "false", "no"):
            out[row] = 0
        else:
            raise InputError(f"label column '{name}' of {source} must hold 0/1 labels; found {value!r} "
                             f"at data row {row + 1}")
    return out


def prepare_events(
    table: pd.DataFrame | str | Path,
    *,
    entity_column: str,
    time_column: str,
    label_column: str,
    numeric_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    name: str = "events",
) -> EventData:
    """Sort, split by time, scale and code a transactions table (see the module docstring).

    Raises InputError for: a missing column, a missing label or time, a label that is not 0/1, a non-numeric value
    in a numeric column, a label with one class only, or a split without events.
    """
    source = name
    if not isinstance(table, pd.DataFrame):
        source, name = Path(table).name, Path(table).stem
        table = read_table(table, columns=[entity_column, time_column, label_column, *categorical_columns],
                           numeric=list(numeric_columns))
    else:
        missing = [c for c in (entity_column, time_column, label_column, *numeric_columns, *categorical_columns)
                   if c not in table.columns]
        if missing:
            raise InputError(f"column '{missing[0]}' not found in {source}; columns are: {', '.join(table.columns)}")
        table = table.copy()
        for column in numeric_columns:
            table[column] = to_numeric(table[column].astype(object), column, source)
    overlap = set(numeric_columns) & set(categorical_columns)
    if overlap:
        raise InputError(f"column '{sorted(overlap)[0]}' is given as both numeric and categorical")
    labels = _labels(table[label_column], label_column, source)
    if len(np.unique(labels)) < 2:
        raise InputError(f"label column '{label_column}' of {source} has one class only ({int(labels[0])}); "
                         f"classification needs both 0 and 1")
    seconds = time_in_seconds(table[time_column], time_column, source)
    entities = table[entity_column].astype(str).to_numpy()
    codes, entity_index = np.unique(entities, return_inverse=True)
    row_order = np.lexsort((seconds, entity_index))  # by entity, then time (stable)
    file_order = np.lexsort((np.arange(len(table)), entity_index))  # by entity, then file row
    unsorted_entities = np.unique(entity_index[row_order[row_order != file_order]])
    if len(unsorted_entities):
        warnings.warn(f"{len(unsorted_entities)} entit{'y' if len(unsorted_entities) == 1 else 'ies'} of {source} "
                      f"had events out of time order in '{time_column}'; sorted them by time", InputWarning,
                      stacklevel=2)
    table = table.iloc[row_order].reset_index(drop=True)
    entity, seconds, labels = entity_index[row_order], seconds[row_order], labels[row_order]
    cut_times = tuple(float(np.quantile(seconds, q)) for q in SPLIT_QUANTILES)
    split = np.where(seconds < cut_times[0], 0, np.where(seconds < cut_times[1], 1, 2)).astype(np.int8)
    for s, code in SPLIT_CODES.items():
        if not (split == code).any():
            raise InputError(f"{source}: the {s} split (by time) has no events; the times must spread over a range")
    train = split == 0
    if len(np.unique(labels[train])) < 2:
        raise InputError(f"label column '{label_column}' of {source} has one class only in the training events "
                         f"(the first 70% by time)")
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1], True])  # (E + 1,)
    gap = np.diff(seconds, prepend=np.nan)  # (N,) seconds since the previous event
    gap[starts[:-1]] = 0.0  # an entity's first event
    log_gap = np.log1p(np.maximum(gap, 0.0))
    numeric = np.column_stack([table[c].to_numpy(np.float64) for c in numeric_columns] + [log_gap])  # (N, Fn + 1)
    gaps = np.isnan(numeric)
    scaler = Standardizer.fit(numeric[train])
    if gaps.any():
        numeric = np.where(gaps, scaler.mean, numeric)
        warnings.warn(f"{int(gaps.sum())} missing numeric value(s) of {source} set to the training mean",
                      InputWarning, stacklevel=2)
    categorical = np.zeros((len(table), len(categorical_columns)), dtype=np.int64)
    vocab_sizes = []
    for c, column in enumerate(categorical_columns):
        values = np.array(["" if is_missing(v) else str(v) for v in table[column].tolist()], dtype=object)
        known = sorted(set(values[train]) - {""})
        index = {v: k + 1 for k, v in enumerate(known)}
        categorical[:, c] = [index.get(v, 0) for v in values]
        vocab_sizes.append(len(known) + 1)
    return EventData(
        name=name, entity=entity.astype(np.int64), time=seconds, split=split, labels=labels,
        numeric=scaler.transform(numeric).astype(np.float32), categorical=categorical,
        numeric_columns=[*numeric_columns, "log_gap_seconds"], categorical_columns=list(categorical_columns),
        vocab_sizes=vocab_sizes, raw=table, starts=starts, cut_times=cut_times,  # type: ignore[arg-type]
    )


#: Merchant categories of the synthetic generator; fraud favours the last three.
CATEGORIES = ("grocery", "fuel", "restaurant", "pharmacy", "transport", "clothing", "utilities", "travel",
              "online", "electronics", "jewelry")
RISKY = ("online", "electronics", "jewelry")
COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "PT", "GB", "US", "BR", "NG", "RU")


def synthetic_transactions(n_cards: int = 400, days: int = 120, *, seed: int = 0) -> pd.DataFrame:
    """A **synthetic** card-transactions table with injected fraud, for tests and demos only.

    Columns: ``card``, ``ts`` (ISO date-time), ``amount``, ``category``, ``country``, ``is_fraud``. Each card has a
    home country, its own mix of merchant categories (Dirichlet), its own typical amount (log-normal scale) and
    rate (about 1.5 purchases a day, Poisson in time). 8% of cards travel once for a week: genuine purchases abroad.
    18% of cards are compromised once: from a random time, a burst of 3-12 fraudulent purchases minutes apart,
    mostly abroad, mostly in risky categories, at several times the card's usual amount, while genuine purchases
    go on. Fraud is about 1% of events, and telling it apart needs the card's own history (its usual amount,
    country and pace), which is what sequence models and running aggregates see and a per-event model does not.
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00")
    parts: list[pd.DataFrame] = []
    home_p = np.array([6, 5, 4, 4, 3, 2, 2, 2], float) / 28
    n_common = len(CATEGORIES) - len(RISKY)
    for card in range(n_cards):
        home = COUNTRIES[rng.choice(8, p=home_p)]
        abroad_choices = [c for c in COUNTRIES if c != home]
        mix = rng.dirichlet(np.full(n_common, 0.6))  # genuine purchases avoid the risky categories...
        mix = np.concatenate([mix * 0.9, np.full(len(RISKY), 0.1 / len(RISKY))])  # ...mostly
        scale = rng.lognormal(3.2, 0.7)
        n = rng.poisson(rng.gamma(3.0, 0.5) * days) + 2
        times = np.sort(rng.uniform(0, days * 86400, n))  # (n,) seconds
        country = np.full(n, home, dtype=object)
        if rng.random() < 0.08:  # a week abroad: genuine purchases in another country
            trip_start = rng.uniform(0, days - 7) * 86400
            country[(times >= trip_start) & (times < trip_start + 7 * 86400)] = rng.choice(abroad_choices)
        parts.append(pd.DataFrame({"card": card, "seconds": times, "amount": scale * rng.lognormal(0, 0.5, n),
                                   "category": np.array(CATEGORIES)[rng.choice(len(CATEGORIES), n, p=mix)],
                                   "country": country, "is_fraud": 0}))
        if rng.random() < 0.18:  # compromised: a burst of fraud minutes apart
            k = int(rng.integers(3, 13))
            burst = rng.uniform(0.1, 0.98) * days * 86400 + np.cumsum(rng.exponential(20 * 60, k))
            foreign = rng.random(k) < 0.75
            risky = rng.random(k) < 0.7
            parts.append(pd.DataFrame({
                "card": card, "seconds": burst, "amount": scale * rng.lognormal(1.2, 0.6, k),
                "category": np.where(risky, np.array(RISKY)[rng.integers(3, size=k)],
                                     np.array(CATEGORIES)[rng.integers(8, size=k)]),
                "country": np.where(foreign, np.array(abroad_choices)[rng.integers(len(abroad_choices), size=k)],
                                    home),
                "is_fraud": 1}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values("seconds", kind="stable").reset_index(drop=True)  # a log in time order
    return pd.DataFrame({
        "card": [f"card{c:05d}" for c in frame["card"]],
        "ts": (start + (frame["seconds"].to_numpy() * 1e3).astype("timedelta64[ms]")).astype(str),
        "amount": frame["amount"].round(2),
        "category": frame["category"],
        "country": frame["country"],
        "is_fraud": frame["is_fraud"],
    })


def running_features(data: EventData, numeric_columns: Sequence[str]) -> np.ndarray:
    """Per-event features with running aggregates over the entity's *earlier* events only, ``(N, F)``: the raw
    numeric values, the log gap since the previous event, the number of earlier events, each numeric value's
    earlier mean and the value's ratio to it, the number of earlier events within the last hour and day, and for
    each categorical column the code and whether the entity used that value before."""
    raw = data.raw
    entity, seconds = data.entity, data.time
    first = np.zeros(len(entity), dtype=bool)
    first[data.starts[:-1]] = True
    group = pd.Series(entity)
    count_before = group.groupby(entity).cumcount().to_numpy().astype(np.float64)
    columns = [data.numeric[:, -1].astype(np.float64), count_before]  # scaled log gap, earlier events
    for column in numeric_columns:
        x = raw[column].to_numpy(np.float64)
        x = np.where(np.isnan(x), 0.0, x)
        earlier_sum = pd.Series(x).groupby(entity).cumsum().to_numpy() - x
        earlier_mean = np.where(count_before > 0, earlier_sum / np.maximum(count_before, 1), np.nan)
        columns += [x, earlier_mean, x / np.where(np.abs(earlier_mean) > 1e-9, earlier_mean, np.nan)]
    for window in (3600.0, 86400.0):
        within = np.empty(len(entity))
        for a, b in zip(data.starts[:-1], data.starts[1:], strict=True):
            t = seconds[a:b]
            within[a:b] = np.arange(b - a) - np.searchsorted(t, t - window, side="left")
        columns.append(within)
    for c in range(data.categorical.shape[1]):
        codes = data.categorical[:, c]
        pair = pd.DataFrame({"e": entity, "v": codes})
        seen_before = pair.groupby(["e", "v"]).cumcount().to_numpy() > 0
        columns += [codes.astype(np.float64), seen_before.astype(np.float64)]
    return np.column_stack(columns)
