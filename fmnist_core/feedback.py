"""The corrections store: what people tell the photo model ("right", or "wrong, it is a ..."), in SQLite.

One file (FMNIST_FEEDBACK_DB, default feedback/feedback.sqlite3), WAL mode so readers never wait for a
writer, a busy timeout so concurrent writers queue instead of failing, every write in one IMMEDIATE
transaction, and a versioned schema (PRAGMA user_version). A correction keeps a bounded copy of the
photo (longest side <= 512 px, re-encoded as JPEG, so no EXIF), its backbone features per view, the
label given, what each model answered, the time and an anonymous token of the browser tab. Nothing is
used for training until an admin accepts it; accepted corrections become extra rows for the photo head
(fmnist_core.photo_train). Features are tied to the backbone's checksum and recomputed from the stored
photo when the backbone changes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import sqlite3
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from fmnist_core.config import REPO_ROOT
from fmnist_core.data import CLASS_NAMES

DB_ENV = "FMNIST_FEEDBACK_DB"
RATE_ENV = "FMNIST_FEEDBACK_RATE"
DEFAULT_DB = REPO_ROOT / "feedback" / "feedback.sqlite3"
DEFAULT_RATE = 30  # corrections per browser tab per hour
NONE_LABEL = "none"  # "not one of the ten classes"
LABELS = (*CLASS_NAMES, NONE_LABEL)
STATUSES = ("pending", "accepted", "rejected")
MAX_SIDE = 512  # the stored copy's longest side
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a photo file larger than this is refused before decoding
JPEG_QUALITY = 90
BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
    photo BLOB NOT NULL,
    photo_sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    views TEXT NOT NULL,
    features BLOB NOT NULL,
    imagenet_kept BLOB NOT NULL,
    backbone_sha256 TEXT NOT NULL,
    photo_model_id TEXT,
    photo_answer TEXT,
    cnn_model_id TEXT,
    cnn_answer TEXT,
    token TEXT NOT NULL,
    source TEXT NOT NULL,
    reviewed_at TEXT
);
CREATE INDEX IF NOT EXISTS corrections_by_token ON corrections (token, created_at);
CREATE INDEX IF NOT EXISTS corrections_by_status ON corrections (status, label);
"""
LIST_COLUMNS = ("id", "created_at", "label", "verdict", "status", "photo_sha256", "width", "height",
                "photo_model_id", "photo_answer", "cnn_model_id", "cnn_answer", "source", "reviewed_at")


class FeedbackError(RuntimeError):
    """A correction could not be stored or read; the message says why in one line, and nothing changed."""


class RateLimited(FeedbackError):
    """This browser tab has sent its allowance of corrections for the hour."""


def db_path() -> Path:
    """The database file: FMNIST_FEEDBACK_DB, or feedback/feedback.sqlite3 in the project root."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def rate_limit() -> int:
    """Corrections one browser tab may send per hour (FMNIST_FEEDBACK_RATE, default 30)."""
    try:
        return max(1, int(os.environ.get(RATE_ENV, DEFAULT_RATE)))
    except ValueError:
        return DEFAULT_RATE


def label_name(label: str) -> str:
    """A label as the app writes it: one of the ten class names, or 'none'; ValueError otherwise."""
    for known in LABELS:
        if label.strip().lower() == known.lower():
            return known
    raise ValueError(f"unknown label {label!r}: use one of {', '.join(LABELS)}")


def _explain(error: sqlite3.Error, path: Path) -> FeedbackError:
    """One clear line for a database failure: damaged, locked, or not writable."""
    text = str(error)
    if isinstance(error, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return FeedbackError(f"the corrections database {path} is damaged ({text}); the rest of the app works. "
                             "Move the file aside (nothing in it is deleted by the app) to start a new one")
    if "locked" in text or "busy" in text:
        return FeedbackError(f"the corrections database {path} is busy (another process holds it); try again")
    return FeedbackError(f"the corrections database {path} cannot be used: {text}")


@contextlib.contextmanager
def connect(path: Path | None = None, write: bool = False):
    """A connection with WAL, a busy timeout and the schema in place; write=True wraps the block in one
    IMMEDIATE transaction (committed at the end, rolled back on any error)."""
    path = Path(path or db_path())
    if not write and not path.exists():
        raise FileNotFoundError(path)  # a reader of a store that was never written: callers show it as empty
    connection = None
    try:
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _prepare(connection)
        if write:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        else:
            yield connection
    except sqlite3.Error as error:
        raise _explain(error, path) from None
    except OSError as error:
        raise FeedbackError(f"the corrections database {path} cannot be opened: {error.strerror or error}") from None
    finally:
        if connection is not None:
            connection.close()


def _prepare(connection: sqlite3.Connection) -> None:
    """WAL mode and the schema, retried while another process holds the file, up to the busy timeout.

    SQLite does not call its busy handler when it switches a new file to WAL, so several processes opening
    a new store at once would otherwise get "database is locked" at once instead of waiting their turn.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            _migrate(connection)
            return
        except sqlite3.OperationalError as error:
            if not ("locked" in str(error) or "busy" in str(error)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate(connection: sqlite3.Connection) -> None:
    """Create the schema in a new file, or refuse a file from a newer version of the app."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema version {version} is newer than this app's ({SCHEMA_VERSION})")
    connection.execute("BEGIN IMMEDIATE")
    try:
        if connection.execute("PRAGMA user_version").fetchone()[0] == 0:  # another process may have done it
            for statement in filter(str.strip, SCHEMA.split(";")):  # executescript would commit first
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise


# ---- the photo: bounded, re-encoded ----------------------------------------------------------------

def bounded_photo(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """A photo file's upright RGB copy, longest side <= 512 px, as a fresh JPEG (no EXIF); ImageError if it is not one."""
    from PIL import Image, ImageOps

    from fmnist_core.preprocess import ImageError, open_image

    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"the photo is {len(data) / 1e6:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
    image = open_image(data, draft=MAX_SIDE)  # refuses non-images, decompression bombs, truncated files
    image = ImageOps.exif_transpose(image).convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.size


@dataclass(frozen=True)
class PhotoFeatures:
    """A stored photo's backbone features: per view the pooled features, and ImageNet's kept log-probabilities."""

    views: tuple[str, ...]
    pooled: np.ndarray  # views x 1280 float32
    imagenet_kept: np.ndarray  # views x len(KEPT_IMAGENET)
    backbone_sha256: str


def photo_features(jpeg: bytes, backbone) -> PhotoFeatures:
    """The features the photo head trains on, for every view it knows, computed from the stored copy."""
    from fmnist_core.photo import kept_imagenet_log_probs
    from fmnist_core.preprocess import VIEW_GROUPS, decode, photo_views

    image = decode(jpeg, draft=backbone.size)
    views = tuple(view for group in VIEW_GROUPS for view in group)
    output = backbone.run(np.concatenate([photo_views(image, group, backbone.size) for group in VIEW_GROUPS]))
    return PhotoFeatures(views, output.pooled.astype(np.float32),
                         kept_imagenet_log_probs(output.logits).astype(np.float32), backbone.record["sha256"])


# ---- writing -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Correction:
    """What a person sends about one answer."""

    label: str  # one of LABELS
    verdict: str = "wrong"  # "right": the answer was right (label = the answer); "wrong": label is the truth
    photo_model_id: str | None = None
    photo_answer: str | None = None
    cnn_model_id: str | None = None
    cnn_answer: str | None = None
    token: str | None = None  # the browser tab's anonymous token; None for the command line (no rate limit)
    source: str = "upload"  # upload, camera or cli


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def add(data: bytes, correction: Correction, backbone, accept: bool = False, path: Path | None = None) -> int:
    """Store one correction (photo checked and bounded, features computed, then one transaction); returns its id.

    ImageError for a photo that cannot be stored, RateLimited when the tab has sent its allowance for the hour,
    FeedbackError when the database cannot be used. Nothing is stored in any of these cases.
    """
    label = label_name(correction.label)
    if correction.verdict not in ("right", "wrong"):
        raise ValueError(f"verdict must be 'right' or 'wrong', not {correction.verdict!r}")
    jpeg, (width, height) = bounded_photo(data)
    features = photo_features(jpeg, backbone)
    row = {"created_at": _now(), "label": label, "verdict": correction.verdict,
           "status": "accepted" if accept else "pending", "photo": jpeg,
           "photo_sha256": hashlib.sha256(jpeg).hexdigest(), "width": width, "height": height,
           "views": ",".join(features.views), "features": features.pooled.astype("<f4").tobytes(),
           "imagenet_kept": features.imagenet_kept.astype("<f4").tobytes(),
           "backbone_sha256": features.backbone_sha256, "photo_model_id": correction.photo_model_id,
           "photo_answer": correction.photo_answer, "cnn_model_id": correction.cnn_model_id,
           "cnn_answer": correction.cnn_answer, "token": correction.token or "cli", "source": correction.source,
           "reviewed_at": _now() if accept else None}
    with connect(path, write=True) as connection:
        if correction.token is not None:
            since = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="milliseconds")
            sent = connection.execute("SELECT COUNT(*) FROM corrections WHERE token = ? AND created_at > ?",
                                      (correction.token, since)).fetchone()[0]
            if sent >= rate_limit():
                raise RateLimited(f"this tab has sent {sent} corrections in the last hour, the most allowed "
                                  f"({RATE_ENV}); thank you — please try again later")
        cursor = connection.execute(f"INSERT INTO corrections ({', '.join(row)}) VALUES "
                                    f"({', '.join('?' for _ in row)})", tuple(row.values()))
        return int(cursor.lastrowid)


def add_with_model(data: bytes, correction: Correction, photo_model=None, accept: bool = False,
                   path: Path | None = None) -> int:
    """add() with the loaded photo model's backbone (or a freshly loaded one when the photo model is missing)."""
    if photo_model is not None:
        return add(data, correction, photo_model.backbone, accept, path)
    from fmnist_core.photo import Backbone, PhotoModelError

    try:
        backbone = Backbone()
    except PhotoModelError as error:
        raise FeedbackError(f"the photo backbone is needed to store a correction: {error}") from None
    return add(data, correction, backbone, accept, path)


def set_status(ids: list[int], status: str, path: Path | None = None) -> int:
    """Accept or reject corrections (status 'accepted' / 'rejected' / 'pending'); returns how many changed."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    ids = [int(i) for i in ids]
    with connect(path, write=True) as connection:
        _require(connection, ids)
        return connection.execute(f"UPDATE corrections SET status = ?, reviewed_at = ? WHERE id IN "
                                  f"({', '.join('?' for _ in ids)})", (status, _now(), *ids)).rowcount


def delete(ids: list[int], path: Path | None = None) -> int:
    """Delete corrections, photo and all; returns how many."""
    ids = [int(i) for i in ids]
    with connect(path, write=True) as connection:
        _require(connection, ids)
        return connection.execute(f"DELETE FROM corrections WHERE id IN ({', '.join('?' for _ in ids)})",
                                  ids).rowcount


def _require(connection: sqlite3.Connection, ids: list[int]) -> None:
    """ValueError naming the ids that do not exist (and nothing is changed)."""
    if not ids:
        raise ValueError("no correction ids given")
    found = {row[0] for row in connection.execute(
        f"SELECT id FROM corrections WHERE id IN ({', '.join('?' for _ in ids)})", ids)}
    missing = sorted(set(ids) - found)
    if missing:
        raise ValueError(f"no correction with id {', '.join(map(str, missing))}")


# ---- reading -----------------------------------------------------------------------------------------

def list_corrections(status: str | None = None, label: str | None = None, answer: str | None = None,
                     path: Path | None = None) -> list[dict]:
    """The corrections (no photos or features), newest first, optionally filtered; [] when there is no database."""
    clauses, values = [], []
    for column, value in (("status", status), ("label", label), ("photo_answer", answer)):
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    try:
        with connect(path) as connection:
            return [dict(row) for row in connection.execute(
                f"SELECT {', '.join(LIST_COLUMNS)} FROM corrections {where} ORDER BY id DESC", values)]
    except FileNotFoundError:
        return []


def photo_bytes(correction_id: int, path: Path | None = None) -> bytes:
    """The stored JPEG of one correction."""
    try:
        with connect(path) as connection:
            row = connection.execute("SELECT photo FROM corrections WHERE id = ?", (int(correction_id),)).fetchone()
    except FileNotFoundError:
        row = None
    if row is None:
        raise ValueError(f"no correction with id {correction_id}")
    return bytes(row["photo"])


def counts(path: Path | None = None) -> dict[str, dict[str, int]]:
    """{status: {label: count}} over the whole store."""
    result = {status: {} for status in STATUSES}
    try:
        with connect(path) as connection:
            for row in connection.execute("SELECT status, label, COUNT(*) AS n FROM corrections "
                                          "GROUP BY status, label"):
                result[row["status"]][row["label"]] = row["n"]
    except FileNotFoundError:
        pass
    return result


def export_zip(path: Path | None = None, status: str | None = None) -> bytes:
    """A ZIP of the corrections: photos/<id>-<label>.jpg and corrections.csv (one row each), built in memory."""
    rows = list_corrections(status=status, path=path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=[*LIST_COLUMNS, "photo_file"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            name = f"photos/{row['id']:06d}-{row['label'].replace('/', '-').replace(' ', '_').lower()}.jpg"
            archive.writestr(name, photo_bytes(row["id"], path))
            writer.writerow({**row, "photo_file": name})
        archive.writestr("corrections.csv", table.getvalue())
    return buffer.getvalue()


@dataclass(frozen=True)
class TrainingRows:
    """Accepted corrections as training rows for the photo head."""

    ids: np.ndarray
    labels: np.ndarray  # LABELS names
    features: np.ndarray  # N x (len(views) x 1280)
    imagenet_kept: np.ndarray  # N x len(KEPT_IMAGENET)


def current_backbone_sha256() -> str | None:
    """The checksum the shipped backbone's record names (read without loading the network)."""
    from fmnist_core.fsutil import read_json
    from fmnist_core.photo import BACKBONE_DIR, BACKBONE_NAME

    try:
        return read_json(BACKBONE_DIR / f"{BACKBONE_NAME}.json")["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def accepted_rows(views: tuple[str, ...], backbone=None, path: Path | None = None) -> TrainingRows:
    """The accepted corrections' features for the given views, side by side.

    Rows whose features came from another backbone are recomputed from their stored photo with this one
    (backbone: a photo.Backbone; loaded when needed) and written back, so the next run is fast.
    """
    from fmnist_core.photo import KEPT_IMAGENET, mean_over_views

    try:
        with connect(path) as connection:
            rows = [dict(row) for row in connection.execute(
                "SELECT id, label, views, features, imagenet_kept, backbone_sha256 FROM corrections "
                "WHERE status = 'accepted' ORDER BY id")]
    except FileNotFoundError:
        rows = []
    if not rows:
        return TrainingRows(np.zeros(0, int), np.zeros(0, str), np.zeros((0, 1280 * len(views)), np.float32),
                            np.zeros((0, len(KEPT_IMAGENET)), np.float32))
    current = backbone.record["sha256"] if backbone is not None else current_backbone_sha256()
    # Stale: made by another backbone, or before these views (or per-view ImageNet scores) were kept.
    stale = [row for row in rows if row["backbone_sha256"] != current or not set(views) <= set(row["views"].split(","))
             or len(row["imagenet_kept"]) != np.dtype("<f4").itemsize * len(KEPT_IMAGENET) * len(row["views"].split(","))]
    if stale and backbone is None:
        from fmnist_core.photo import Backbone

        backbone = Backbone()
    for row in stale:
        fresh = photo_features(photo_bytes(row["id"], path), backbone)
        row.update(views=",".join(fresh.views), features=fresh.pooled.astype("<f4").tobytes(),
                   imagenet_kept=fresh.imagenet_kept.astype("<f4").tobytes(), backbone_sha256=fresh.backbone_sha256)
        with connect(path, write=True) as connection:
            connection.execute("UPDATE corrections SET views = ?, features = ?, imagenet_kept = ?, "
                               "backbone_sha256 = ? WHERE id = ?", (row["views"], row["features"],
                                                                    row["imagenet_kept"], row["backbone_sha256"],
                                                                    row["id"]))
    features, kept = [], []
    for row in rows:
        stored = row["views"].split(",")
        chosen = [stored.index(view) for view in views]
        features.append(np.frombuffer(row["features"], "<f4").reshape(len(stored), -1)[chosen].ravel())
        # ImageNet's view of the photo: the mean over the head's views, as PhotoModel.answer_photo takes it.
        kept.append(mean_over_views(np.frombuffer(row["imagenet_kept"], "<f4").reshape(len(stored), -1)[chosen]))
    return TrainingRows(np.array([row["id"] for row in rows]), np.array([row["label"] for row in rows]),
                        np.stack(features), np.stack(kept).astype(np.float32))


def timed_add(data: bytes, correction: Correction, backbone, path: Path | None = None) -> tuple[int, float]:
    """add(), and the milliseconds it took (for the benchmark and the page's caption)."""
    started = time.perf_counter()
    correction_id = add(data, correction, backbone, path=path)
    return correction_id, (time.perf_counter() - started) * 1000
