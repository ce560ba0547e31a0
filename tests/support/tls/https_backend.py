"""An HTTP/1.1 server over TLS (Python's standard library), the upstream of LeanNodes' h1-tls tests.

    https_backend.py --port N --cert FILE --key FILE --name NAME [--start-log FILE]

Answers every GET with 200 and the body "NAME over TLS: PATH". Offers only ALPN http/1.1.
"""

import argparse
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--start-log")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"{args.name} over TLS: {self.path}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    if args.start_log:
        with open(args.start_log, "a") as log:
            log.write(f"https {args.port}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
