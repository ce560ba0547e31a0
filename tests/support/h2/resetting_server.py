"""An HTTP/2 (h2c, prior knowledge) server that resets every stream it is sent, built on the h2 library:
the misbehaving upstream of LeanNodes' tests.

    resetting_server.py --port N

Accepts the connection preface and settings, then answers every request's HEADERS with RST_STREAM
(REFUSED_STREAM for odd stream numbers, INTERNAL_ERROR for the others).
"""

import argparse
import socket
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events


def serve(conn_socket: socket.socket) -> None:
    connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    conn_socket.sendall(connection.data_to_send())
    try:
        while True:
            data = conn_socket.recv(65536)
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    code = h2.errors.ErrorCodes.REFUSED_STREAM if event.stream_id % 4 == 1 else h2.errors.ErrorCodes.INTERNAL_ERROR
                    connection.reset_stream(event.stream_id, error_code=code)
            conn_socket.sendall(connection.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        conn_socket.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    while True:
        conn_socket, _ = listener.accept()
        threading.Thread(target=serve, args=(conn_socket,), daemon=True).start()


if __name__ == "__main__":
    main()
