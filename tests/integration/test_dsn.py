#!/usr/bin/python3
"""DSNs composed by proxy/dsn.c, read by another implementation: the
tests/unit/dsn_print helper writes one in queue wire form; each test
un-stuffs it as an SMTP server would and parses it with Python's email
package, then checks the multipart/report structure and the Action and
Status of every recipient."""
import email
import subprocess

from sluicetest import *


def _print_bin():
    path = sluice_binary().resolve().parent.parent / "tests" / "unit" / "dsn_print"
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def compose(scenario):
    """The DSN for scenario, un-stuffed (the message the recipient gets)."""
    out = subprocess.run([str(_print_bin()), scenario], capture_output=True, timeout=30)
    assert out.returncode == 0, (scenario, out.stderr)
    raw = out.stdout
    assert raw.endswith(b"\r\n"), raw[-20:]
    lines = raw[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line and len(line) <= 998, line
        assert line != b".", "a lone dot would end DATA"
    body = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines) + b"\r\n"
    return raw, email.message_from_bytes(body)


def report_parts(msg):
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["From"] == '"Mail Delivery System" <MAILER-DAEMON@mx.test>'
    assert msg["To"] == "<alice@example.org>"
    assert msg["Message-ID"] and msg["Date"]
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert not msg.defects, msg.defects
    return parts


def recipients(status_part):
    """[(Final-Recipient, Action, Status, block)] from message/delivery-status."""
    blocks = status_part.get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mx.test", blocks[0].items()
    return [(b["Final-Recipient"], b["Action"], b["Status"], b) for b in blocks[1:]]


def test_bounce_two_recipients():
    raw, msg = compose("bounce")
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    text, status, headers = report_parts(msg)
    assert text.get_content_type() == "text/plain"
    assert "bob@example.net" in text.get_payload()
    assert status.get_content_type() == "message/delivery-status"
    assert status.get_payload()[0]["Original-Envelope-Id"] == "envid-42"
    rcpts = recipients(status)
    assert [r[:3] for r in rcpts] == [
        ("rfc822; bob@example.net", "failed", "5.1.1"),
        ("rfc822; carol@example.net", "failed", "5.1.10")], rcpts
    bob, carol = rcpts[0][3], rcpts[1][3]
    assert bob["Remote-MTA"] == "dns; mx.example.net"
    assert bob["Diagnostic-Code"].startswith("smtp; 550 5.1.1"), bob["Diagnostic-Code"]
    assert bob["Last-Attempt-Date"]
    assert carol["Original-Recipient"] == "rfc822;carol@example.net"
    assert carol["Remote-MTA"] is None
    # the original's headers, not its body
    assert headers.get_content_type() == "text/rfc822-headers"
    h = headers.get_payload()
    assert "Subject: quarterly report" in h and "Hello Bob" not in h, h


def test_partial_failure_names_only_the_failed():
    raw, msg = compose("partial")
    rcpts = recipients(report_parts(msg)[1])
    assert [r[:3] for r in rcpts] == [("rfc822; bob@example.net", "failed", "5.1.1")]
    assert b"carol" not in raw


def test_delay_warning():
    raw, msg = compose("delay")
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    rcpts = recipients(report_parts(msg)[1])
    assert [r[:3] for r in rcpts] == [("rfc822; bob@example.net", "delayed", "4.4.1")]
    assert rcpts[0][3]["Will-Retry-Until"]


def test_hostile_reply_cannot_break_the_structure():
    raw, msg = compose("hostile")
    parts = report_parts(msg)
    rcpts = recipients(parts[1])
    assert [r[:3] for r in rcpts] == [("rfc822; bob@example.net", "failed", "5.1.1")]
    block = rcpts[0][3]
    assert block["Bcc"] is None and msg["Bcc"] is None
    assert parts[0]["Content-Type"].startswith("text/plain")
    # folded, but one field: the reply's lines joined, control bytes replaced
    diag = " ".join(block["Diagnostic-Code"].split())
    assert diag.startswith("smtp; 550-5.1.1 no such user 550 5.1.1 Bcc: x@y"), diag
    assert all(b < 0x80 for b in raw)


def test_ret_full_returns_the_message():
    raw, msg = compose("full")
    parts = report_parts(msg)
    assert parts[2].get_content_type() == "message/rfc822"
    orig = parts[2].get_payload()[0]
    assert orig["Subject"] == "quarterly report"
    body = orig.get_payload()
    assert "Hello Bob," in body and ".this line began with a dot." in body, body
    assert "..this line" not in body


def test_smtputf8_recipient():
    raw, msg = compose("utf8")
    assert msg.get_content_type() == "multipart/report"
    parts = msg.get_payload()
    assert parts[1].get_content_type() == "message/global-delivery-status"
    assert "Final-Recipient: utf-8; j\u00f6rg@example.net" in raw.decode("utf-8")


run_tests(globals())
