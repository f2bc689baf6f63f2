"""Running `rnnlab` in-process from tests, and the one-line error contract of the CLI."""

import pytest

from rnnlab.cli import main


def run_cli(capsys, *args):
    """Run `rnnlab ARGS` in-process: (exit code, stdout, stderr). Arguments are converted with ``str``."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_one_line_error(code, err, pattern):
    """Exit code 2 and one ``rnnlab: error: ...`` line on stderr that contains ``pattern``; no traceback."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnlab: error: ") and "Traceback" not in err
    assert pattern in lines[0], lines[0]
