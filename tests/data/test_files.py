import math

import numpy as np
import pytest

from rnnlab.data.files import read_json, read_table, read_text
from rnnlab.errors import InputError


def test_csv_reads_strings_and_converts_numeric_columns(write):
    path = write("prices.csv", "date,price,note\n2020-01-01,1.5,a\n2020-01-02,,b\n2020-01-03,NA,c\n")
    frame = read_table(path, columns=["date", "note"], numeric=["price"])
    assert frame["note"].tolist() == ["a", "b", "c"]
    assert frame["price"].dtype == np.float64
    assert frame["price"].iloc[0] == 1.5 and math.isnan(frame["price"].iloc[1]) and math.isnan(frame["price"].iloc[2])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("t.tsv", "text\tlabel\nhello, world\tpos\nbad\tneg\n"),
        ("t.jsonl", '{"text": "hello, world", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n'),
        ("t.txt", "text\tlabel\nhello, world\tpos\nbad\tneg\n"),  # sniffed: tab-delimited
        ("t.data", '{"text": "hello, world", "label": "pos"}\n{"text": "bad", "label": "neg"}\n'),  # sniffed: JSONL
        ("t.csv", '\ufefftext,label\r\n"hello, world",pos\r\nbad,neg\r\n'),  # BOM and CRLF
    ],
)
def test_each_table_format_gives_the_same_frame(write, name, content):
    frame = read_table(write(name, content), columns=["text", "label"])
    assert frame["text"].tolist() == ["hello, world", "bad"]
    assert frame["label"].tolist() == ["pos", "neg"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found: .*nothere.csv"):
        read_table(tmp_path / "nothere.csv")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="expected a file, got a directory"):
        read_text(tmp_path)


def test_empty_file(write):
    with pytest.raises(InputError, match=r"empty.csv is empty \(0 bytes\)"):
        read_table(write("empty.csv", ""))


def test_whitespace_only_file(write):
    with pytest.raises(InputError, match="blank.txt contains only whitespace"):
        read_text(write("blank.txt", " \n\n "))


def test_header_without_rows(write):
    with pytest.raises(InputError, match="h.csv has a header but no data rows"):
        read_table(write("h.csv", "text,label\n"))


def test_bad_encoding_names_the_encoding_tried(write):
    path = write("latin.csv", "text,label\ncaf\xe9,pos\n".encode("latin-1"))
    message = (r"cannot read latin.csv as UTF-8: byte 0xe9 at offset 14 is invalid; "
               r"convert it to UTF-8 first \(for example: iconv -f LATIN1 -t UTF-8 latin.csv > converted.csv\)$")
    with pytest.raises(InputError, match=message):
        read_table(path)
    assert read_table(path, encoding="latin-1")["text"].tolist() == ["café"]


def test_unknown_encoding(write):
    with pytest.raises(InputError, match="unknown text encoding 'klingon'"):
        read_text(write("a.txt", "x"), encoding="klingon")


def test_missing_column_lists_the_existing_ones(write):
    path = write("reviews.csv", "text,label\ngood,pos\n")
    with pytest.raises(InputError) as info:
        read_table(path, columns=["txt"])
    assert str(info.value) == "column 'txt' not found in reviews.csv; columns are: text, label"


def test_non_numeric_value_names_column_value_and_row(write):
    path = write("p.csv", "price\n1\n2.5\nabc\n4\n")
    with pytest.raises(InputError) as info:
        read_table(path, numeric=["price"])
    assert str(info.value) == "column 'price' of p.csv must be numeric; found 'abc' at data row 3"


def test_non_numeric_in_jsonl(write):
    path = write("p.jsonl", '{"v": 1}\n{"v": "x1"}\n')
    with pytest.raises(InputError, match="column 'v' of p.jsonl must be numeric; found 'x1' at data row 2"):
        read_table(path, numeric=["v"])


def test_malformed_csv_row(write):
    with pytest.raises(InputError, match="cannot parse bad.csv as CSV: .*Expected 2 fields in line 3, saw 3"):
        read_table(write("bad.csv", "a,b\n1,2\n1,2,3\n"))


def test_jsonl_errors(write):
    with pytest.raises(InputError, match="line 2 of x.jsonl is not valid JSON"):
        read_table(write("x.jsonl", '{"a": 1}\n{"a": \n'))
    with pytest.raises(InputError, match=r"line 1 of y.jsonl must be a JSON object .*got list"):
        read_table(write("y.jsonl", "[1, 2]\n"))


def test_unknown_format_name(write):
    with pytest.raises(InputError, match="table format must be one of csv, tsv, jsonl; got 'xls'"):
        read_table(write("a.csv", "a\n1\n"), format="xls")


def test_read_json_reports_position(write):
    assert read_json(write("ok.json", '{"a": [1, 2]}')) == {"a": [1, 2]}
    with pytest.raises(InputError, match="bad.json is not valid JSON: .* at line 2, column 1"):
        read_json(write("bad.json", '{"a": 1,\n}'))


def test_read_text_normalises_newlines(write):
    assert read_text(write("a.txt", b"one\r\ntwo\rthree\n")) == "one\ntwo\nthree\n"
