"""Streaming the log to a SIEM, against a real rsyslog receiver over TLS (tests/services/syslog.py).

Each test sends with a HOSTNAME of its own and reads back what rsyslog parsed from its
messages (the receiver's JSON lines file): every test's log starts again at seq 0.
"""

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.db import connection

from strongroom.audit import context
from strongroom.audit.events import ActorKind, Outcome
from strongroom.audit.log import record
from strongroom.audit.models import AuditEntry, Cursor
from strongroom.audit.queries import as_record
from strongroom.audit.siem import (
    CONFIRM_AFTER,
    MAX_MESSAGE_BYTES,
    close_stream,
    retry_in,
    stream_pending,
    syslog_message,
)
from strongroom.demo.certs import CertPaths
from tests.conftest import missing
from tests.services.syslog import Syslog, syslog_available

SD_ELEMENT = re.compile(r'\[([^ \]"=]+)((?: [^ \]"=]+="(?:[^"\\]|\\.)*")*)\]')
SD_PARAM = re.compile(r' ([^ \]"=]+)="((?:[^"\\]|\\.)*)"')
SD_ESCAPE = re.compile(r'\\(["\\\]])')


@pytest.fixture(scope="session")
def syslog_server(service_dir, test_certs: CertPaths) -> Iterator[Syslog]:
    if not syslog_available():
        missing("rsyslog (Debian packages rsyslog rsyslog-gnutls)")
    server = Syslog(service_dir / "syslog", test_certs).start()
    yield server
    server.stop()


@dataclass
class Receiver:
    server: Syslog
    hostname: str

    def messages(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        return self.server.wait_for(self.hostname, count, timeout)

    def seqs(self, count: int) -> list[int]:
        return [int(sd_params(message["structured_data"])["seq"]) for message in self.messages(count)]


@pytest.fixture
def receiver(db, settings, syslog_server: Syslog) -> Iterator[Receiver]:
    """Streaming on, to the receiver's TLS port, under a host name of this test's own."""
    syslog_server.ensure_running()
    settings.AUDIT_SYSLOG = f"tls://localhost:{syslog_server.tls_port}"
    settings.AUDIT_SYSLOG_CA = str(syslog_server.certs.ca)
    settings.AUDIT_SYSLOG_CLIENT_CERT = ""
    settings.AUDIT_SYSLOG_CLIENT_KEY = ""
    settings.AUDIT_SYSLOG_HOSTNAME = f"test-{uuid.uuid4().hex[:12]}"
    yield Receiver(syslog_server, settings.AUDIT_SYSLOG_HOSTNAME)
    close_stream()


def sd_params(structured_data: str) -> dict[str, str]:
    """The params of the one SD element (fails on anything else), unescaped."""
    (element,) = [match for match in SD_ELEMENT.finditer(structured_data)]
    assert element.group(0) == structured_data, structured_data
    return {name: SD_ESCAPE.sub(r"\1", value) for name, value in SD_PARAM.findall(element.group(2))}


def payload(message: dict[str, Any]) -> dict[str, Any]:
    assert message["msg"].startswith("\ufeff")
    return json.loads(message["msg"].removeprefix("\ufeff"))


def siem_cursor() -> Cursor:
    return Cursor.objects.get(name="siem")


def stream_failures() -> list[dict[str, object]]:
    return [entry.details_dict() for entry in AuditEntry.objects.filter(code="audit.stream.failed").order_by("seq")]


def entry_with(**fields: Any) -> AuditEntry:
    """An entry as it is stored, not saved (for the message format alone)."""
    values = {
        "seq": 41,
        "at_us": 1_767_323_045_123_456,
        "code": "conversation.viewed",
        "outcome": "allowed",
        "actor_kind": "person",
        "actor_id": "u-7f3a",
        "target_kind": "conversation",
        "target_id": "c-91b2",
        "inbox_id": "i-5c1d",
        "ip": "192.0.2.7",
        "user_agent": "Mozilla/5.0",
        "details": '{"channel":"web"}',
    }
    return AuditEntry(**(values | fields))


# --- the message ------------------------------------------------------------------------------


def test_message_has_rfc5424_header_structured_data_and_json_body(settings):
    settings.AUDIT_SYSLOG_HOSTNAME = "helpdesk.example.com"

    message = syslog_message(entry_with())

    assert (
        message
        == (
            f"<109>1 2026-01-02T03:04:05.123456Z helpdesk.example.com strongroom {os.getpid()} conversation.viewed "
            '[strongroom@32473 seq="41" code="conversation.viewed" outcome="allowed" actor_kind="person" '
            'actor_id="u-7f3a" token_id="" target="conversation:c-91b2" inbox="i-5c1d" ip="192.0.2.7" '
            'user_agent="Mozilla/5.0"] \ufeff{"seq":41,"at":"2026-01-02T03:04:05.123456+00:00",'
            '"code":"conversation.viewed","outcome":"allowed","actor_kind":"person","actor_id":"u-7f3a",'
            '"token_id":"","target_kind":"conversation","target_id":"c-91b2","inbox_id":"i-5c1d",'
            '"ip":"192.0.2.7","user_agent":"Mozilla/5.0","details":{"channel":"web"}}'
        ).encode()
    )


@pytest.mark.parametrize(("outcome", "pri"), [("allowed", b"<109>"), ("denied", b"<108>"), ("failed", b"<108>")])
def test_denied_and_failed_entries_are_warnings_of_facility_log_audit(outcome, pri):
    message = syslog_message(entry_with(outcome=outcome))

    assert message.startswith(pri + b"1 ")


def test_msgid_is_the_event_code_cut_to_32_printable_characters():
    message = syslog_message(entry_with(code="a.very.long.event.code.that.goes.on.and.on"))

    assert message.split(b" ")[5] == b"a.very.long.event.code.that.goes"


@pytest.mark.parametrize("detail_bytes", [0, 50_000, 61_000, 1_000_000])
def test_message_is_never_longer_than_the_cap(detail_bytes):
    entry = entry_with(details=orjson.dumps({"fields": "x" * detail_bytes}).decode(), user_agent="\u00e9" * 256)

    message = syslog_message(entry)

    assert len(message) <= MAX_MESSAGE_BYTES
    assert orjson.loads(message.split(b"\xef\xbb\xbf", 1)[1])["seq"] == 41


def test_control_characters_in_a_user_agent_cannot_split_the_message():
    message = syslog_message(entry_with(user_agent="curl\r\n<13>1 - forged - - - - hello"))

    assert b"\n" not in message and b"\r" not in message
    assert 'user_agent="curl\ufffd\ufffd<13>1 - forged - - - - hello"'.encode() in message


# --- delivery to rsyslog ----------------------------------------------------------------------


def test_entries_arrive_as_rfc5424_with_seq_in_structured_data(receiver, fill_log):
    fill_log(3)

    sent = stream_pending()

    messages = receiver.messages(3)
    entry = AuditEntry.objects.get(seq=0)
    assert sent == 3
    assert [sd_params(message["structured_data"])["seq"] for message in messages] == ["0", "1", "2"]
    first = messages[0]
    assert (first["input"], first["pri"], first["version"]) == ("tls", "109", "1")
    assert (first["hostname"], first["app_name"], first["procid"]) == (
        receiver.hostname,
        "strongroom",
        str(os.getpid()),
    )
    assert first["msgid"] == "conversation.viewed"
    assert first["timestamp"] == entry.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert sd_params(first["structured_data"]) == {
        "seq": "0",
        "code": "conversation.viewed",
        "outcome": "allowed",
        "actor_kind": "person",
        "actor_id": "p-1",
        "token_id": "",
        "target": "conversation:c-0",
        "inbox": "",
        "ip": "192.0.2.7",
        "user_agent": "Test/1.0",
    }
    assert payload(first) == json.loads(orjson.dumps(as_record(entry)))


def test_cursor_moves_only_when_a_later_check_confirms_delivery(receiver, fill_log):
    fill_log(3)

    stream_pending()
    position_after_writing = siem_cursor().position
    time.sleep(CONFIRM_AFTER)
    sent_later = stream_pending()

    assert position_after_writing == 0
    assert sent_later == 0
    assert siem_cursor().position == 3
    assert receiver.seqs(3) == [0, 1, 2]


def test_closing_the_stream_confirms_what_the_receiver_read(receiver, fill_log):
    fill_log(4)

    stream_pending()
    close_stream()

    assert siem_cursor().position == 4
    assert receiver.seqs(4) == [0, 1, 2, 3]


def test_outage_loses_nothing_and_is_recorded_once(receiver, fill_log):
    fill_log(5)
    stream_pending()

    receiver.server.stop()
    fill_log(3)
    sent_during_outage = [stream_pending()]
    time.sleep(retry_in())
    sent_during_outage.append(stream_pending())
    during = siem_cursor()
    receiver.server.start()
    time.sleep(retry_in())
    sent_after = stream_pending()
    close_stream()

    total = AuditEntry.objects.count()
    assert total == 9  # 8 recorded + the one audit.stream.failed
    assert sent_during_outage == [0, 0]
    assert during.failing_since is not None
    assert during.last_error == "the receiver refused the connection"
    assert during.position == 0
    assert stream_failures() == [{"error": "refused"}]
    assert sent_after == total
    assert set(receiver.seqs(total + 5)) == set(range(total))
    assert siem_cursor().position == total
    assert siem_cursor().failing_since is None


def test_entries_written_to_a_receiver_that_dies_before_reading_them_are_sent_again(receiver, fill_log):
    fill_log(3)
    stream_pending()
    receiver.messages(3)
    receiver.server.freeze()
    fill_log(2)
    sent_while_frozen = stream_pending()

    receiver.server.crash()
    receiver.server.start()
    sent_after_restart = stream_pending()
    close_stream()

    assert sent_while_frozen == 2
    assert sent_after_restart == 5
    assert set(receiver.seqs(8)) == {0, 1, 2, 3, 4}
    assert siem_cursor().position == 5
    assert stream_failures() == []


@pytest.mark.parametrize("trust", ["another_ca", "system_store"])
def test_receiver_with_an_untrusted_certificate_gets_nothing(receiver, fill_log, settings, trust):
    settings.AUDIT_SYSLOG_CA = {"another_ca": str(receiver.server.elsewhere.ca), "system_store": ""}[trust]
    fill_log(2)

    sent = stream_pending()

    assert sent == 0
    assert siem_cursor().position == 0
    assert siem_cursor().failing_since is not None
    assert siem_cursor().last_error.startswith("the receiver's certificate was refused")
    assert stream_failures() == [{"error": "tls_certificate"}]
    assert receiver.messages(1, timeout=0.5) == []


def test_receiver_with_a_certificate_for_another_host_name_gets_nothing(receiver, fill_log, settings):
    settings.AUDIT_SYSLOG = f"tls://localhost:{receiver.server.elsewhere_port}"
    settings.AUDIT_SYSLOG_CA = str(receiver.server.elsewhere.ca)
    fill_log(2)

    sent = stream_pending()

    assert sent == 0
    assert siem_cursor().position == 0
    assert stream_failures() == [{"error": "tls_hostname"}]
    assert receiver.messages(1, timeout=0.5) == []


def test_user_agent_with_quote_bracket_and_backslash_survives_sd_escaping(receiver):
    user_agent = 'Evil"] [strongroom@32473 seq="999" code="auth.signout"] \\'
    source = context.Source(actor_kind=ActorKind.PERSON, actor_id="p-2", ip="192.0.2.8", user_agent=user_agent)
    with context.acting(source):
        record("conversation.viewed", target=("conversation", "c-1"), details={"channel": "web"})

    stream_pending()

    (message,) = receiver.messages(1)
    assert sd_params(message["structured_data"])["user_agent"] == user_agent
    assert sd_params(message["structured_data"])["seq"] == "0"
    assert payload(message)["user_agent"] == user_agent


def test_entries_near_and_over_the_cap_arrive_whole_and_never_longer_than_the_cap(receiver):
    # Only a person writing to the database directly could store details this large.
    near_cap = {"fields": ["x" * 200] * 298}
    for seq, details in enumerate([near_cap, {"fields": ["x" * 200] * 2_000}]):
        AuditEntry.objects.create(
            seq=seq,
            at_us=1_767_323_045_123_456,
            code="conversation.viewed",
            outcome="allowed",
            actor_kind="person",
            actor_id="p-1",
            details=orjson.dumps(details).decode(),
            leaf_hash=b"\0" * 32,
        )

    stream_pending()

    whole, cut = receiver.messages(2)
    assert MAX_MESSAGE_BYTES - 2_000 < len(whole["raw_bytes"].encode()) <= MAX_MESSAGE_BYTES
    assert payload(whole)["details"] == near_cap
    assert len(cut["raw_bytes"].encode()) <= MAX_MESSAGE_BYTES
    assert (payload(cut)["seq"], payload(cut)["truncated"], payload(cut)["details"]) == (1, True, {})


def test_mutual_tls_client_certificate_is_presented(receiver, fill_log, settings):
    settings.AUDIT_SYSLOG = f"tls://localhost:{receiver.server.mtls_port}"
    settings.AUDIT_SYSLOG_CLIENT_CERT = str(receiver.server.client.cert)
    settings.AUDIT_SYSLOG_CLIENT_KEY = str(receiver.server.client.key)
    fill_log(2)

    sent = stream_pending()

    assert sent == 2
    assert [message["input"] for message in receiver.messages(2)] == ["mtls", "mtls"]


def test_receiver_refusing_a_client_without_certificate_keeps_the_cursor(receiver, fill_log, settings):
    settings.AUDIT_SYSLOG = f"tls://localhost:{receiver.server.mtls_port}"
    fill_log(2)

    sent = stream_pending()

    assert sent == 0
    assert siem_cursor().position == 0
    assert stream_failures() == [{"error": "rejected"}]
    assert receiver.messages(1, timeout=0.5) == []


def test_streaming_is_off_without_a_receiver_address(settings, fill_log):
    settings.AUDIT_SYSLOG = ""
    fill_log(2)

    sent = stream_pending()

    assert sent == 0
    assert not Cursor.objects.filter(name="siem").exists()


def test_threads_streaming_at_once_send_each_entry_once(receiver, fill_log, transactional_db):
    fill_log(50)
    counts: list[int] = []

    def stream() -> None:
        counts.append(stream_pending(limit=20))
        connection.close()

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_stream()

    assert sorted(counts) == [0, 10, 20, 20]
    assert sorted(receiver.seqs(50)) == list(range(50))
    assert siem_cursor().position == 50


def test_failure_entry_is_streamed_after_recovery_with_severity_warning(receiver, fill_log, settings):
    settings.AUDIT_SYSLOG_CA = str(receiver.server.elsewhere.ca)
    fill_log(1)
    stream_pending()
    settings.AUDIT_SYSLOG_CA = str(receiver.server.certs.ca)

    stream_pending()

    failure = receiver.messages(2)[1]
    assert (failure["msgid"], failure["pri"]) == ("audit.stream.failed", "108")
    assert sd_params(failure["structured_data"])["outcome"] == Outcome.FAILED
    assert payload(failure)["details"] == {"error": "tls_certificate"}
