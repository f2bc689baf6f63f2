"""Writing a piano roll as a Standard MIDI File (format 0, one track), by hand: no dependency.

A key held over consecutive steps is one sustained note; it is re-struck only after a step where it is off.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from rnnlab.data.music import LOWEST_NOTE, N_KEYS
from rnnlab.errors import InputError

TICKS_PER_QUARTER = 480


def roll_to_midi_bytes(
    roll: np.ndarray,
    *,
    steps_per_quarter: int = 1,
    tempo_bpm: float = 100.0,
    velocity: int = 80,
    threshold: float = 0.5,
    program: int = 0,
) -> bytes:
    """Piano roll ``(T, 88)`` (values above ``threshold`` sound) -> the bytes of a format-0 MIDI file.

    Each step lasts ``1 / steps_per_quarter`` quarter notes at ``tempo_bpm`` quarter notes per minute;
    ``program`` is the General MIDI instrument (0: acoustic grand piano).
    """
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise InputError(f"expected a piano roll of shape (T, {N_KEYS}), got {roll.shape}")
    if steps_per_quarter < 1 or TICKS_PER_QUARTER % steps_per_quarter:
        raise InputError(f"steps_per_quarter must divide {TICKS_PER_QUARTER}, got {steps_per_quarter}")
    if not 0 < tempo_bpm <= 1000:
        raise InputError(f"tempo_bpm must be in (0, 1000], got {tempo_bpm}")
    if not 1 <= velocity <= 127 or not 0 <= program <= 127:
        raise InputError(f"velocity must be in 1..127 and program in 0..127, got {velocity} and {program}")
    on = roll > threshold  # (T, 88) bool
    ticks_per_step = TICKS_PER_QUARTER // steps_per_quarter
    padded = np.zeros((len(on) + 2, N_KEYS), dtype=np.int8)
    padded[1:-1] = on
    change = np.diff(padded, axis=0)  # (T+1, 88): +1 note on at step t, -1 note off at step t
    events: list[tuple[int, int, int]] = []  # (tick, 1 for on / 0 for off, key)
    track = bytearray()
    microseconds = int(round(60_000_000 / tempo_bpm))
    track += b"\x00\xff\x51\x03" + microseconds.to_bytes(3, "big")  # tempo
    track += bytes([0x00, 0xC0, program])  # program change, channel 0
    for step, key in zip(*np.nonzero(change), strict=True):
        # note-offs (order 0) before note-ons (order 1) at the same tick, so a re-struck key works
        events.append((int(step) * ticks_per_step, 0 if change[step, key] < 0 else 1, int(key)))
    events.sort()
    last_tick = 0
    for tick, is_on, key in events:
        track += _varlen(tick - last_tick)
        track += bytes([0x90 if is_on else 0x80, LOWEST_NOTE + key, velocity if is_on else 0])
        last_tick = tick
    track += _varlen(len(on) * ticks_per_step - last_tick) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(roll: np.ndarray, path: str | Path, **options: float) -> Path:
    """Write ``roll (T, 88)`` as a MIDI file at ``path``; ``options`` as in :func:`roll_to_midi_bytes`."""
    path = Path(path)
    path.write_bytes(roll_to_midi_bytes(roll, **options))  # type: ignore[arg-type]
    return path


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    if value < 0:
        raise ValueError(f"negative MIDI delta time {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))
