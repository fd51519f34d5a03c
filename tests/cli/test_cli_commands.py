"""The ``dialer`` command line, run in-process (``main(argv)``) on a temporary SQLite database, plus
one real subprocess for the exit-code contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.csvio import iter_contacts, open_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "sample_campaign.csv"
REGISTRY = ROOT / "tests" / "domain" / "data" / "DEF-9xx-sample.csv"


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    args = ["--db", f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"]
    assert main([*args, "db", "upgrade"]) == 0
    return args


def test_sample_campaign_covers_every_predial_case() -> None:
    opened = open_text(SAMPLE)
    try:
        rows = list(iter_contacts(opened.text, str(SAMPLE)))
    finally:
        opened.close()
    assert len(rows) == 30 and all(hasattr(r, "external_id") for r in rows)


def test_plan_over_csv_needs_no_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(
        ["--db", f"sqlite+aiosqlite:///{tmp_path / 'never.sqlite'}", "plan", str(SAMPLE), "--now", "2026-11-18T09:00Z"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "21 to dial, 9 settled without dialling" in out  # 1029 «доб. 12» is dialled, extension kept
    assert "1029\t+79057708945 доб. 12\tfirst dial at" in out
    assert "1006\t+74232401234\tfirst dial at 2026-11-18 19:00 Asia/Vladivostok local" in out
    assert "1010\t+74152412233\tfirst dial at 2026-11-19 09:00 Asia/Kamchatka local" in out  # 21:00 there
    assert "rule own_number" in out and "rule do_not_call/with_number" in out
    assert not (tmp_path / "never.sqlite").exists()


def test_import_status_export_round_trip(db: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([*db, "import", str(SAMPLE), "--campaign", "autumn"]) == 0
    out = capsys.readouterr().out
    # every physical line accounted for: 32 = header + 31 lines of 30 records (one comment has a line break)
    assert "32 lines read = 1 header + 0 blank + 31 in 30 records, 1 with line breaks inside a cell" in out
    assert "30 records = 21 new to dial + 9 new settled without dialling + 0 updated + 0 unchanged + 0 bad" in out
    assert main([*db, "import", str(SAMPLE), "--campaign", "autumn"]) == 0
    assert "30 records = 0 new to dial + 0 new settled without dialling + 0 updated + 30 unchanged" in (
        capsys.readouterr().out
    )
    assert main([*db, "status", "--campaign", "autumn"]) == 0
    out = capsys.readouterr().out
    assert "campaign autumn: 30 contacts" in out and "pending 21, settled 9" in out
    target = tmp_path / "out.csv"
    assert main([*db, "export", "--campaign", "autumn", "-o", str(target)]) == 0
    text = target.read_bytes().decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0].startswith("external_id;number;e164")
    row_1014 = next(line for line in lines if line.startswith("1014;"))
    assert ";Недоступен;Некорректный контакт;no_number;" in row_1014
    row_1029 = next(line for line in lines if line.startswith("1029;"))
    assert row_1029.startswith("1029;+7 (905) 770-89-45 доб. 12;+79057708945;12;organisation;")
    assert "Номер в карточке отсутствует" in row_1014
    # the multi-line journal survives the round trip byte for byte
    assert '"  28/10 Звонил сам  \n29/10 ждёт звонка"' in text


def test_import_reports_bad_rows_and_keeps_good_ones_cp1251(
    db: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_text = (
        "Телефон,ID,Вид владельца,Комментарий\r\n"
        "8 916 000 00 01,a1,физ,Первая строка\r\n"
        "8 916 000 00 02,,физ,\r\n"
        "8 916 000 00 03,a3,марсианин,\r\n"
        "8 916 000 00 04,a1,физ,\r\n"
        "8 916 000 00 05,a5,юр,\r\n"
    )
    path = tmp_path / "c.csv"
    path.write_bytes(csv_text.encode("cp1251"))
    assert main([*db, "import", str(path), "--campaign", "w"]) == 0
    cap = capsys.readouterr()
    assert f"{path}:3: empty external id" in cap.err
    assert f"{path}:4: owner kind 'марсианин' not understood" in cap.err
    assert f"{path}:5: external id 'a1' already on line 2" in cap.err
    assert "6 lines read = 1 header + 0 blank + 5 in 5 records" in cap.out
    assert "5 records = 2 new to dial + 0 new settled without dialling + 0 updated + 0 unchanged + 3 bad" in cap.out
    assert "cp1251" in cap.out


def test_exclusions_verbs(db: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([*db, "exclusions", "add", "8 (916) 123-45-67", "--kind", "calls", "--reason", "просит"]) == 0
    assert "+79161234567: excluded from calls" in capsys.readouterr().out
    f = tmp_path / "ex.csv"
    f.write_text(
        "number;kind;reason\n+79160000009;all;не клиент\n12;calls;\n+79160000010;sometimes;\n", encoding="utf-8"
    )
    assert main([*db, "exclusions", "import", str(f)]) == 0
    cap = capsys.readouterr()
    assert "4 lines read = 1 header + 0 blank + 3 in 3 records" in cap.out
    assert "3 records = 1 new exclusions + 0 already there + 2 bad (reported above)" in cap.out
    assert f"{f}:3: not a usable phone number '12'" in cap.err and f"{f}:4: exclusion kind" in cap.err
    assert main([*db, "exclusions", "list"]) == 0
    out = capsys.readouterr().out
    assert "+79160000009\tall" in out and "+79161234567\tcalls" in out
    assert main([*db, "exclusions", "remove", "+79161234567", "--kind", "calls"]) == 0
    assert main([*db, "exclusions", "remove", "+79161234567", "--kind", "calls"]) == 1


def test_numbering_import_resolves_mobile_zones(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*db, "import", str(SAMPLE), "--campaign", "autumn"]) == 0
    assert main([*db, "numbering", "import", str(REGISTRY)]) == 0
    out = capsys.readouterr().out
    assert "20 ranges stored" in out and "time zones resolved again: 3 contacts changed" in out
    assert main([*db, "plan", "--campaign", "autumn", "--now", "2026-11-18T09:00Z"]) == 0
    from_db = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert from_db["1025"].startswith("1025\t+79140112233\tfirst dial at ")
    assert from_db["1025"].endswith(" Asia/Vladivostok local")  # registry: Приморский край
    assert from_db["1030"].endswith(" Asia/Irkutsk local")
    assert from_db["1001"].endswith(" Europe/Moscow local")
    # the CSV alone gives the same zones when handed the registry file
    assert main(["plan", str(SAMPLE), "--registry", str(REGISTRY), "--now", "2026-11-18T09:00Z"]) == 0
    from_csv = capsys.readouterr().out
    assert "1026\t+79130123456\tfirst dial at 2026-11-18 16:00 Asia/Novosibirsk local" in from_csv
    assert "1025\t+79140112233\tfirst dial at 2026-11-18 19:00 Asia/Vladivostok local" in from_csv


def test_unmigrated_database_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--db", f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}", "status"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "run `dialer db upgrade`" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["import"],
        ["import", "x.csv"],
        ["exclusions", "add", "1", "--kind", "bogus"],
        ["plan", "--now", "yesterday"],
        ["export"],
        ["numbering"],
        ["db"],
    ],
)
def test_wrong_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["import"],
        ["status"],
        ["export"],
        ["exclusions"],
        ["exclusions", "add"],
        ["exclusions", "remove"],
        ["exclusions", "list"],
        ["exclusions", "import"],
        ["numbering", "import"],
        ["db", "upgrade"],
        ["plan"],
    ],
)
def test_help_on_every_verb(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: dialer" in capsys.readouterr().out


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "dialer", "import"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialer",
            "--db",
            f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite'}",
            "import",
            str(tmp_path / "none.csv"),
            "--campaign",
            "x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_plan_follows_the_holiday_calendar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """COMPLIANCE: a closed holiday (here Wed 18 Nov 2026) moves the first dial to the next day."""
    (tmp_path / "cal.yaml").write_text("holidays: [2026-11-18]\n", encoding="utf-8")
    paths = "\n".join(
        f'{k} = "{ROOT / "config" / f}"'
        for k, f in (("rules", "rules.yaml"), ("own_numbers", "own_numbers.txt"), ("region_zones", "region_zones.yaml"))
    )
    cfg = tmp_path / "dialer.toml"
    cfg.write_text(f'[paths]\n{paths}\n[compliance]\nholidays = "cal.yaml"\non_holiday = "closed"\n', encoding="utf-8")
    db = f"sqlite+aiosqlite:///{tmp_path / 'never.sqlite'}"
    assert main(["--config", str(cfg), "--db", db, "plan", str(SAMPLE), "--now", "2026-11-18T09:00Z"]) == 0
    out = capsys.readouterr().out
    assert "1006\t+74232401234\tfirst dial at 2026-11-19 09:00 Asia/Vladivostok local" in out
    assert "1001\t+79161234567\tfirst dial at 2026-11-19 09:00 Europe/Moscow local" in out
