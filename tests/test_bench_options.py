"""tools/bench_options.py: the benchmark commands' option strings (JSON or name=value pairs)."""

import subprocess

import pytest

from tools.bench_options import parse_options


def test_both_forms_give_the_same_dict():
    want = {"iters": 6, "prefix_growth": 0.05, "responsibility": "rex", "refine_static": False, "search_limit": None}
    assert parse_options('{"iters": 6, "prefix_growth": 0.05, "responsibility": "rex", "refine_static": false, '
                         '"search_limit": null}', "x") == want
    assert parse_options("iters=6, prefix_growth=0.05,responsibility=rex,refine_static=false,search_limit=null", "x") == want
    assert parse_options("", "x") == {} == parse_options("{}", "x")
    assert parse_options("mask_mode=blur:3", "x") == {"mask_mode": "blur:3"}  # not JSON: kept as text


@pytest.mark.parametrize("text", ["iters", "iters=6,,", "=6", "iters=6,iters=7", '{"iters": 6', "[1, 2]"])
def test_bad_options_name_the_flag(text):
    with pytest.raises(ValueError, match="^--rexjax_options: "):
        parse_options(text, "rexjax_options")


def test_pairs_survive_make_and_the_shell():
    # The bug this form fixes: make hands BENCH_ARGS to the shell, which strips a JSON dict's
    # quotes ({"iters":6} arrives as {iters:6}). Echo the recipe's expansion through make.
    makefile = 'show:\n\t@python3 -c "import sys; print(sys.argv[1])" $(BENCH_ARGS)\n'
    out = subprocess.run(["make", "-s", "-f", "-", "show", "BENCH_ARGS=--rexjax_options=iters=6,prefix_growth=0.05"],
                         input=makefile, capture_output=True, text=True, check=True).stdout.strip()
    assert parse_options(out.partition("=")[2], "rexjax_options") == {"iters": 6, "prefix_growth": 0.05}
    out = subprocess.run(["make", "-s", "-f", "-", "show", 'BENCH_ARGS=--rexjax_options={"iters":6}'],
                         input=makefile, capture_output=True, text=True, check=True).stdout.strip()
    with pytest.raises(ValueError):  # what the JSON form becomes: refused with one line, not misread
        parse_options(out.partition("=")[2], "rexjax_options")
