"""Deterministic, realistic mail logs (Postfix, Exim, Sendmail, OpenSMTPD), with the replies each holds counted.

The expected counts come from the generator's own templates, not from the exporter's parser, so the
benchmark can check the exporter's counts against an independent source.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter

HOSTS = [f"mail{i}.example{i % 7}.net[192.0.2.{i % 250 + 1}]" for i in range(200)]


def sessions(rng: random.Random, stamp: str) -> tuple[list[str], Counter[str]]:
    """One inbound session and the delivery of its message: about 9 lines, like a small relay."""
    pid, spid = rng.randint(1000, 99999), rng.randint(1000, 99999)
    qid = "".join(rng.choice("0123456789ABCDEF") for _ in range(10))
    host = rng.choice(HOSTS)
    head = f"{stamp} mx postfix/smtpd[{pid}]: "
    lines = [head + f"connect from {host}"]
    exp: Counter[str] = Counter()
    roll = rng.random()
    if roll < 0.1:  # rejected recipient
        code, enh, text = rng.choice([("550", "5.1.1", "User unknown"), ("450", "4.7.1", "Greylisted"),
                                      ("455", "4.5.3", "Busy"), ("554", "5.7.1", "Relay access denied")])
        lines.append(head + f"NOQUEUE: reject: RCPT from {host}: {code} {enh} <u@example.org>: Recipient "
                     f"address rejected: {text}; from=<s@example.com> to=<u@example.org> proto=ESMTP helo=<h>")
        lines.append(head + f"disconnect from {host} ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4")
        exp.update({f"server RCPT {code} {enh}": 1, "server EHLO 250": 1, "server MAIL 250": 1,
                    "server QUIT 221": 1})
        return lines, exp
    lines += [
        head + f"{qid}: client={host}",
        f"{stamp} mx postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qid}@example.com>",
        f"{stamp} mx postfix/qmgr[900]: {qid}: from=<s@example.com>, size={rng.randint(900, 90000)}, nrcpt=1 "
        "(queue active)",
        head + f"disconnect from {host} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    ]
    exp.update({"server EHLO 250": 1, "server MAIL 250": 1, "server RCPT 250": 1, "server DATA 250": 1,
                "server QUIT 221": 1})
    out = f"{stamp} mx postfix/smtp[{spid}]: {qid}: to=<r@example.org>, relay=mx.example.org[198.51.100.7]:25, " \
          f"delay=0.{rng.randint(10, 99)}, delays=0.01/0/0.1/0.2, "
    if roll < 0.9:
        lines.append(out + f"dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {qid[::-1]})")
        exp.update({"client DATA 250 2.0.0": 1, "delivery sent": 1})
        lines.append(f"{stamp} mx postfix/qmgr[900]: {qid}: removed")
    elif roll < 0.97:
        lines.append(out + "dsn=4.5.3, status=deferred (host mx.example.org[198.51.100.7] said: 455 4.5.3 "
                     "Try again later (in reply to RCPT TO command))")
        exp.update({"client RCPT 455 4.5.3": 1, "delivery deferred": 1})
    else:
        lines.append(out + "dsn=5.1.1, status=bounced (host mx.example.org[198.51.100.7] said: 550 5.1.1 "
                     "No such user (in reply to RCPT TO command))")
        exp.update({"client RCPT 550 5.1.1": 1, "delivery bounced": 1})
        lines.append(f"{stamp} mx postfix/qmgr[900]: {qid}: removed")
    return lines, exp


def exim_sessions(rng: random.Random, stamp: str) -> tuple[list[str], Counter[str]]:
    """One inbound SMTP session and the delivery of its message, as Exim's mainlog has them."""
    day = "2026-11-28 " + stamp[-8:]
    mid = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(6))
    msgid = f"1{mid[1:]}-{rng.randint(0, 999999):06d}-{rng.randint(10, 99)}"
    host = rng.choice(HOSTS).replace("[", " [")
    lines = [f"{day} SMTP connection from {host}:{rng.randint(1024, 65535)} (TCP/IP connection count = 1)"]
    exp: Counter[str] = Counter()
    roll = rng.random()
    if roll < 0.1:
        code, enh, text = rng.choice([("550", "5.1.1", "User unknown"), ("451", "4.7.1", "Greylisted"),
                                      ("455", "4.5.3", "Busy")])
        lines.append(f"{day} H={host} F=<s@example.com> rejected RCPT <u@example.org>: {code} {enh} {text}")
        exp[f"server RCPT {code} {enh}"] += 1
    else:
        lines.append(f"{day} {msgid} <= s@example.com H={host} P=esmtp S={rng.randint(900, 90000)} id={mid}@x")
        exp["server DATA 250"] += 1
        if roll < 0.9:
            lines.append(f'{day} {msgid} => r@example.org R=dnslookup T=remote_smtp H=mx.example.org '
                         f'[198.51.100.7] C="250 2.0.0 OK id={mid}"')
            lines.append(f"{day} {msgid} Completed")
            exp.update({"client DATA 250 2.0.0": 1, "delivery sent": 1})
        else:
            lines.append(f"{day} {msgid} == r@example.org R=dnslookup T=remote_smtp defer (-44) H=mx.example.org "
                         "[198.51.100.7]: SMTP error from remote mail server after RCPT TO:<r@example.org>: "
                         "455 4.5.3 Try again later")
            exp.update({"client RCPT 455 4.5.3": 1, "delivery deferred": 1})
    lines.append(f"{day} SMTP connection from {host} closed by QUIT")
    exp["server QUIT 221"] += 1
    return lines, exp


def outcome(roll: float, sent: tuple[str, dict[str, int]], deferred: str, bounced: str) -> tuple[str, dict[str, int]]:
    """A relay attempt's line ending and what it counts: 90% sent, 7% deferred by a 455 4.5.3 (the
    command not logged), 3% bounced by a 550 5.1.1. The sent line's counts differ per MTA."""
    if roll < 0.9:
        return sent
    if roll < 0.97:
        return deferred, {"client 455 4.5.3": 1, "delivery deferred": 1}
    return bounced, {"client 550 5.1.1": 1, "delivery bounced": 1}


def sendmail_sessions(rng: random.Random, stamp: str) -> tuple[list[str], Counter[str]]:
    """One inbound session (TLS, envelope) and its relay to the next hop, as sm-mta logs them."""
    pid, dpid = rng.randint(1000, 99999), rng.randint(1000, 99999)
    qid = "5ASC" + "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
                           for _ in range(10))
    host = rng.choice(HOSTS).replace("[", " [")
    head = f"{stamp} mx sm-mta[{pid}]: "
    lines = [head + f"STARTTLS=server, relay={host}, version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, "
             "bits=256/256"]
    exp: Counter[str] = Counter()
    roll = rng.random()
    if roll < 0.1:
        code, enh = rng.choice([("550", "5.7.1"), ("450", "4.4.0"), ("553", "5.1.8")])
        lines.append(head + f"{qid}: ruleset=check_rcpt, arg1=<u@example.org>, relay={host}, reject={code} {enh} "
                     "<u@example.org>... Relaying denied")
        exp[f"server RCPT {code} {enh}"] += 1
        return lines, exp
    lines.append(head + f"{qid}: from=<s@example.com>, size={rng.randint(900, 90000)}, class=0, nrcpts=1, "
                 f"msgid=<{qid}@example.com>, proto=ESMTPS, daemon=MTA-v4, relay={host}")
    out = (f"{stamp} mx sm-mta[{dpid}]: {qid}: to=<r@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, "
           "pri=120000, relay=mx.example.org. [198.51.100.7], ")
    text, counted = outcome(
        roll,
        (f"dsn=2.0.0, stat=Sent (Ok: queued as {qid[::-1]})", {"delivery sent": 1}),
        "dsn=4.5.3, reply=455 4.5.3 Try again later, stat=Deferred: 455 4.5.3 Try again later",
        "dsn=5.1.1, reply=550 5.1.1 No such user, stat=User unknown",
    )
    lines.append(out + text)
    exp.update(counted)
    return lines, exp


def opensmtpd_sessions(rng: random.Random, stamp: str) -> tuple[list[str], Counter[str]]:
    """One inbound session and its relay to the next hop, as OpenSMTPD 6.x logs them."""
    sid, mid = (f"{rng.getrandbits(64):016x}" for _ in range(2))
    evpid = f"{rng.getrandbits(64):016x}"
    head = f"{stamp} mx smtpd[811]: {sid} smtp "
    ip = f"192.0.2.{rng.randint(1, 250)}"
    lines = [head + f"connected address={ip} host=mail.example{rng.randint(0, 6)}.net"]
    exp: Counter[str] = Counter({"server QUIT 221": 1})
    roll = rng.random()
    if roll < 0.1:
        code, enh = rng.choice([("550", "5.7.1"), ("451", "4.7.1"), ("455", "4.5.3")])
        lines.append(head + f'failed-command command="RCPT TO:<u@example.org>" result="{code} {enh} Delivery not '
                     'authorized, message refused"')
        lines.append(head + "disconnected reason=quit")
        exp[f"server RCPT {code} {enh}"] += 1
        return lines, exp
    lines += [
        head + f"message msgid={evpid[:8]} size={rng.randint(900, 90000)} nrcpt=1 proto=ESMTP",
        head + f"envelope evpid={evpid} from=<s@example.com> to=<r@example.org>",
        head + "disconnected reason=quit",
        f"{stamp} mx smtpd[812]: {mid} mta connecting address=smtp://198.51.100.7:25 host=mx.example.org",
    ]
    out = (f"{stamp} mx smtpd[812]: {mid} mta delivery evpid={evpid} from=<s@example.com> to=<r@example.org> "
           f'rcpt=<-> source="192.0.2.1" relay="198.51.100.7 (mx.example.org)" delay=1s ')
    text, counted = outcome(
        roll,
        (f'result="Ok" stat="250 2.0.0 Ok: queued as {mid[:8]}"', {"client DATA 250 2.0.0": 1, "delivery sent": 1}),
        'result="TempFail" stat="455 4.5.3 Try again later"',
        'result="PermFail" stat="550 5.1.1 No such user"',
    )
    lines.append(out + text)
    exp.update(counted)
    lines.append(f"{stamp} mx smtpd[812]: {mid} mta disconnected reason=quit messages=1")
    return lines, exp


SESSIONS = {"postfix": sessions, "exim": exim_sessions, "sendmail": sendmail_sessions,
            "opensmtpd": opensmtpd_sessions}


def generate(path: str, n_lines: int, seed: int = 5321, rfc3339: bool = False, mta: str = "postfix") -> dict[str, int]:
    rng = random.Random(seed)
    make = SESSIONS[mta]
    expected: Counter[str] = Counter()
    written = 0
    with open(path, "w") as f:
        second = 0
        while written < n_lines:
            second += 1
            stamp = (f"2026-11-28T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000+00:00"
                     if rfc3339 else f"Nov 28 {second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}")
            lines, exp = make(rng, stamp)
            f.write("\n".join(lines) + "\n")
            written += len(lines)
            expected.update(exp)
    expected["lines"] = written
    return dict(expected)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rfc3339", action="store_true")
    ap.add_argument("--mta", choices=tuple(SESSIONS), default="postfix")
    args = ap.parse_args()
    print(json.dumps(generate(args.path, args.lines, rfc3339=args.rfc3339, mta=args.mta), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
