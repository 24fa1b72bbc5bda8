"""Debian's Postfix configured from packaging/postfix/ in front of chatmail-imap, spoken to with smtplib:
submission on 587 (STARTTLS) and 465 (implicit TLS) only after a SASL login checked by chatmail-imap, each
user sending only as themselves; port 25 takes mail for local users from anyone and relays nothing."""

import email
import imaplib
import smtplib
import ssl

import pytest

from conftest import wait_until
from postfix_instance import available, running_mail_system
from test_imap import DOMAIN

pytestmark = pytest.mark.skipif(not available(), reason="needs root and Debian's postfix")

PASSWORD = "password123"
ALICE, BOB = "alice0001@" + DOMAIN, "bobby0001@" + DOMAIN



def submission(postfix):
    s = smtplib.SMTP("127.0.0.1", postfix.submission_port, timeout=30)
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo()
    return s


def submissions(postfix):
    s = smtplib.SMTP_SSL("127.0.0.1", postfix.smtps_port, timeout=30, context=ssl._create_unverified_context())
    s.ehlo()
    return s


def message(sender, recipient, subject):
    return (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}.test@{DOMAIN}>\r\n\r\nhello\r\n").encode()


def subjects(server, user):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.tls_port, ssl_context=ssl._create_unverified_context())
    try:
        m.login(user, PASSWORD)
        m.select("INBOX")
        found = set()
        for number in m.search(None, "ALL")[1][0].split():
            body = m.fetch(number, "(RFC822)")[1][0][1]
            found.add(email.message_from_bytes(body)["Subject"])
        return found
    finally:
        m.logout()


def test_postfix_requires_auth_and_users_send_only_as_themselves(supervisor_factory, tmp_path):
    with running_mail_system(supervisor_factory, tmp_path, "unix") as (server, postfix):
        # Both submission ports offer AUTH; a first login there creates the account, as IMAP's would.
        with submissions(postfix) as s:
            assert {"PLAIN", "LOGIN"} <= set(s.esmtp_features["auth"].upper().split())
            s.login(BOB, PASSWORD)
        with submission(postfix) as s:
            s.login(ALICE, PASSWORD)
            s.sendmail(ALICE, [BOB], message(ALICE, BOB, "one"))

        # A wrong password, and a new name that breaks the account rules.
        with submission(postfix) as s, pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(ALICE, "wrong-password")
        with submissions(postfix) as s, pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("short@" + DOMAIN, PASSWORD)
        # Logged in as Alice, sending as Bob.
        with submissions(postfix) as s:
            s.login(ALICE, PASSWORD)
            with pytest.raises(smtplib.SMTPRecipientsRefused, match="not owned by user"):
                s.sendmail(BOB, [ALICE], message(BOB, ALICE, "forged"))
        # No login, on either port, from loopback all the same.
        for connect in (submission, submissions):
            with connect(postfix) as s, pytest.raises(smtplib.SMTPRecipientsRefused, match="Access denied"):
                s.sendmail(ALICE, [BOB], message(ALICE, BOB, "anonymous"))
        # Before STARTTLS: no AUTH offered, no mail taken.
        with smtplib.SMTP("127.0.0.1", postfix.submission_port, timeout=30) as s:
            s.ehlo()
            assert not s.has_extn("auth")
            with pytest.raises(smtplib.SMTPSenderRefused, match="STARTTLS"):
                s.sendmail(ALICE, [BOB], message(ALICE, BOB, "cleartext"))

        # Port 25: mail from outside for a local user is delivered; relaying elsewhere is refused.
        with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as s:
            s.ehlo("mx.elsewhere.example")
            assert not s.has_extn("auth")
            s.sendmail("someone@elsewhere.example", [BOB], message("someone@elsewhere.example", BOB, "from-outside"))
            with pytest.raises(smtplib.SMTPRecipientsRefused, match="Relay access denied"):
                s.sendmail(BOB, ["someone@elsewhere.example"], message(BOB, "someone@elsewhere.example", "relay"))

        wait_until(lambda: subjects(server, BOB) == {"one", "from-outside"}, timeout=30,
                   what="both messages in Bob's INBOX")
        log = postfix.log()
        assert "sasl_method=PLAIN, sasl_username=alice0001@example.org" in log, log
        assert "authentication failed" in log, log
