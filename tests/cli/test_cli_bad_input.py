"""Issue 11: every bad input a new user tried gives one line and exit code 1 or 2, never a
traceback, and loses nothing already accepted; CSV files that cannot be read reliably are refused
whole; every line of a file that can be read is accounted for."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    args = ["--db", f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"]
    assert main([*args, "db", "upgrade"]) == 0
    return args


def one_line_error(err: str) -> bool:
    return err.count("\n") == 1 and "error" in err and "Traceback" not in err


def run_cli(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dialer", *argv],
        capture_output=True,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def contacts_csv(rows: list[str], header: str = "ID;Телефон;Владелец;Комментарий") -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


# ---- the database ----------------------------------------------------------------------------------


def test_unknown_schema_revision_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "x.sqlite"
    assert main(["--db", f"sqlite+aiosqlite:///{target}", "db", "upgrade", "nosuchrev"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and "unknown schema revision 'nosuchrev'" in err and "0003" in err
    assert not target.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user@host/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://user@host/db", "driver 'psycopg2' is not supported"),
        ("oracle://x", "unsupported database 'oracle'"),
    ],
)
def test_unusable_database_urls_are_one_line(url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", url, "status"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and message in err


def test_urls_without_the_async_driver_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = f"sqlite:///{tmp_path / 'plain.sqlite'}"  # no +aiosqlite: the dialer picks its driver
    assert main(["--db", plain, "db", "upgrade"]) == 0
    assert main(["--db", plain, "status"]) == 0
    assert "no campaigns yet" in capsys.readouterr().out
    pg = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    plain_pg = pg.replace("postgresql+asyncpg://", "postgresql://")
    assert main(["--db", plain_pg, "db", "current"]) in (0, 1)  # answered (revision or not), no driver error
    assert "Traceback" not in capsys.readouterr().err


def test_read_only_verbs_never_create_a_database_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo" / "dailer.sqlite"
    for argv in (["status"], ["export", "--campaign", "x"], ["plan", "--campaign", "x"], ["db", "current"]):
        assert main(["--db", f"sqlite+aiosqlite:///{typo}", *argv]) == 1
        err = capsys.readouterr().err
        assert one_line_error(err) and f"no database at {typo}" in err and "dialer db upgrade" in err
    assert not typo.exists() and not typo.parent.exists()


# ---- CSV files refused whole -------------------------------------------------------------------------


def status_total(db: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*db, "status"]) == 0
    return capsys.readouterr().out


def test_a_stray_quote_refuses_the_whole_file(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = '"Ромашка'
    rows = [f"{i};8 916 {i:03d} 00 0{i % 10};{stray if i == 8 else f'Клиент {i}'};коммент" for i in range(3000)]
    path = tmp_path / "stray.csv"
    path.write_text(contacts_csv(rows), encoding="utf-8")
    assert main([*db, "import", str(path), "--campaign", "c"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err)
    assert f"{path}:10: a quote opens a cell here and runs over line 11" in err and "nothing was imported" in err
    assert "no campaigns yet" in status_total(db, capsys)


def test_rows_swallowed_into_a_comment_are_refused(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "four.csv"
    path.write_text(
        contacts_csv(["1;89161110001;Иван;«начало", "2;89161110002;Пётр;x", "3;89161110003;Анна;y"]).replace("«", '"')
        + '4;89161110004;Олег;конец"\r\n',
        encoding="utf-8",
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and f"{path}:2: a quote opens a cell here and runs over line 3" in err


def test_a_quote_never_closed_is_refused(db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "open.csv"
    path.write_text(contacts_csv(["1;89161110001;Иван;ok", '2;89161110002;"Пётр;x']), encoding="utf-8")
    assert main([*db, "import", str(path), "--campaign", "c"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and f"{path}:3: a quote opens a cell here and is never closed" in err


def test_badly_escaped_quotes_are_refused(db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "esc.csv"
    path.write_text(contacts_csv(['1;89161110001;"ООО "Ромашка"";ok']), encoding="utf-8")
    assert main([*db, "import", str(path), "--campaign", "c"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and f"{path}:2: the quoted cell" in err and 'must be doubled ("")' in err


def test_properly_quoted_cells_with_quotes_and_line_breaks_are_fine(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(
        contacts_csv(
            ['1;89161110001;"ООО ""Ромашка""";"01/11 звонил\r\n02/11 просил перезвонить"', "2;89161110002;Пётр;"]
        ),
        encoding="utf-8",
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 0
    out = capsys.readouterr().out
    assert "4 lines read = 1 header + 0 blank + 3 in 2 records, 1 with line breaks inside a cell" in out
    assert "2 records = 2 new to dial" in out


def test_mixed_encodings_are_reported_by_line(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        contacts_csv(["1;89161110001;Иван;", "2;89161110002;Пётр;"]).encode("utf-8")
        + "3;89161110003;Анна;\r\n".encode("cp1251")
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and f"{path}:4: mixed encodings" in err and "cp1251? line 4" in err
    assert "byte" not in err and "position" not in err  # by line, not by byte offset


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ID;phone\r\n1;8916\x001110001\r\n", ":2: NUL byte"),
        (bytes(random.Random(7).randrange(256) for _ in range(4000)), ": "),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, ": "),
    ],
)
def test_binary_files_are_refused(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    for argv in (["import", str(path), "--campaign", "c"], ["exclusions", "import", str(path), "--kind", "calls"]):
        assert main([*db, *argv]) == 1
        err = capsys.readouterr().err
        assert one_line_error(err) and str(path) in err and message in err and "UnicodeDecodeError" not in err
    assert main([*db, "exclusions", "list"]) == 0
    assert "0 exclusions" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "cp1251"])
def test_utf16_utf8_bom_and_cp1251_are_detected(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    path = tmp_path / "enc.csv"
    path.write_bytes(contacts_csv(["1;89161110001;Иван Ёжиков;«хорошо»", "2;89161110002;Пётр;"]).encode(encoding))
    assert main([*db, "import", str(path), "--campaign", "c"]) == 0
    out = capsys.readouterr().out
    assert "3 lines read = 1 header + 0 blank + 2 in 2 records" in out and "2 records = 2 new to dial" in out
    target = tmp_path / "out.csv"
    assert main([*db, "export", "--campaign", "c", "-o", str(target)]) == 0
    assert "Иван Ёжиков" in target.read_bytes().decode("utf-8-sig")


def test_every_line_is_accounted_for(db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "all.csv"
    path.write_text(
        "\r\n"  # a blank line before the header
        "ID;Телефон;Владелец;Комментарий\r\n"
        "1;89161110001;Иван;\r\n"
        "\r\n"
        ";;;\r\n"  # a row of empty cells
        "2;;Без номера;\r\n"  # settled without dialling
        "3;89161110003;Анна;\r\n"
        ";89161110004;Без ид;\r\n"  # bad: no id
        '4;89161110005;"Олег";"строка 1\r\nстрока 2"\r\n'
        "5;89161110001;Тот же номер;\r\n",  # shares a number with line 3
        encoding="utf-8",
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 0
    cap = capsys.readouterr()
    assert "11 lines read = 1 header + 3 blank + 7 in 6 records, 1 with line breaks inside a cell" in cap.out
    assert "6 records = 4 new to dial + 1 new settled without dialling + 0 updated + 0 unchanged + 1 bad" in cap.out
    assert "1 share a number with another contact" in cap.out
    assert f"{path}:8: empty external id" in cap.err
    assert f"{path}:11: number +79161110001 is also on line 3 (contact 1)" in cap.err


def test_exclusions_import_of_bare_numbers_accounts_for_lines(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ex.txt"
    path.write_text("+79160000001\n\n+79160000002\nнет\n+79160000001\n", encoding="utf-8")
    assert main([*db, "exclusions", "import", str(path), "--kind", "calls"]) == 0
    out = capsys.readouterr().out
    assert "5 lines read = 0 header + 1 blank + 4 in 4 records" in out
    assert "4 records = 2 new exclusions + 1 already there + 1 bad" in out


# ---- extensions ----------------------------------------------------------------------------------------


def test_an_organisation_number_with_an_extension_is_dialled(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ext.csv"
    path.write_text(
        "ID;Телефон;Тип владельца;Владелец\r\n"
        "1;8 (495) 123-45-67 доб. 123;юр. лицо;ООО Ромашка\r\n"
        "2;+7 495 765-43-21 ext. 45;юр. лицо;АО Сибирь\r\n"
        "3;8(495)111-22-33,7;юр. лицо;ИП Хабаров\r\n",
        encoding="utf-8",
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 0
    assert "3 records = 3 new to dial + 0 new settled without dialling" in capsys.readouterr().out
    target = tmp_path / "out.csv"
    assert main([*db, "export", "--campaign", "c", "-o", str(target)]) == 0
    rows = {r.split(";")[0]: r.split(";") for r in target.read_bytes().decode("utf-8-sig").split("\r\n")[1:] if r}
    assert rows["1"][2:4] == ["+74951234567", "123"] and rows["1"][6] == "pending" and rows["1"][8] == ""
    assert rows["2"][2:4] == ["+74957654321", "45"] and rows["3"][2:4] == ["+74951112233", "7"]


# ---- inbound commands --------------------------------------------------------------------------------


def test_operator_results_command_ids_and_settled_contacts(
    db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "ID;Телефон;Владелец\r\n50036;89161110036;Иван\r\n50037;89161110037;Пётр\r\n50038;+7 (495) 730-44-87;Свой\r\n",
        encoding="utf-8",
    )
    assert main([*db, "import", str(path), "--campaign", "c"]) == 0
    capsys.readouterr()

    def result(contact: str, res: str, command_id: str | None = None) -> tuple[int, dict[str, object]]:
        argv = [*db, "operator-result", "--campaign", "c", "--contact", contact, "--result", res]
        rc = main([*argv, "--command-id", command_id] if command_id else argv)
        out = capsys.readouterr()
        return rc, json.loads(out.out)

    rc, reply = result("50036", "refused", "abc1")
    assert rc == 0 and reply["type"] == "command_ack" and not reply["duplicate"]
    rc, reply = result("50036", "refused", "abc1")  # the same command again: a duplicate
    assert rc == 0 and reply["duplicate"] is True
    rc, reply = result("50037", "refused", "abc1")  # the id reused for another contact: a conflict
    assert rc == 1 and reply["type"] == "command_error" and "already used for a different command" in str(reply)

    # refused twice (two commands): the journal line is not written twice, nothing is announced again
    rc, reply = result("50037", "refused")
    assert rc == 0
    rc, reply = result("50037", "refused")
    assert rc == 0 and reply["detail"]["unchanged"] is True  # type: ignore[index]
    target = tmp_path / "out.csv"
    assert main([*db, "export", "--campaign", "c", "-o", str(target)]) == 0
    rows = {r.split(";")[0]: r for r in target.read_bytes().decode("utf-8-sig").split("\r\n")[1:] if r}
    assert rows["50037"].count("Клиент отказывается от анкетирования") == 1

    # the company's own number was settled at import as «Некорректный контакт»; the operator then
    # completed the survey with the right person: the flag goes
    assert ";Некорректный контакт;" in rows["50038"]
    rc, reply = result("50038", "completed")
    assert rc == 0 and reply["detail"]["incorrect_contact"] is False  # type: ignore[index]
    assert main([*db, "export", "--campaign", "c", "-o", str(target)]) == 0
    rows = {r.split(";")[0]: r for r in target.read_bytes().decode("utf-8-sig").split("\r\n")[1:] if r}
    assert ";Завершён;;" in rows["50038"]


def test_a_failed_command_can_be_sent_again_with_its_id(db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*db, "operator-result", "--campaign", "nope", "--contact", "1", "--result", "refused", "--command-id", "x9"]
    assert main(argv) == 1
    assert "unknown campaign" in capsys.readouterr().err
    assert main(argv) == 1
    assert "unknown campaign" in capsys.readouterr().err  # not "duplicate": the failure was not remembered


def test_export_to_stdout_honours_the_encoding(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'e.sqlite'}"
    path = tmp_path / "c.csv"
    path.write_text("ID;Телефон;Владелец\r\n1;89161110001;Иван Ёжиков ✓\r\n", encoding="utf-8")
    assert run_cli("--db", url, "db", "upgrade").returncode == 0
    assert run_cli("--db", url, "import", str(path), "--campaign", "c").returncode == 0
    cp = run_cli("--db", url, "export", "--campaign", "c", "--encoding", "cp1251", env={"PYTHONIOENCODING": "utf-8"})
    assert cp.returncode == 0
    text = cp.stdout.decode("cp1251")
    assert "Иван Ёжиков ?" in text and text.startswith("external_id;")
    assert b"\xd0\x98" not in cp.stdout  # no UTF-8 «И»
    assert b"1 character(s) not representable in cp1251" in cp.stderr
    utf8 = run_cli("--db", url, "export", "--campaign", "c", env={"PYTHONIOENCODING": "cp1251"})
    assert utf8.stdout.startswith(b"\xef\xbb\xbf") and "Иван Ёжиков ✓" in utf8.stdout.decode("utf-8-sig")


# ---- the settings file ------------------------------------------------------------------------------


def settings_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dialer.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[campaign]\nconcurency = 5\n", ":2: campaign.concurency: unknown key (did you mean concurrency?)"),
        (
            '[campaign]\ntimezone = "Europe/Moscow"\nconcurrency = "ten"\n',
            ":3: campaign.concurrency: expected an integer",
        ),
        ("[campain]\nconcurrency = 5\n", ":1: campain: unknown section (did you mean [campaign]?)"),
        ('[[ami]]\nname = "a"\nport = 99999\n', ":3: ami.port: must be at most 65535"),
        ("[mqtt]\nenabled = 1\n", ":2: mqtt.enabled: expected true or false"),
        ("[leases]\nlease_s = 5\nheartbeat_s = 6\n", ":3: leases.heartbeat_s: must be shorter than lease_s"),
        ("[campaign\n", ":1: "),
    ],
)
def test_settings_problems_name_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    cfg = settings_file(tmp_path, body)
    assert main(["--config", str(cfg), "status"]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and f"{cfg}{expected}" in err


def test_sqlite_path_is_relative_to_the_settings_file(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "etc"
    cfg_dir.mkdir()
    settings_file(cfg_dir, '[database]\nurl = "sqlite+aiosqlite:///data/d.sqlite"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = run_cli("--config", str(cfg_dir / "dialer.toml"), "db", "upgrade", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (cfg_dir / "data" / "d.sqlite").exists() and not (elsewhere / "data").exists()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`dialer run` installs its log handler on the stderr of the moment (pytest's capture here):
    take it away again so later tests do not log into a closed stream."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dialer_handler", False):
            root.removeHandler(handler)


@pytest.mark.usefixtures("restore_logging")
def test_data_files_are_validated_at_start_up_without_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "phrases.yaml"
    broken.write_text("version: 1\nlanguage: ru\nphrases:\n  no_such_class:\n    - алло\n", encoding="utf-8")
    cfg = settings_file(
        tmp_path,
        f'[paths]\nrules = "{CONFIG / "rules.yaml"}"\nphrases = "phrases.yaml"\ntones = "{CONFIG / "tones.yaml"}"\n'
        f'own_numbers = "{CONFIG / "own_numbers.txt"}"\n[asr]\nmodel_path = "no-model-here"\n',
    )
    assert main(["--config", str(cfg), "--db", f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite'}", "run"]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:4" in err and "no_such_class" in err and "Traceback" not in err
    assert not (tmp_path / "none.sqlite").exists()  # refused before touching the database


# ---- the simulator ------------------------------------------------------------------------------------


def test_simulator_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "dialer.sim", "--ami-port", str(port)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
