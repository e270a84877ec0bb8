"""The corrections store under load and abuse: concurrent writers, the CLI on a damaged file, the admin gate."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

from tests.conftest import REPO_ROOT
from tests.unit.test_feedback import jpeg

WRITER = textwrap.dedent("""
    import sys
    from fmnist_core import feedback
    from tests.unit.test_feedback import FakeBackbone, jpeg

    worker, count = int(sys.argv[1]), int(sys.argv[2])
    backbone = FakeBackbone()
    for index in range(count):
        feedback.add(jpeg(64, 48, colour=(worker * 30, index * 5, 100)),
                     feedback.Correction("Coat", token=f"tab-{worker}", photo_answer="Shirt"), backbone)
    print("done", worker)
""")


def test_eight_processes_writing_fifty_corrections_each_lose_nothing(tmp_path, monkeypatch):
    db = tmp_path / "feedback.sqlite3"
    env = {"FMNIST_FEEDBACK_DB": str(db), "FMNIST_FEEDBACK_RATE": "1000", "PYTHONPATH": str(REPO_ROOT),
           "PATH": "/usr/bin:/bin"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(worker), "50"], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for worker in range(8)]
    outcomes = [writer.communicate(timeout=300) for writer in writers]
    for writer, (out, err) in zip(writers, outcomes):
        assert writer.returncode == 0 and "locked" not in err and out.startswith("done"), err[-2000:]
    monkeypatch.setenv("FMNIST_FEEDBACK_DB", str(db))
    from fmnist_core import feedback

    rows = feedback.list_corrections()
    assert len(rows) == 400 and len({row["id"] for row in rows}) == 400
    assert feedback.counts()["pending"] == {"Coat": 400}


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist_core", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", **env}, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_the_cli_stores_reviews_and_exports_behind_the_admin_password(tmp_path):
    photo = tmp_path / "sock.jpg"
    photo.write_bytes(jpeg(640, 480))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    env = {"FMNIST_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "FMNIST_ADMIN_PASSWORD": "s3cret",
           "FMNIST_MODELS_DIR": str(REPO_ROOT / "models")}
    refused = cli("feedback", "add", str(photo), "--label", "none", "--accept", env=env)
    assert refused.returncode == 1 and "admin password" in refused.stderr
    assert "[]" in cli("feedback", "list", "--json", env=env).stdout  # nothing stored by the refused call
    added = cli("feedback", "add", str(photo), str(broken), "--label", "none", "--json", env=env)
    records = json.loads(added.stdout)
    assert added.returncode == 2 and "id" in records[0] and "not a readable image" in records[1]["error"]
    listed = json.loads(cli("feedback", "list", "--json", env=env).stdout)
    assert [(row["label"], row["status"], row["source"]) for row in listed] == [("none", "pending", "cli")]
    assert listed[0]["photo_model_id"]  # the shipped photo model answered it
    assert cli("feedback", "accept", str(listed[0]["id"]), env=env).returncode == 1
    assert cli("feedback", "accept", str(listed[0]["id"]), "--admin-password", "wrong", env=env).returncode == 1
    accepted = cli("feedback", "accept", str(listed[0]["id"]), "--admin-password", "s3cret", env=env)
    assert accepted.returncode == 0 and "accepted 1" in accepted.stdout
    exported = cli("feedback", "export", str(tmp_path / "out.zip"), env=env)
    names = zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert exported.returncode == 0 and sorted(names) == ["corrections.csv", f"photos/{listed[0]['id']:06d}-none.jpg"]
    deleted = cli("feedback", "delete", str(listed[0]["id"]), "--admin-password", "s3cret", env=env)
    assert deleted.returncode == 0 and json.loads(cli("feedback", "list", "--json", env=env).stdout) == []


def test_the_cli_reports_a_damaged_database_in_one_line(tmp_path):
    db = tmp_path / "fb.sqlite3"
    db.write_bytes(b"\x00garbage" * 500)
    result = cli("feedback", "list", env={"FMNIST_FEEDBACK_DB": str(db)})
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "damaged" in result.stderr
    assert db.read_bytes() == b"\x00garbage" * 500
