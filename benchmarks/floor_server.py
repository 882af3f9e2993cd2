#!/usr/bin/env python3
"""The least any Python server must spend on the IKE policy API: the floor.

``benchmarks/vs_neutron.py`` runs this beside Isthmus and Neutron. It speaks just
enough HTTP/1.1 (keep-alive, Content-Length bodies) to answer the benchmark's five
requests, with the fewest MariaDB round trips each can take through mysqlclient:

    create   INSERT, COMMIT                        show  SELECT (autocommit)
    update   UPDATE, SELECT, COMMIT                list  SELECT (autocommit)
    delete   DELETE, COMMIT

No validation, no policy, no event history, no defaults beyond the benchmark's
own: what it answers in a given run is the part of every server's time that no
application code can remove (the client, the kernel, the database), so
Neutron's time over the floor's is the best ratio any implementation could show
in that run. Not a server to use: it trusts every byte it reads.

    python benchmarks/floor_server.py PORT HOST DBPORT DATABASE
"""

from __future__ import annotations

import socket
import sys
import threading
import uuid
from typing import Any

import MySQLdb
import orjson

PATH = b"/v2.0/vpn/ikepolicies"
COLUMNS = ("id", "project_id", "name", "description", "auth_algorithm",
           "encryption_algorithm", "phase1_negotiation_mode", "ike_version", "pfs",
           "lifetime_units", "lifetime_value")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM ikepolicies"
TABLE = """CREATE TABLE IF NOT EXISTS ikepolicies (
    id VARCHAR(36) PRIMARY KEY, project_id VARCHAR(255) NOT NULL, name VARCHAR(255),
    description VARCHAR(255), auth_algorithm VARCHAR(16), encryption_algorithm VARCHAR(16),
    phase1_negotiation_mode VARCHAR(16), ike_version VARCHAR(16), pfs VARCHAR(16),
    lifetime_units VARCHAR(16), lifetime_value INT, INDEX (project_id))"""


def shown(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as the API shows an IKE policy."""
    item = dict(zip(COLUMNS, row))
    item["tenant_id"] = item["project_id"]
    item["lifetime"] = {"units": item.pop("lifetime_units"), "value": item.pop("lifetime_value")}
    return item


def answer(reader: Any, db: Any, method: bytes, path: bytes, project: str, body: bytes
           ) -> tuple[bytes, Any]:
    """Status line and JSON body for one request: reads on ``reader`` (autocommit: no
    COMMIT round trip), writes in a transaction on ``db``."""
    cur = db.cursor()
    member = path[len(PATH) + 1:].decode() if path.startswith(PATH + b"/") else None
    if method == b"POST":
        sent = orjson.loads(body)["ikepolicy"]
        values = (str(uuid.uuid4()), project, sent.get("name", ""), "",
                  sent.get("auth_algorithm", "sha256"), "aes-128", "main",
                  sent.get("ike_version", "v1"), sent.get("pfs", "group5"), "seconds", 3600)
        cur.execute(f"INSERT INTO ikepolicies ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join(['%s'] * len(COLUMNS))})", values)
        db.commit()
        return b"201 Created", {"ikepolicy": shown(values)}
    if method == b"GET":
        cur = reader.cursor()
    if method == b"GET" and member is None:
        cur.execute(SELECT + " WHERE project_id = %s", (project,))
        return b"200 OK", {"ikepolicies": [shown(row) for row in cur.fetchall()]}
    if method == b"GET":
        cur.execute(SELECT + " WHERE id = %s AND project_id = %s", (member, project))
        row = cur.fetchone()
        return (b"200 OK", {"ikepolicy": shown(row)}) if row else (b"404 Not Found", {})
    if method == b"PUT":
        sent = orjson.loads(body)["ikepolicy"]
        cur.execute("UPDATE ikepolicies SET name = %s WHERE id = %s AND project_id = %s",
                    (sent["name"], member, project))
        cur.execute(SELECT + " WHERE id = %s", (member,))
        row = cur.fetchone()
        db.commit()
        return (b"200 OK", {"ikepolicy": shown(row)}) if row else (b"404 Not Found", {})
    if method == b"DELETE":
        cur.execute("DELETE FROM ikepolicies WHERE id = %s AND project_id = %s",
                    (member, project))
        db.commit()
        return (b"204 No Content", None) if cur.rowcount else (b"404 Not Found", {})
    return b"405 Method Not Allowed", {}


def serve_connection(sock: socket.socket, connect: Any) -> None:
    """Requests of one client, one after the other, until it closes."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader, db = connect(True), connect(False)
    buffer = b""
    with sock:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, path, _ = lines[0].split(b" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(b":") for line in lines[1:])}
            length = int(headers.get(b"content-length", b"0"))
            while len(buffer) < length:
                buffer += sock.recv(65536)
            body, buffer = buffer[:length], buffer[length:]
            status, payload = answer(reader, db, method, path.split(b"?")[0],
                                     headers[b"x-project-id"].decode(), body)
            data = b"" if payload is None else orjson.dumps(payload)
            sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def main() -> int:
    """Create the table, listen, one thread per client connection."""
    port, host, db_port, database = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

    def connect(autocommit: bool) -> Any:
        db = MySQLdb.connect(host=host, port=db_port, user="root", database=database,
                             charset="utf8mb4")
        db.autocommit(autocommit)
        return db
    setup = connect(False)
    setup.cursor().execute(TABLE)
    setup.commit()
    listener = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(sock, connect), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
