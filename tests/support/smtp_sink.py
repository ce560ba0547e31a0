"""A real SMTP server (aiosmtpd) for the invitation and password-reset tests.

Usage: smtp_sink.py HOST PORT FOLDER
Every message it accepts is written to FOLDER as NNNN.eml (written under a temporary name, then
renamed, so a reader never sees half a message). Prints "ready" once it listens; stops on SIGTERM.
"""

import pathlib
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            name = f"{self.count:04}.eml"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.folder / name)
        return "250 Message accepted"


def main():
    host, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
    controller = Controller(Save(folder), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
