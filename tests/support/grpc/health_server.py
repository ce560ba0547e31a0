"""A real gRPC server (grpcio) with the standard health service, for LeanNodes' gRPC tests.

    health_server.py --port N [--cert FILE --key FILE] [--start-log FILE]

Serves grpc.health.v1.Health on 127.0.0.1:N, over TLS (HTTP/2 with ALPN h2) when --cert/--key are
given, else over h2c. The service "" is SERVING; the service "ticker" flips between SERVING and
NOT_SERVING every 200 ms, so Watch("ticker") is a server stream that sends a message every 200 ms.
Appends one line to --start-log when it starts (the tests count starts).
"""

import argparse
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--start-log")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    address = f"127.0.0.1:{args.port}"
    if args.cert:
        with open(args.cert, "rb") as c, open(args.key, "rb") as k:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        server.add_secure_port(address, credentials)
    else:
        server.add_insecure_port(address)
    server.start()
    if args.start_log:
        with open(args.start_log, "a") as log:
            log.write(f"grpc {args.port}\n")

    serving = True
    while True:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        servicer.set("ticker", status)
        serving = not serving
        time.sleep(0.2)


if __name__ == "__main__":
    main()
