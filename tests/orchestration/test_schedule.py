"""`cytodask schedule`: cron / systemd / scrontab entries that run unattended, and their installers.

No real crontab, scrontab or systemd manager is touched: installers get a fake runner
or a temporary unit directory.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from cytodask.cli import main
from cytodask.orchestration.schedule_install import install_cron, install_slurm, install_systemd
from cytodask.orchestration.schedule_job import parse_time, rebuild_job
from cytodask.orchestration.schedule_render import cron_line, slurm_entry, systemd_units

TINY_SPEC = """
[atlas]
name = "tiny"
[config]
output_dir = "out"
[source]
path = "${TINY_ATLAS:-atlas.h5ad}"
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TINY_ATLAS", raising=False)
    monkeypatch.chdir(tmp_path)  # the job's working directory
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPEC)
    return path


def check_cron_fields(line: str) -> str:
    """Validate ``MM HH * * * command``; return the command."""
    fields = line.split(None, 5)
    assert len(fields) == 6, line
    minute, hour, dom, month, dow, command = fields
    assert minute.isdigit() and 0 <= int(minute) <= 59, minute
    assert hour.isdigit() and 0 <= int(hour) <= 23, hour
    assert (dom, month, dow) == ("*", "*", "*")
    assert command.strip()
    try:
        from croniter import croniter
    except ImportError:
        pass
    else:
        expr = " ".join(fields[:5])
        assert croniter.is_valid(expr)
        nxt = croniter(expr, datetime(2026, 1, 1, 12, 0)).get_next(datetime)
        assert (nxt.hour, nxt.minute) == (int(hour), int(minute))
    return command


# --------------------------------------------------------------------------- time and spec


@pytest.mark.parametrize("at, expected", [("00:00", (0, 0)), ("2:30", (2, 30)), ("23:59", (23, 59)),
                                          (" 07:05 ", (7, 5))])
def test_parse_time(at: str, expected: tuple[int, int]):
    assert parse_time(at) == expected


@pytest.mark.parametrize("at", ["24:00", "12:60", "1230", "12:5", "noon", "-1:00", "12:30:00", ""])
def test_parse_time_rejects_with_the_fix(at: str):
    with pytest.raises(ValueError, match=r"give HH:MM between 00:00 and 23:59.*e\.g\. --at 02:30"):
        parse_time(at)


def test_job_is_absolute(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    job = rebuild_job("tiny.toml", at="02:30")
    assert job.spec == spec and job.workdir == tmp_path
    assert job.output == tmp_path / "out"  # the spec's output_dir, resolved against the spec
    assert job.log == tmp_path / "out" / "logs" / "rebuild.log"
    assert (job.hour, job.minute, job.unit) == (2, 30, "cytodask-rebuild-tiny")
    job = rebuild_job(spec, at="02:30", output="rel/out", log="l/x.log")
    assert job.output == tmp_path / "rel" / "out" and job.log == tmp_path / "l" / "x.log"
    assert job.argv[-5:] == ["rebuild", str(spec), "--output", str(tmp_path / "rel" / "out"), "--wait"]
    assert all(Path(p).is_absolute() for p in (job.argv[0], job.spec, job.output, job.log, job.workdir))


def test_missing_spec_names_the_file(tmp_path: Path):
    with pytest.raises(ValueError, match=f"spec {tmp_path / 'nope.toml'} does not exist"):
        rebuild_job(tmp_path / "nope.toml", at="01:00")


def test_env_the_spec_reads_is_pinned(spec: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert rebuild_job(spec, at="01:00").env == {}
    monkeypatch.setenv("TINY_ATLAS", "/data/my atlas.h5ad")
    job = rebuild_job(spec, at="01:00")
    assert job.env == {"TINY_ATLAS": "/data/my atlas.h5ad"}
    assert "TINY_ATLAS='/data/my atlas.h5ad' " in cron_line(job)
    assert 'Environment="TINY_ATLAS=/data/my atlas.h5ad"\n' in systemd_units(job)[f"{job.unit}.service"]
    monkeypatch.setenv("TINY_ATLAS", '/d/$x "q" 5%')  # Environment= expands %specifiers, not $
    job = rebuild_job(spec, at="01:00")
    assert 'Environment="TINY_ATLAS=/d/$x \\"q\\" 5%%"\n' in systemd_units(job)[f"{job.unit}.service"]


# --------------------------------------------------------------------------- cron


def test_cron_line_is_valid_and_complete(spec: Path, tmp_path: Path):
    job = rebuild_job(spec, at="02:30", output=tmp_path / "o")
    line = cron_line(job)
    assert "\n" not in line and line.startswith("30 2 * * * ")
    command = check_cron_fields(line)
    log = tmp_path / "o" / "logs" / "rebuild.log"
    assert command.startswith(f"mkdir -p {log.parent} && cd {tmp_path} && ")
    assert f" rebuild {spec} --output {tmp_path / 'o'} --wait >> {log} 2>&1 " in command
    assert line.endswith(f"# cytodask:{spec}:{tmp_path / 'o'}")


def test_cron_executable_exists_and_runs_rebuild_help(spec: Path, tmp_path: Path):
    command = check_cron_fields(cron_line(rebuild_job(spec, at="03:00", output=tmp_path / "o")))
    words = shlex.split(command, comments=True)
    exe = words[words.index("rebuild") - 1]
    assert Path(exe).is_absolute() and os.access(exe, os.X_OK), exe
    prefix = words[words.index("&&", words.index("cd")) + 1:words.index("rebuild")]
    res = subprocess.run([*prefix, "rebuild", "--help"], check=False, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # cron's bare environment
    assert res.returncode == 0, res.stderr
    assert "--wait" in res.stdout


def test_cron_command_runs_under_sh_with_awkward_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Spaces, quotes, ``$`` and ``%`` survive cron (``\\%``) and ``sh``; the log directory is created."""
    base = tmp_path / "we ird 'q' $HOME %p"
    base.mkdir()
    spec = base / "my spec.toml"
    spec.write_text(TINY_SPEC)
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "print(json.dumps([sys.argv[1:], os.getcwd(), os.environ.get('TINY_ATLAS')]))\n")
    monkeypatch.setenv("TINY_ATLAS", "it's $here")
    job = rebuild_job(spec, at="04:15", command=[sys.executable, str(probe)], workdir=base)
    command = check_cron_fields(cron_line(job))
    assert "%" not in command.replace(r"\%", "")
    res = subprocess.run(["sh", "-c", command.replace(r"\%", "%")], check=False, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    argv, cwd, env = json.loads(job.log.read_text())
    assert argv == job.argv[2:] == ["rebuild", str(spec), "--output", str(base / "out"), "--wait"]
    assert cwd == str(base) and env == "it's $here"


# --------------------------------------------------------------------------- systemd


def _ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return cp


def test_systemd_units_structure(spec: Path, tmp_path: Path):
    job = rebuild_job(spec, at="02:30", output=tmp_path / "o")
    units = systemd_units(job)
    assert list(units) == ["cytodask-rebuild-tiny.service", "cytodask-rebuild-tiny.timer"]
    service, timer = (_ini(t) for t in units.values())
    assert service.sections() == ["Unit", "Service"]
    s = service["Service"]
    assert s["Type"] == "oneshot"
    assert s["WorkingDirectory"] == str(tmp_path)
    exe, *rest = shlex.split(s["ExecStart"])
    assert Path(exe).is_absolute() and os.access(exe, os.X_OK), exe
    assert rest[-5:] == ["rebuild", str(spec), "--output", str(tmp_path / "o"), "--wait"]
    log = tmp_path / "o" / "logs" / "rebuild.log"
    assert s["StandardOutput"] == s["StandardError"] == f"append:{log}"
    assert timer.sections() == ["Unit", "Timer", "Install"]
    t = timer["Timer"]
    assert (t["OnCalendar"], t["Persistent"], t["Unit"]) == ("*-*-* 02:30:00", "true", "cytodask-rebuild-tiny.service")
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_install_systemd_writes_units_and_verifies(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    home = tmp_path / "home"
    job = rebuild_job(spec, at="06:45", output=tmp_path / "o")
    msg = install_systemd(job, home=home)
    unit_dir = home / ".config" / "systemd" / "user"
    names = ["cytodask-rebuild-tiny.service", "cytodask-rebuild-tiny.timer"]
    assert sorted(p.name for p in unit_dir.iterdir()) == names
    assert [(unit_dir / n).read_text() for n in names] == list(systemd_units(job).values())
    assert "systemctl --user daemon-reload && systemctl --user enable --now cytodask-rebuild-tiny.timer" in msg
    assert job.log.parent.is_dir()  # append: does not create directories
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # structure is checked above and in test_systemd_units_structure
    units = [str(unit_dir / "cytodask-rebuild-tiny.service"), str(unit_dir / "cytodask-rebuild-tiny.timer")]
    res = subprocess.run([analyze, "verify", *units], check=False, capture_output=True, text=True, timeout=60)
    if "Failed to initialize manager" in res.stderr:
        return  # no usable systemd in this sandbox
    assert res.returncode == 0 and "tiny" not in res.stderr, res.stderr
    cal = subprocess.run([analyze, "calendar", "*-*-* 06:45:00"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert cal.returncode == 0 and "06:45:00" in cal.stdout


def test_systemd_quoting_of_awkward_paths(tmp_path: Path):
    base = tmp_path / 'a b "c" $d %e'
    base.mkdir()
    (base / "s.toml").write_text(TINY_SPEC)
    job = rebuild_job(base / "s.toml", at="01:00", workdir=base)
    service = systemd_units(job)[f"{job.unit}.service"]
    assert r'"' + str(base).replace('"', r"\"").replace("%", "%%").replace("$", "$$") + '/s.toml"' in service
    assert f"WorkingDirectory={str(base).replace('%', '%%')}\n" in service
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        install_systemd(job, unit_dir=tmp_path / "units")
        res = subprocess.run([analyze, "verify", str(tmp_path / "units" / f"{job.unit}.service")],
                             check=False, capture_output=True, text=True, timeout=60)
        if "Failed to initialize manager" not in res.stderr:
            assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- slurm


def test_slurm_entry(spec: Path, tmp_path: Path):
    job = rebuild_job(spec, at="23:05", output=tmp_path / "o")
    lines = slurm_entry(job).splitlines()
    assert lines[:-1] == ["#SCRON --job-name=cytodask-rebuild-tiny", "#SCRON --time=12:00:00",
                          f"#SCRON --output={job.log}", "#SCRON --open-mode=append"]
    command = check_cron_fields(lines[-1])
    assert lines[-1].startswith("5 23 * * * ") and command.startswith(f"mkdir -p {job.log.parent} && cd ")
    assert ">>" not in command and command.endswith(job.marker)
    full = slurm_entry(job, walltime="1-00:00:00", partition="gpu", cpus=16, mem="128G", gpus=2)
    for opt in ("--time=1-00:00:00", "--partition=gpu", "--cpus-per-task=16", "--mem=128G", "--gres=gpu:2"):
        assert f"#SCRON {opt}\n" in full


@pytest.mark.parametrize("kw, match", [({"walltime": "12h"}, "--walltime"), ({"mem": "lots"}, "--mem"),
                                       ({"cpus": 0}, "--cpus"), ({"partition": "a b"}, "--partition")])
def test_slurm_options_are_checked(spec: Path, kw: dict, match: str):
    with pytest.raises(ValueError, match=match):
        slurm_entry(rebuild_job(spec, at="01:00"), **kw)


# --------------------------------------------------------------------------- installers


class FakeTab:
    """Stands in for ``crontab`` / ``scrontab``: ``-l`` prints the table, ``-`` replaces it."""

    def __init__(self, text: str | None) -> None:
        self.text, self.calls = text, []

    def __call__(self, argv, *, input=None, **kw):
        assert kw.get("timeout")  # an old scrontab that opens an editor must not hang the command
        self.calls.append(list(argv))
        if argv[1] == "-l":
            if self.text is None:  # crontab says so on stderr, scrontab on stdout; both exit 1
                out, err = ("no crontab for tester\n", "") if argv[0] == "scrontab" else ("", "no crontab for tester\n")
                return SimpleNamespace(returncode=1, stdout=out, stderr=err)
            return SimpleNamespace(returncode=0, stdout=self.text, stderr="")
        assert argv[1] == "-" and input is not None
        self.text = input
        return SimpleNamespace(returncode=0, stdout="", stderr="")


def test_install_cron_keeps_other_lines_and_replaces_its_own(spec: Path, tmp_path: Path):
    other = rebuild_job(spec, at="01:00", output=tmp_path / "other")
    unrelated = "MAILTO=me@example.org\n# my backups\n0 4 * * 0 /usr/local/bin/backup --all\n"
    tab = FakeTab(unrelated + cron_line(other) + "\n")
    job = rebuild_job(spec, at="02:30", output=tmp_path / "o")
    assert "added the entry" in install_cron(job, runner=tab)
    assert tab.text == unrelated + cron_line(other) + "\n" + cron_line(job) + "\n"
    moved = rebuild_job(spec, at="05:10", output=tmp_path / "o")
    assert "replaced the earlier entry" in install_cron(moved, runner=tab)
    lines = tab.text.splitlines()
    assert lines == [*unrelated.splitlines(), cron_line(other), cron_line(moved)]
    assert sum(ln.endswith(job.marker) for ln in lines) == 1
    assert all(c[0] == "crontab" for c in tab.calls)
    for ln in lines[-2:]:
        check_cron_fields(ln)


def test_install_cron_into_empty_crontab(spec: Path):
    tab = FakeTab(None)
    job = rebuild_job(spec, at="00:00")
    install_cron(job, runner=tab)
    assert tab.text == cron_line(job) + "\n"
    assert tab.calls == [["crontab", "-l"], ["crontab", "-"]]


def test_install_cron_percent_in_path_is_still_replaced(tmp_path: Path):
    (tmp_path / "100%").mkdir()
    (tmp_path / "100%" / "s.toml").write_text(TINY_SPEC)
    tab = FakeTab("")
    for at in ("01:00", "02:00"):
        install_cron(rebuild_job(tmp_path / "100%" / "s.toml", at=at), runner=tab)
    assert tab.text.count("\n") == 1 and tab.text.startswith("0 2 ") and r"100\%" in tab.text


def test_install_slurm_replaces_its_block(spec: Path, tmp_path: Path):
    mine = "#SCRON --time=00:10:00\n#SCRON --job-name=poll\n7 * * * * /home/me/poll.sh\n"
    tab = FakeTab(mine)
    job = rebuild_job(spec, at="02:30", output=tmp_path / "o")
    install_slurm(job, runner=tab, partition="cpu")
    install_slurm(job, runner=tab, walltime="04:00:00")
    assert tab.text == mine + slurm_entry(job, walltime="04:00:00") + "\n"
    assert tab.text.count("#SCRON --job-name=cytodask-rebuild-tiny") == 1 and "--partition" not in tab.text
    assert all(c[0] == "scrontab" for c in tab.calls)


def test_install_slurm_into_empty_scrontab_and_over_a_disabled_entry(spec: Path):
    tab = FakeTab(None)
    job = rebuild_job(spec, at="02:30")
    install_slurm(job, runner=tab)
    assert tab.text == slurm_entry(job) + "\n"
    tab.text = "".join(f"#DISABLED: {ln}\n" for ln in tab.text.splitlines())  # as `scrontab -l` shows it
    assert "replaced the earlier entry" in install_slurm(job, runner=tab, gpus=1)
    assert tab.text == slurm_entry(job, gpus=1) + "\n"


def test_slurm_log_path_must_suit_scron_output(spec: Path, tmp_path: Path):
    for log in ("with space/r.log", "100%/r.log"):
        with pytest.raises(ValueError, match="give --log without them"):
            slurm_entry(rebuild_job(spec, at="01:00", log=tmp_path / log))


def test_tool_that_hangs_is_an_error(spec: Path):
    def hang(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    with pytest.raises(RuntimeError, match=r"`scrontab -l` did not finish in 60 s .*`scrontab -e`"):
        install_slurm(rebuild_job(spec, at="01:00"), runner=hang)


def test_missing_tool_is_one_clear_line(spec: Path):
    def absent(argv, **kw):
        raise FileNotFoundError(argv[0])

    job = rebuild_job(spec, at="01:00")
    with pytest.raises(RuntimeError, match=r"^`crontab` is not installed or not on PATH; add the printed line by hand"):
        install_cron(job, runner=absent)
    with pytest.raises(RuntimeError, match=r"^`scrontab` is not installed or not on PATH; .*`scrontab -e`"):
        install_slurm(job, runner=absent)


def test_refused_table_is_an_error(spec: Path):
    def refuse(argv, *, input=None, **kw):
        if argv[1] == "-l":
            return SimpleNamespace(returncode=0, stdout="", stderr="")
        if argv[0] == "scrontab":
            return SimpleNamespace(returncode=1, stdout="There are errors in your crontab.\n", stderr="")
        return SimpleNamespace(returncode=1, stdout="", stderr="crontab: you are not allowed to use this program\n")

    with pytest.raises(RuntimeError, match="refused the new table: crontab: you are not allowed"):
        install_cron(rebuild_job(spec, at="01:00"), runner=refuse)
    with pytest.raises(RuntimeError, match="refused the new table: There are errors in your crontab"):
        install_slurm(rebuild_job(spec, at="01:00"), runner=refuse)

    def denied(argv, **kw):
        return SimpleNamespace(returncode=1, stdout="", stderr="You (tester) are not allowed to use this program\n")

    with pytest.raises(RuntimeError, match=r"`crontab -l` failed: You \(tester\) are not allowed"):
        install_cron(rebuild_job(spec, at="01:00"), runner=denied)


# --------------------------------------------------------------------------- command line


def test_cli_prints_each_format(spec: Path, tmp_path: Path, capsys):
    out = tmp_path / "o"
    assert main(["schedule", str(spec), "--at", "02:30", "--output", str(out)]) == 0
    printed = capsys.readouterr()
    check_cron_fields(printed.out.strip())
    assert not out.exists()  # printing a cron line creates nothing (the line runs mkdir -p itself)
    assert main(["schedule", str(spec), "--at", "02:30", "--output", str(out), "--format", "systemd"]) == 0
    printed = capsys.readouterr()
    assert "# ---- cytodask-rebuild-tiny.service ----\n" in printed.out
    assert "# ---- cytodask-rebuild-tiny.timer ----\n" in printed.out and "OnCalendar=*-*-* 02:30:00" in printed.out
    # issue 14.14: printing creates nothing (it says to create the log directory before installing by hand)
    assert not out.exists() and f"run `mkdir -p {out / 'logs'}` before installing" in printed.err
    assert main(["schedule", str(spec), "--at", "02:30", "--output", str(out), "--format", "slurm",
                 "--gpus", "1", "--walltime", "02:00:00"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "#SCRON --gres=gpu:1" in printed and "#SCRON --time=02:00:00" in printed
    check_cron_fields(printed[-1])
    assert not out.exists()


def test_cli_install_systemd(spec: Path, tmp_path: Path, capsys):
    units = tmp_path / "units"
    assert main(["schedule", str(spec), "--at", "02:30", "--format", "systemd", "--install",
                 "--unit-dir", str(units)]) == 0
    assert (units / "cytodask-rebuild-tiny.timer").is_file() and (units / "cytodask-rebuild-tiny.service").is_file()
    assert "systemctl --user enable --now cytodask-rebuild-tiny.timer" in capsys.readouterr().err


def test_cli_install_without_crontab(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("crontab") is None  # so the real subprocess runner cannot reach a real crontab
    assert main(["schedule", str(spec), "--at", "02:30", "--install"]) == 1
    printed = capsys.readouterr()
    check_cron_fields(printed.out.strip())  # the line is printed first, ready to install by hand
    assert printed.err.strip().splitlines()[-1] == (
        "cytodask: error: `crontab` is not installed or not on PATH; add the printed line by hand with "
        "`crontab -e` (or install cron, e.g. `apt-get install cron`)")


@pytest.mark.parametrize("argv, message", [
    (["--at", "25:00"], "cytodask: error: --at '25:00' is not a time of day; give HH:MM between 00:00 and 23:59"),
    (["--at", "7pm"], "cytodask: error: --at '7pm' is not a time of day"),
    (["--at", "01:00", "--gpus", "1"], "cytodask: error: --gpus only applies to --format slurm"),
    (["--at", "01:00", "--unit-dir", "x"], "cytodask: error: --unit-dir only applies to --format systemd"),
    (["--at", "01:00", "--format", "slurm", "--mem", "big"], "cytodask: error: --mem 'big'"),
])
def test_cli_errors(spec: Path, argv: list[str], message: str, capsys):
    assert main(["schedule", str(spec), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_missing_spec(tmp_path: Path, capsys):
    assert main(["schedule", str(tmp_path / "missing.toml"), "--at", "02:30"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cytodask: error: spec {tmp_path / 'missing.toml'} does not exist")
