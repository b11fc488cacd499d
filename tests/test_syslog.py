"""The syslog receiver under load and under hostile clients: loss is counted, never silent, and
silent connections cannot lock senders out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conftest import free_port, wait_for
from smtp_reply_exporter.sources.syslog import MAX_CONNECTIONS, MAX_PER_PEER, SyslogSource, kernel_drops
from smtp_reply_exporter.stats import SourceStats
from smtp_reply_exporter.syslog_server import to_line

MSG = "NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"
RFC3164 = f"<22>Nov 28 12:00:00 mx postfix/smtpd[123]: {MSG}".encode()


def test_a_udp_datagram_of_60_kib_is_read_whole(exporter):
    port = free_port()
    exp = exporter("--syslog.listen-address", f"udp://127.0.0.1:{port}")
    padded = f"<22>Nov 28 12:00:00 mx postfix/smtpd[123]: {MSG.replace('Busy', 'Busy' + 'y' * 60_000)}".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(padded, ("127.0.0.1", port))
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") == 1, what="the datagram")
    assert exp.value("smtp_replies_total", code="455") == 1
    assert exp.value("smtp_exporter_bytes_read_total") > 60_000  # all of it, not the first 8 KiB


def test_every_udp_datagram_is_counted_or_counted_as_lost(exporter):
    port = free_port()
    exp = exporter("--syslog.listen-address", f"udp://127.0.0.1:{port}")
    source = f"syslog:udp://127.0.0.1:{port}"
    sent = 30_000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(sent):  # as fast as one sender can: some may be lost, none silently
            udp.sendto(RFC3164, ("127.0.0.1", port))

    def accounted() -> float:
        return (exp.value("smtp_exporter_lines_read_total", source=source)
                + exp.value("smtp_exporter_lines_bad_total", source=source, reason="dropped")
                + exp.value("smtp_exporter_syslog_udp_kernel_drops_total", source=source))

    wait_for(lambda: accounted() == sent, what=f"{sent} datagrams read or counted as lost")
    assert exp.value("smtp_replies_total", code="455") == exp.value("smtp_exporter_lines_read_total", source=source)


def test_the_kernels_drops_are_read_for_the_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        sink.bind(("127.0.0.1", 0))
        inode = __import__("os").fstat(sink.fileno()).st_ino
        assert kernel_drops("/proc/net/udp", inode) == 0
        for _ in range(200):  # never read: the buffer fills and the kernel drops the rest
            sender.sendto(b"x" * 1000, sink.getsockname())
        drops = kernel_drops("/proc/net/udp", inode)
    assert drops is not None and 0 < drops < 200


def test_silent_tcp_connections_give_way_to_a_new_sender(exporter):
    port = free_port()
    exp = exporter("--syslog.listen-address", f"tcp://127.0.0.1:{port}")
    silent = []
    try:
        for i in range(MAX_CONNECTIONS):  # spread over addresses, so the global cap is what fills
            s = socket.socket()
            s.bind((f"127.0.0.{2 + i % 8}", 0))
            s.connect(("127.0.0.1", port))
            silent.append(s)
        with socket.create_connection(("127.0.0.1", port)) as sender:
            sender.sendall(RFC3164 + b"\n")
            wait_for(lambda: exp.value("smtp_replies_total", code="455") == 1, what="the new sender counted")
    finally:
        for s in silent:
            s.close()


@pytest.fixture
def receiver() -> Iterator[SyslogSource]:
    src = SyslogSource("tcp://127.0.0.1:0", SourceStats())
    src.idle_grace = 3600.0  # every connection that has sent something stays busy
    src.start(threading.Event())
    yield src
    src.stop()


def lines_of(src: SyslogSource) -> int:
    return sum(lines.data.count(b"\n") for lines in src.poll())


def wait_lines(src: SyslogSource, n: int) -> None:
    """Until `n` lines have been handed over, polled as the ingest thread would."""
    got = 0

    def all_there() -> bool:
        nonlocal got
        got += lines_of(src)
        return got == n

    wait_for(all_there, what=f"{n} lines")


def busy(port: int, address: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((address, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(RFC3164 + b"\n")
    return s


def closed_by_peer(s: socket.socket) -> bool:
    s.settimeout(10)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_one_address_gets_at_most_its_share_of_connections(receiver):
    port = receiver.port
    held = [busy(port) for _ in range(MAX_PER_PEER)]
    try:
        wait_lines(receiver, MAX_PER_PEER)
        extra = busy(port)
        assert closed_by_peer(extra)
        extra.close()
        assert receiver.stats.connections_refused == 1
        other = busy(port, "127.0.0.2")  # another address still gets in
        wait_for(lambda: lines_of(receiver) == 1, what="the other address's message")
        other.close()
    finally:
        for s in held:
            s.close()


def test_the_global_cap_refuses_when_no_connection_is_idle(receiver):
    port = receiver.port
    held = [busy(port, f"127.0.0.{2 + i % 8}") for i in range(MAX_CONNECTIONS)]
    try:
        wait_lines(receiver, MAX_CONNECTIONS)
        extra = busy(port, "127.0.0.99")
        assert closed_by_peer(extra)
        extra.close()
        assert receiver.stats.connections_refused == 1
    finally:
        for s in held:
            s.close()


def test_a_connection_that_sends_nothing_is_closed_soon():
    src = SyslogSource("tcp://127.0.0.1:0", SourceStats())
    src.silent_timeout = 0.2
    src.start(threading.Event())
    try:
        with socket.create_connection(("127.0.0.1", src.port)) as s:
            assert closed_by_peer(s)
    finally:
        src.stop()


@pytest.mark.parametrize("sd", [b"-", b'[x@1 a="b\\]"]', b'[x@1 a="b"][y@2]'])
def test_rfc5424_structured_data_is_skipped_with_escaped_brackets(sd):
    assert to_line(b"<22>1 2026-12-01T12:00:00Z mx postfix/smtpd 42 - " + sd + b" NOQUEUE: reject") == (
        b"2026-12-01T12:00:00Z mx postfix/smtpd[42]: NOQUEUE: reject")


@pytest.mark.parametrize("tail", [b"[a]" * 20000 + b"x", b"[" + b"\\]" * 30000, b"[a" * 30000, b"[a][" * 15000])
def test_crafted_structured_data_of_64_kib_is_read_as_rfc3164_text_not_matched(tail):
    # unbalanced or trailing brackets: not RFC 5424, so the message is kept whole as RFC 3164 text
    message = b"<22>1 t h a p m " + tail
    assert to_line(message) == message[4:]
