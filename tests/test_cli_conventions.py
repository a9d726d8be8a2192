"""The CLI's shared conventions, checked over every registered command (new ones included)."""

import typer.main

from lowdim.cli import _common, app


def _leaves(cmd, path="lowdim"):
    subs = getattr(cmd, "commands", None)
    if subs is None:
        yield path, cmd
        return
    for name, sub in subs.items():
        yield from _leaves(sub, f"{path} {name}")


def test_every_option_has_help_and_quiet_keeps_the_result():
    leaves = list(_leaves(typer.main.get_command(app)))
    assert len(leaves) >= 6
    for path, cmd in leaves:
        for p in cmd.params:
            if p.param_type_name == "option" and "--help" not in p.opts:
                assert (p.help or "").strip(), f"{path} {p.opts[0]} has no help text"
            if "--quiet" in getattr(p, "opts", []):
                assert "still print" in p.help, f"{path} --quiet must say the result is still printed"
            if "--plot" in getattr(p, "opts", []):
                assert ".png" in p.help
            if "--output" in getattr(p, "opts", []):
                assert p.opts[0] == "--out", f"{path}: the output option is -o/--out (--output only as alias)"


def test_library_names_become_the_flags_typed():
    _common.begin_command("lowdim x", {"threshold": "--threshold", "d_max": "--d-max", "method": "--method"})
    _common.flag_aliases(n_neighbors="--k", threshold_rule="--rule")
    msg = _common.translate("d_max=5 is out of range; unknown threshold_rule 'x'; n_neighbors must be ≥ 2; "
                            "threshold=1.5 is out of range; the method is fine")
    assert msg == ("--d-max 5 is out of range; unknown --rule 'x'; --k must be ≥ 2; "
                   "--threshold 1.5 is out of range; the method is fine")


def test_piped_progress_is_throttled_lines(monkeypatch, capsys):
    p = _common._LineProgress()
    t = p.add_task("step", total=4)
    p.advance(t)  # before 2 s: silent
    p.t0 -= 3
    p.advance(t)
    p.advance(t)  # within 10 s of the last line: silent
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("step 2/4 (")
