"""A real SMTP server on 127.0.0.1 (or ::1) that answers chosen codes, and records every reply it sent.

The sender's or recipient's local part chooses the answer: `mail451@...` as sender gets 451 at
MAIL, `rcpt455@...` gets 455 at RCPT, `data554@...` gets 554 after the message body; anything else
is accepted. A suffix chooses the reply's shape: `rcpt550ml@` three lines (`550-...`), `rcpt550bad@`
a first line `550-...` followed by a line without a code (malformed; `ml` also after DATA). With
`greeting` set, the server answers every connection with that reply and closes (a 421 at connect). The record is the
ground truth of what a remote server said to the MTA, and of what became of each recipient.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

REPLY_TEXT = {
    "250": "2.0.0 Ok",
    "421": "4.7.0 Too many connections, slow down",
    "450": "4.2.1 Mailbox busy, try again",
    "451": "4.3.0 Local error in processing",
    "452": "4.3.1 Insufficient system storage",
    "455": "4.5.3 Server unable to accommodate parameters",
    "550": "5.1.1 No such user here",
    "552": "5.2.2 Mailbox full",
    "554": "5.7.1 Message refused",
}
_CHOICE = re.compile(r"<(mail|rcpt|data)(\d{3})(ml|bad)?@", re.I)
# Replies in a transaction that cannot carry mail (its MAIL refused, or no recipient accepted) are
# recorded under these names: MTAs log nothing about them. Postfix and Exim pipeline DATA with MAIL
# and RCPT, and close it with an empty message when nothing was accepted; the 250 to that ends nothing.
VOID = {"RCPT": "RCPT after refused MAIL", "DATA": "DATA without recipients"}


def refusal(code: str, shape: str = "") -> str:
    """The reply `code` in the chosen shape (lines joined by CRLF)."""
    enhanced, text = REPLY_TEXT[code].split(" ", 1)
    if shape == "ml":
        return f"{code}-{enhanced} This reply\r\n{code}-{enhanced} has three lines\r\n{code} {enhanced} {text}"
    if shape == "bad":
        return f"{code}-{enhanced} {text}\r\nthis line has no code"
    return f"{code} {enhanced} {text}"


def outcome(code: str) -> str:
    """What a reply makes of the recipients it answers."""
    return {"2": "sent", "4": "deferred", "5": "bounced"}[code[0]]


class SmtpSink:
    def __init__(self, greeting: str = "220 sink.test ESMTP", host: str = "127.0.0.1") -> None:
        self.greeting, self.host = greeting, host
        self.sent: Counter[tuple[str, str]] = Counter()  # (command, code) -> replies sent
        self.deliveries: list[tuple[str, str]] = []  # (recipient, sent | deferred | bounced) per answer
        self.messages = 0
        self.malformed = 0  # malformed replies sent to RCPT: their recipients are not in `deliveries`
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def _record(self, command: str, code: str) -> None:
        with self._lock:
            self.sent[(command, code)] += 1

    def _settle(self, recipients: list[str], code: str) -> None:
        with self._lock:
            self.deliveries += [(r, outcome(code)) for r in recipients]

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.sent)

    def outcomes(self) -> Counter[str]:
        """Deliveries as the replies decided them: one per recipient and answer (sent, deferred, bounced)."""
        with self._lock:
            return Counter(status for _rcpt, status in self.deliveries)

    def last_outcomes(self) -> dict[str, str]:
        """Each recipient's latest outcome."""
        with self._lock:
            return dict(self.deliveries)

    async def _reply(self, writer: asyncio.StreamWriter, command: str, line: str) -> None:
        self._record(command, line[:3])
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            code = self.greeting[:3]
            await self._reply(writer, "CONNECT", self.greeting)
            if code != "220":
                return
            data_code, data_shape, refused_mail, accepted = "250", "", "", []
            while line := (await reader.readline()).decode("ascii", "replace").rstrip("\r\n"):
                verb = line.split(" ", 1)[0].upper()
                m = _CHOICE.search(line)
                kind = m.group(1).lower() if m else ""
                if verb == "EHLO":
                    await self._reply(writer, "EHLO", "250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME")
                elif verb in ("HELO", "RSET", "NOOP"):
                    await self._reply(writer, verb, "250 2.0.0 Ok")
                    if verb == "RSET":
                        data_code, data_shape, refused_mail, accepted = "250", "", "", []
                elif verb == "MAIL":
                    data_code, data_shape, accepted = "250", "", []
                    refused_mail = m.group(2) if m and kind == "mail" else ""
                    reply = refusal(refused_mail, m.group(3) or "") if m and refused_mail else "250 2.1.0 Ok"
                    await self._reply(writer, "MAIL", reply)
                elif verb == "RCPT":
                    rcpt = line[line.find("<") + 1 : line.rfind(">")]
                    if refused_mail:
                        await self._reply(writer, VOID["RCPT"], "250 2.1.5 Ok")
                        self._settle([rcpt], refused_mail)
                    elif m and kind == "rcpt":
                        await self._reply(writer, "RCPT", refusal(m.group(2), m.group(3) or ""))
                        if m.group(3) == "bad":  # what a client makes of it is its own choice
                            with self._lock:
                                self.malformed += 1
                        else:
                            self._settle([rcpt], m.group(2))
                    else:
                        if m and kind == "data":
                            data_code, data_shape = m.group(2), m.group(3) or ""
                        accepted.append(rcpt)
                        await self._reply(writer, "RCPT", "250 2.1.5 Ok")
                elif verb == "DATA":
                    await self._reply(writer, "DATA354", "354 End data with <CR><LF>.<CR><LF>")
                    while (body := await reader.readline()) not in (b".\r\n", b".\n"):
                        if not body:  # the client went away: no message, no reply
                            return
                    if refused_mail or not accepted:
                        await self._reply(writer, VOID["DATA"], "250 2.0.0 Ok")
                    else:
                        with self._lock:
                            self.messages += 1
                        await self._reply(writer, "DATA", refusal(data_code, data_shape))
                        self._settle(accepted, data_code)
                    data_code, data_shape, refused_mail, accepted = "250", "", "", []
                elif verb == "QUIT":
                    await self._reply(writer, "QUIT", "221 2.0.0 Bye")
                    return
                else:
                    await self._reply(writer, "UNKNOWN", "502 5.5.2 Command not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def start(self) -> SmtpSink:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._session, self.host, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Close the listener and every open session (an MTA may keep one cached) before the loop ends."""

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in sessions:
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
