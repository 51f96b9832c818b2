"""Any node answers for every practical: a request about one hosted elsewhere goes to its host.

The host is the only node that can admit a name into its room (names are unique
per room), lock it, end it or say who is in it, so a node that receives a join
(``POST /api/join``), a sign-in (``POST /api/signin``) or a teacher's action on a
live practical it does not host asks the room directory where it is and passes
the request on, as it came (method, path, query, body, ``Authorization``),
answering what the host answered. The page never knows. A forwarded request
carries ``X-Amaliy-Forwarded`` and is never forwarded again, so two nodes that
disagree for a moment about where a room is cannot pass it back and forth.

The host rate-limits joins per client address; a forwarded request comes from
a node, so it carries the client's address in ``X-Amaliy-Client``, signed with
the deployment's secret (every node has the same one, server.cluster). A header
that does not verify is ignored, so a client cannot pick its own address.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
from fastapi import HTTPException, Request, Response

from server.cluster import Cluster

CLIENT_HEADER = "X-Amaliy-Client"
FORWARDED_HEADER = "X-Amaliy-Forwarded"
_TIMEOUT = 5.0
#: the request headers passed on (not Host: the host answers with its own address, where the client goes next)
_PASSED = ("authorization", "content-type")


def _sign(secret: bytes, address: str) -> str:
    return hmac.new(secret, b"amaliy-client:" + address.encode(), hashlib.sha256).hexdigest()[:32]


def client_address(request: Request, secret: bytes) -> str:
    """The address a join came from: the signed one a forwarding node vouches for, else the peer's."""
    vouched = request.headers.get(CLIENT_HEADER, "")
    address, _, signature = vouched.rpartition(" ")
    if address and hmac.compare_digest(signature, _sign(secret, address)):
        return address
    return request.client.host if request.client else "?"


def _unreachable() -> HTTPException:
    """Redis away: nobody can tell where a practical is."""
    return HTTPException(503, "This server cannot reach the others just now; try again in a moment.", headers={"Retry-After": "2"})


async def forward_join(cluster: Cluster, secret: bytes, code: str, request: Request, address: str) -> Response:
    """Pass a join on to the node hosting the practical with this code; 404 if none is open,
    503 (try again) while it is between nodes or the directory cannot be read."""
    try:
        session_id = await cluster.session_of_code(code)
    except Exception:
        raise _unreachable() from None
    if session_id is None:
        raise HTTPException(404, f"No open practical has the join code {code}. Check the code with your teacher.")
    return await to_live_host(cluster, secret, session_id, request, address)


async def to_live_host(cluster: Cluster, secret: bytes, session_id: str, request: Request, address: str, body: bytes | None = None) -> Response:
    """``to_host`` for a request only the practical's host can answer (a join, a sign-in): 503,
    try again, while no other node hosts it (it is between nodes)."""
    answer = await to_host(cluster, secret, session_id, request, address, body)
    if answer is None:
        raise HTTPException(503, "This practical is moving to another server; try again in a moment.", headers={"Retry-After": "1"})
    return answer


async def to_host(cluster: Cluster, secret: bytes, session_id: str, request: Request, address: str, body: bytes | None = None) -> Response | None:
    """The host's answer to ``request`` about a practical another node hosts; None when this
    node answers itself: it hosts the practical, nobody does (it ended, or is between nodes),
    or the request was forwarded to it already. ``body`` stands for a body the route has read."""
    if FORWARDED_HEADER in request.headers:
        return None
    try:
        host = await cluster.host_of(session_id)
    except Exception:
        raise _unreachable() from None
    if host is None or host.http == cluster.addresses.http:
        return None
    headers = {name: request.headers[name] for name in _PASSED if name in request.headers}
    headers |= {CLIENT_HEADER: f"{address} {_sign(secret, address)}", FORWARDED_HEADER: "1"}
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as http:
            answer = await http.request(
                request.method, host.http + request.url.path, params=request.query_params,
                content=await request.body() if body is None else body, headers=headers,
            )
    except httpx.HTTPError:
        raise HTTPException(503, "The server hosting this practical does not answer; try again in a moment.", headers={"Retry-After": "1"}) from None
    passed = {name: answer.headers[name] for name in ("content-type", "content-disposition", "retry-after") if name in answer.headers}
    return Response(answer.content, status_code=answer.status_code, headers=passed)
