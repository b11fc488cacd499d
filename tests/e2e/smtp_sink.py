"""A real SMTP server on 127.0.0.1 that answers chosen codes, and records every reply it sent.

The sender's or recipient's local part chooses the answer: `mail451@...` as sender gets 451 at
MAIL, `rcpt455@...` gets 455 at RCPT, `data554@...` gets 554 after the message body; anything else
is accepted. With `greeting` set, the server
answers every connection with that reply and closes (a 421 at connect). The record is the
ground truth of what a remote server said to Postfix.
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
_CHOICE = re.compile(r"<(mail|rcpt|data)(\d{3})@", re.I)


class SmtpSink:
    def __init__(self, greeting: str = "220 sink.test ESMTP") -> None:
        self.greeting = greeting
        self.sent: Counter[tuple[str, str]] = Counter()  # (command, code) -> replies sent
        self.messages = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def _record(self, command: str, code: str) -> None:
        with self._lock:
            self.sent[(command, code)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.sent)

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
            data_code = "250"
            while line := (await reader.readline()).decode("ascii", "replace").rstrip("\r\n"):
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    await self._reply(writer, "EHLO", "250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME")
                elif verb in ("HELO", "RSET", "NOOP"):
                    await self._reply(writer, verb, "250 2.0.0 Ok")
                    data_code = "250" if verb == "RSET" else data_code
                elif verb == "MAIL":
                    m = _CHOICE.search(line)
                    refuse = m.group(2) if m and m.group(1).lower() == "mail" else ""
                    await self._reply(writer, "MAIL", f"{refuse} {REPLY_TEXT[refuse]}" if refuse else "250 2.1.0 Ok")
                elif verb == "RCPT":
                    m = _CHOICE.search(line)
                    if m and m.group(1).lower() == "rcpt":
                        await self._reply(writer, "RCPT", f"{m.group(2)} {REPLY_TEXT[m.group(2)]}")
                    else:
                        if m and m.group(1).lower() == "data":
                            data_code = m.group(2)
                        await self._reply(writer, "RCPT", "250 2.1.5 Ok")
                elif verb == "DATA":
                    await self._reply(writer, "DATA354", "354 End data with <CR><LF>.<CR><LF>")
                    while (await reader.readline()) not in (b".\r\n", b".\n", b""):
                        pass
                    with self._lock:
                        self.messages += 1
                    await self._reply(writer, "DATA", f"{data_code} {REPLY_TEXT[data_code]}")
                    data_code = "250"
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
            self._server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
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
