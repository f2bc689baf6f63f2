import json

import numpy as np
import pytest

from rnnlab.data import music
from rnnlab.data.midi import roll_to_midi_bytes, write_midi
from rnnlab.data.music import (
    N_KEYS,
    bach_chorale_paths,
    load_bach_chorales,
    load_polyphonic,
    parse_polyphonic,
    read_polyphonic,
    roll_to_sequence,
    score_to_sequence,
    sequence_to_roll,
)
from rnnlab.errors import InputError

from .conftest import SHARED_DATA


def test_sequence_to_roll_of_a_hand_made_sequence():
    roll = sequence_to_roll([[60, 64, 67], [], [21, 108, 108]])
    assert roll.shape == (3, 88) and roll.dtype == np.float32
    assert np.flatnonzero(roll[0]).tolist() == [39, 43, 46]  # C4, E4, G4 -> keys 60-21, 64-21, 67-21
    assert roll[1].sum() == 0
    assert np.flatnonzero(roll[2]).tolist() == [0, 87]
    assert roll_to_sequence(roll) == [[60, 64, 67], [], [21, 108]]


def test_format_errors_say_what_was_found():
    with pytest.raises(InputError, match=r"x.json: expected a JSON object .*; found a list of 2"):
        parse_polyphonic([[60], [62]], "x.json")
    with pytest.raises(InputError, match=r"missing valid, test \(found keys: train, notes\)"):
        parse_polyphonic({"train": [[[60]]], "notes": 1}, "x.json")
    good = [[[60]]]
    with pytest.raises(InputError, match=r'x.json: "valid" must be a list of sequences; found an object'):
        parse_polyphonic({"train": good, "valid": {}, "test": good}, "x.json")
    with pytest.raises(InputError, match=r'x.json: "test" has no sequences'):
        parse_polyphonic({"train": good, "valid": good, "test": []}, "x.json")


def test_sequence_errors_name_split_sequence_and_step():
    def bad(sequence):
        return {"train": [[[60]], sequence], "valid": [[[60]]], "test": [[[60]]]}

    with pytest.raises(InputError) as info:
        parse_polyphonic(bad([[60], [12, 60]]), "x.json")
    assert str(info.value) == "x.json: train[1] step 1 has note 12; notes must be MIDI numbers 21..108"
    with pytest.raises(InputError, match=r"x.json: train\[1\] is empty; expected at least one time step"):
        parse_polyphonic(bad([]), "x.json")
    with pytest.raises(InputError, match=r"train\[1\] step 0: expected a list of MIDI note numbers, found int 60"):
        parse_polyphonic(bad([60]), "x.json")
    with pytest.raises(InputError, match=r"train\[1\] step 0: expected integer MIDI note numbers, found 'C4'"):
        parse_polyphonic(bad([["C4"]]), "x.json")


def test_read_polyphonic_file(write):
    path = write("tiny.json", json.dumps({"train": [[[60], [62, 65]]], "valid": [[[]]], "test": [[[70.0]]]}))
    data = load_polyphonic(path)
    assert data.name == "tiny" and data.steps_per_quarter is None
    assert [r.shape for r in data.train] == [(2, N_KEYS)] and data.valid[0].sum() == 0 and data.test[0][0, 49] == 1
    with pytest.raises(InputError, match="not valid JSON"):
        read_polyphonic(write("broken.json", "{"))


@pytest.mark.skipif(not (SHARED_DATA / "polyphonic" / "jsb_chorales.json").exists(), reason="shared data absent")
def test_reads_the_standard_jsb_chorales_file():
    data = read_polyphonic(SHARED_DATA / "polyphonic" / "jsb_chorales.json")
    assert (len(data.train), len(data.valid), len(data.test)) == (229, 76, 77)
    assert data.train[0].shape[1] == N_KEYS and set(np.unique(data.train[0]).tolist()) <= {0.0, 1.0}


def _chorale(name):
    return next(p for p in bach_chorale_paths() if p.name == name)


def test_score_to_sequence_samples_a_chorale_on_the_beat():
    path = _chorale("bwv269.mxl")  # 3/4, four voices, G major
    quarters = score_to_sequence(path, steps_per_quarter=1)
    assert len(quarters) == 63
    assert quarters[:4] == [[43, 59, 62, 67], [55, 59, 62, 67], [52, 60, 64, 67], [54, 57, 62, 74]]
    eighths = score_to_sequence(path, steps_per_quarter=2)
    assert len(eighths) == 126 and eighths[::2] == quarters
    assert eighths[5] == [52, 59, 64, 67]  # the alto's passing B on the off-beat


def test_bach_chorales_are_converted_once_and_cached(private_cache, monkeypatch):
    calls = []
    data = load_bach_chorales(
        max_pieces=2, valid_fraction=0.5, test_fraction=0.0, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 2), (2, 2)]
    assert (len(data.train), len(data.valid), len(data.test)) == (1, 1, 0) and data.steps_per_quarter == 1
    assert all(r.shape[1] == N_KEYS and r.sum() > 0 for r in data.train + data.valid)
    cache_file = private_cache / "bach_chorales_spq1_n2.json"
    state = json.loads(cache_file.read_text(encoding="utf-8"))
    assert state["names"] == ["bwv10.7", "bwv101.7"] and len(state["sequences"]) == 2
    assert [p.name for p in private_cache.iterdir()] == [cache_file.name]  # no temporary file left

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(music, "score_to_sequence", no_parsing)
    again = load_bach_chorales(max_pieces=2, valid_fraction=0.5, test_fraction=0.0)
    assert np.array_equal(again.train[0], data.train[0]) and np.array_equal(again.valid[0], data.valid[0])


def test_a_corrupt_cache_is_rebuilt(private_cache):
    private_cache.mkdir(parents=True, exist_ok=True)
    (private_cache / "bach_chorales_spq1_n1.json").write_text('{"format": "rnnlab.bach_chor', encoding="utf-8")
    data = load_bach_chorales(max_pieces=1, valid_fraction=0.0, test_fraction=0.0)
    assert len(data.train) == 1
    assert json.loads((private_cache / "bach_chorales_spq1_n1.json").read_text(encoding="utf-8"))["names"]


def test_bach_corpus_is_local():
    paths = bach_chorale_paths()
    assert len(paths) == 349 and all(p.is_file() for p in paths)


def test_bach_errors():
    with pytest.raises(InputError, match="steps_per_quarter must be 1, 2 or 4"):
        load_bach_chorales(steps_per_quarter=3)


def test_midi_writer_makes_a_file_music21_reads_back(tmp_path):
    from music21 import converter, midi

    roll = sequence_to_roll([[60, 64], [60, 64], [], [67], [67, 72]])
    path = write_midi(roll, tmp_path / "out.mid", steps_per_quarter=2, tempo_bpm=120)
    raw = path.read_bytes()
    assert raw[:4] == b"MThd" and raw[14:18] == b"MTrk"
    midi_file = midi.MidiFile()
    midi_file.open(str(path))
    midi_file.read()
    midi_file.close()
    assert midi_file.ticksPerQuarterNote == 480 and len(midi_file.tracks) == 1
    tick, sounding, notes = 0, {}, []
    for event in midi_file.tracks[0].events:
        if event.isDeltaTime():
            tick += event.time
        elif event.isNoteOn():
            sounding[event.pitch] = tick
        elif event.isNoteOff():
            notes.append((sounding.pop(event.pitch), tick, event.pitch))
    # a key held over steps is one note; 240 ticks per eighth-note step
    assert sorted(notes) == [(0, 480, 60), (0, 480, 64), (720, 1200, 67), (960, 1200, 72)]
    assert len(converter.parse(str(path)).flatten().pitches) >= 4  # the score parser reads it too


def test_midi_writer_rejects_a_wrong_shape():
    with pytest.raises(InputError, match=r"expected a piano roll of shape \(T, 88\), got \(4, 12\)"):
        roll_to_midi_bytes(np.zeros((4, 12)))
