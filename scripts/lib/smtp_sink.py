"""The SMTP sink of the tests: a real SMTP server on loopback (aiosmtpd).

    python smtp_sink.py HOST PORT DIR

Every message it accepts is written to DIR/<n>.eml (atomically: written
under a temporary name, then renamed), with the envelope in two headers
added on top: X-Sink-Mail-From and X-Sink-Rcpt-To (comma-separated).
Recipients whose local part starts with `reject` are refused with a
permanent 550, those starting with `defer` with a transient 451, so the
tests can watch both kinds of refusal from a real server.
"""

import itertools
import os
import sys
import threading
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("defer"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%d-%s" % (next(self.counter), uuid.uuid4().hex)
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Sink-Mail-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Sink-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name + ".eml"))
        return "250 2.0.0 queued as " + name


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname=host, port=port)
    controller.start()
    print("smtp sink on %s:%d writing to %s" % (host, port, directory), flush=True)
    # The server runs in the controller's thread; SIGTERM ends the process.
    threading.Event().wait()


if __name__ == "__main__":
    main()
