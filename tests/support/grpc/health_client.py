"""A real gRPC client (grpcio) for LeanNodes' gRPC tests.

    health_client.py --target HOST:PORT --authority NAME [--ca FILE] check
    health_client.py --target HOST:PORT --authority NAME [--ca FILE] watch COUNT

`check` calls Health/Check("") once and prints the status name. `watch` calls Health/Watch("ticker")
and prints the status of each of the first COUNT messages, one per line, then "done". The authority
is the flow's host (and the TLS name with --ca). Exits 1 with the gRPC status on a failed call.
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--authority", required=True)
    parser.add_argument("--ca")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("call", choices=["check", "watch"])
    parser.add_argument("count", type=int, nargs="?", default=1)
    args = parser.parse_args()

    if args.ca:
        with open(args.ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        options = [("grpc.ssl_target_name_override", args.authority), ("grpc.default_authority", args.authority)]
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=[("grpc.default_authority", args.authority)])
    stub = health_pb2_grpc.HealthStub(channel)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    try:
        if args.call == "check":
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
            print(name(reply.status), flush=True)
        else:
            stream = stub.Watch(health_pb2.HealthCheckRequest(service="ticker"), timeout=args.timeout)
            for i, reply in enumerate(stream):
                print(name(reply.status), flush=True)
                if i + 1 >= args.count:
                    break
            stream.cancel()
            print("done", flush=True)
    except grpc.RpcError as e:
        print(f"rpc failed: {e.code().name}: {e.details()}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
