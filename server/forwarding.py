"""Joining through any node: a join for a practical hosted elsewhere is forwarded to its host.

The host is the only node that can admit a name into its room (names are unique
per room), so a node that receives ``POST /api/join`` for a practical it does
not host asks the room directory where it is and passes the request on, as it
came, answering what the host answered. The student's page never knows.

The host rate-limits joins per client address; a forwarded request comes from
a node, so it carries the client's address in ``X-Amaliy-Client``, signed with
the deployment's secret (every node has the same one, server.cluster). A header
that does not verify is ignored, so a client cannot pick its own address.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from server.cluster import Cluster

CLIENT_HEADER = "X-Amaliy-Client"
_TIMEOUT = 5.0


def _sign(secret: bytes, address: str) -> str:
    return hmac.new(secret, b"amaliy-client:" + address.encode(), hashlib.sha256).hexdigest()[:32]


def client_address(request: Request, secret: bytes) -> str:
    """The address a join came from: the signed one a forwarding node vouches for, else the peer's."""
    vouched = request.headers.get(CLIENT_HEADER, "")
    address, _, signature = vouched.rpartition(" ")
    if address and hmac.compare_digest(signature, _sign(secret, address)):
        return address
    return request.client.host if request.client else "?"


async def forward_join(cluster: Cluster, secret: bytes, code: str, body: dict[str, Any], address: str) -> JSONResponse:
    """Pass a join on to the node hosting the practical with this code; 404 if none is open,
    503 (try again) while it is between nodes or the directory cannot be read."""
    try:
        session_id = await cluster.session_of_code(code)
        host = None if session_id is None else await cluster.host_of(session_id)
    except Exception:  # Redis away: nobody can tell where the practical is
        raise HTTPException(503, "This server cannot reach the others just now; try again in a moment.", headers={"Retry-After": "2"}) from None
    if session_id is None:
        raise HTTPException(404, f"No open practical has the join code {code}. Check the code with your teacher.")
    if host is None or host.http == cluster.addresses.http:
        raise HTTPException(503, "This practical is moving to another server; try again in a moment.", headers={"Retry-After": "1"})
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            answer = await http.post(f"{host.http}/api/join", json=body, headers={CLIENT_HEADER: f"{address} {_sign(secret, address)}"})
    except httpx.HTTPError:
        raise HTTPException(503, "The server hosting this practical does not answer; try again in a moment.", headers={"Retry-After": "1"}) from None
    try:
        content = answer.json()
    except ValueError:
        raise HTTPException(502, "The server hosting this practical answered something unreadable; try again.") from None
    return JSONResponse(content, status_code=answer.status_code)
