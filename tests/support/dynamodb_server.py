"""Runs moto's DynamoDB-protocol server with one request at a time.

moto's own `moto_server` is threaded, and its conditional writes are not atomic under concurrency (two
concurrent `UpdateItem` calls with the same condition can both succeed), whereas DynamoDB applies the
writes to one item one at a time. Serving requests one by one gives moto DynamoDB's semantics for the
tests of claims, leases and the audit chain. Usage: dynamodb_server.py HOST PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
