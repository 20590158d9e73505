"""The concurrent object copier of backup sets (workflows/backup/objects.py) on a real S3 server
(SeaweedFS): server-side copies move no byte through kestra-ops, streamed ones keep metadata,
reruns skip what is done, Ctrl-C/stop leaves only whole objects recorded."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest

from kestra_ops.adapters.storage import Storage
from kestra_ops.errors import OperationFailed, PermissionDenied
from kestra_ops.workflows.backup import objects
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS

SRC, DST = "kestra-src", "kestra-dst"


@pytest.fixture
def sw(seaweed):  # noqa: F811 - the imported fixture
    for b in (SRC, DST):
        seaweed.remove_bucket(b)
        seaweed.client().make_bucket(b)
    yield seaweed
    for b in (SRC, DST):
        seaweed.remove_bucket(b)


def storage(sw) -> Storage:
    return Storage(sw.endpoint, sw.root_user, sw.root_password, secure=False)


def put(sw, bucket, key, data: bytes, **kw) -> None:
    sw.client().put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def fill(sw, n: int, prefix: str = "main/company/team/_kv/") -> dict[str, bytes]:
    data = {f"{prefix}k{i:04d}.ion": f"value {i}".encode() * (1 + i % 7) for i in range(n)}
    for key, value in data.items():
        put(sw, SRC, key, value)
    return data


class Counting(Storage):
    """Counts the bytes read through the streaming path (open_object)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.read = 0

    def open_object(self, bucket, key):
        headers, chunks = super().open_object(bucket, key)

        def counted():
            for c in chunks:
                self.read += len(c)
                yield c
        return headers, counted()


def test_server_side_copy_moves_no_bytes_and_records_every_object(sw):
    data = fill(sw, 60)
    src = Counting(sw.endpoint, sw.root_user, sw.root_password, secure=False)
    dst = storage(sw)
    got = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST,
                               "set/storage/main/", src_prefix="main/")
    assert src.read == 0 and got.streamed_bytes == 0
    assert got.mode == "server-side" and got.copied == 60 and got.skipped == 0
    assert [o["key"] for o in got.objects] == sorted(k[len("main/"):] for k in data)
    assert got.bytes == sum(len(v) for v in data.values())
    for item in got.objects[:5]:
        body = sw.client().get_object(DST, "set/storage/main/" + item["key"]).read()
        assert body == data["main/" + item["key"]]
        assert item["etag"] == hashlib.md5(body).hexdigest()


def test_streamed_copy_keeps_metadata_and_records_sha256(sw):
    put(sw, SRC, "main/ns/_kv/a.ion", b"hello", content_type="application/ion",
        metadata={"description": "kept"})
    big = bytes(range(256)) * (40 * 1024)  # 10 MiB: a multipart upload at 8 MiB parts
    put(sw, SRC, "main/ns/_files/big.bin", big)
    src, dst = storage(sw), storage(sw)
    got = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "s/",
                               src_prefix="main/", server_side=False)
    assert got.mode == "streamed" and got.streamed_bytes == len(big) + 5
    by_key = {o["key"]: o for o in got.objects}
    assert by_key["ns/_kv/a.ion"]["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert by_key["ns/_files/big.bin"]["sha256"] == hashlib.sha256(big).hexdigest()
    stat = sw.client().stat_object(DST, "s/ns/_kv/a.ion")
    assert stat.content_type == "application/ion"
    assert stat.metadata.get("x-amz-meta-description") == "kept"
    assert sw.client().get_object(DST, "s/ns/_files/big.bin").read() == big


def test_access_denied_on_server_side_falls_back_to_streaming(sw):
    fill(sw, 10)

    class NoRead(Storage):
        def copy_object(self, *a, **kw):
            raise PermissionDenied("copy: AccessDenied")

    src = storage(sw)
    dst = NoRead(sw.endpoint, sw.root_user, sw.root_password, secure=False)
    got = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "x/",
                               src_prefix="main/")
    assert got.copied == 10 and got.streamed == 10 and got.mode == "streamed"
    assert len(list(dst.iter_entries(DST, "x/"))) == 10


def test_rerun_skips_objects_already_copied(sw):
    fill(sw, 30)
    src, dst = storage(sw), storage(sw)
    first = objects.copy_objects(src, SRC, list(src.iter_entries(SRC, "main/"))[:12], dst, DST,
                                 "r/", src_prefix="main/")
    assert first.copied == 12
    again = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "r/",
                                 src_prefix="main/")
    assert (again.copied, again.skipped, len(again.objects)) == (18, 12, 30)
    # an object at the destination with other bytes is copied again, not skipped
    put(sw, DST, "r/company/team/_kv/k0000.ion", b"tampered")
    third = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "r/",
                                 src_prefix="main/")
    assert (third.copied, third.skipped) == (1, 29)
    assert sw.client().get_object(DST, "r/company/team/_kv/k0000.ion").read() == b"value 0"


def test_stop_records_only_finished_objects_and_a_rerun_completes(sw):
    fill(sw, 80)
    src, dst = storage(sw), storage(sw)
    stop = threading.Event()

    def progress(done, _bytes):
        if done >= 10:
            stop.set()

    got = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "p/",
                               src_prefix="main/", workers=4, progress=progress, stop=stop)
    assert got.stopped and 10 <= len(got.objects) < 80
    present = {e.name[len("p/"):] for e in dst.iter_entries(DST, "p/")}
    assert {o["key"] for o in got.objects} == present  # recorded == whole objects there
    rest = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "p/",
                                src_prefix="main/")
    assert rest.skipped == len(got.objects) and len(rest.objects) == 80


def test_an_object_deleted_after_the_listing_is_left_out(sw):
    fill(sw, 20)
    src, dst = storage(sw), storage(sw)
    listing = list(src.iter_entries(SRC, "main/"))
    sw.client().remove_object(SRC, listing[3].name)  # listed, then purged
    got = objects.copy_objects(src, SRC, listing, dst, DST, "f/", src_prefix="main/")
    assert (got.copied, got.vanished) == (19, 1)
    assert listing[3].name[len("main/"):] not in {o["key"] for o in got.objects}


def test_failing_copies_raise_after_the_others_finish(sw):
    fill(sw, 20)

    class FailOne(Storage):  # the injected fault: one object's copy fails
        def copy_object(self, src_bucket, src_key, *a, **kw):
            if src_key.endswith("k0007.ion"):
                raise OperationFailed(f"copy {src_key}: InternalError")
            return super().copy_object(src_bucket, src_key, *a, **kw)

    src = storage(sw)
    dst = FailOne(sw.endpoint, sw.root_user, sw.root_password, secure=False)
    with pytest.raises(OperationFailed) as err:
        objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "f/",
                             src_prefix="main/", workers=2)
    assert "1 object(s) not copied" in str(err.value) and "k0007.ion" in str(err.value)
    assert "run it again" in err.value.hint
    assert len(list(dst.iter_entries(DST, "f/"))) >= 7  # those before it are whole and kept


def test_copy_back_puts_the_set_back_and_refuses_a_tampered_object(sw):
    data = fill(sw, 15)
    src, dst = storage(sw), storage(sw)
    backed = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), src, DST,
                                  "b/storage/main/", src_prefix="main/")
    back = objects.copy_back(dst, DST, "b/storage/main/", backed.objects, dst, "kestra-dst",
                                   "restored/main/")
    assert back.copied == 15
    for key, value in data.items():
        assert sw.client().get_object(DST, "restored/" + key).read() == value
    again = objects.copy_back(dst, DST, "b/storage/main/", backed.objects, dst, DST,
                                    "restored/main/")
    assert again.skipped == 15 and again.copied == 0
    put(sw, DST, "b/storage/main/company/team/_kv/k0001.ion", b"evil bytes")
    with pytest.raises(OperationFailed) as err:
        objects.copy_back(dst, DST, "b/storage/main/", backed.objects, dst, DST,
                                "other/main/")
    assert "k0001.ion" in str(err.value)


def test_folder_markers_are_made_after_the_objects_below_them(sw):
    """Kestra's storage writes a zero-byte marker per folder; the copy makes each one after
    every object below it (one at a time), so a concurrent child PUT never races it away: the
    set lists every marker, and the markers are the last writes."""
    data = fill(sw, 40, "main/company/team/_files/")
    for folder in ("main/company/", "main/company/team/", "main/company/team/_files/"):
        put(sw, SRC, folder, b"", content_type="application/x-directory")

    class Recording(Storage):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.keys, self.lock = [], threading.Lock()

        def put_stream(self, bucket, key, *a, **kw):
            with self.lock:
                self.keys.append(key)
            return super().put_stream(bucket, key, *a, **kw)

        def copy_object(self, src_bucket, src_key, bucket, key, **kw):
            with self.lock:
                self.keys.append(key)
            return super().copy_object(src_bucket, src_key, bucket, key, **kw)

    src = storage(sw)
    dst = Recording(sw.endpoint, sw.root_user, sw.root_password, secure=False)
    got = objects.copy_objects(src, SRC, src.iter_entries(SRC, "main/"), dst, DST, "set/",
                               src_prefix="main/", workers=8)
    markers = ["set/company/", "set/company/team/", "set/company/team/_files/"]
    assert sorted(dst.keys[-3:]) == markers and len(dst.keys) == len(data) + 3
    listed = {o.object_name for o in sw.client().list_objects(DST, "set/", recursive=True)}
    assert set(markers) <= listed and len(listed) == len(data) + 3
    assert {o["key"] for o in got.objects} >= {"company/team/_files/"}
