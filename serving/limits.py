"""Bounds on what a client can make the server hold: request bodies (`BodyLimit`, 413 while
streaming) and the online state (`check_room_for_post`, `check_room_for_events`: 409 when full).

The online caps are checked under the app's write lock just before a write is applied, so two
writers cannot both take the last slot.
"""

from __future__ import annotations

from fastapi import HTTPException

from serving.settings import Settings


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, got: str) -> None:
        # Connection: close: the server stops reading the rest of the upload, not just the app
        super().__init__(413, f"request body too large: at most {limit} bytes (RECSYS_BODY_MAX_BYTES), got {got}",
                         headers={"connection": "close"})


class BodyLimit:
    """Pure ASGI: refuse a body over `limit` bytes. A Content-Length above it is answered at once,
    unread; a chunked (or understated) body is counted as it streams in and refused as soon as it
    passes the limit, so at most `limit` bytes plus one chunk are ever held."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _send_error(send, BodyTooLarge(self.limit, f"Content-Length {declared.decode('latin-1')[:40]}"))
        seen = 0
        started = False

        async def receive_():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit, f"more than {self.limit} bytes")
            return msg

        async def send_(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, receive_, send_)
        except BodyTooLarge as e:  # raised where the app itself did not turn it into a response
            if started:
                raise
            await _send_error(send, e)


async def _send_error(send, e: HTTPException) -> None:
    from pydantic_core import to_json

    body = to_json({"detail": e.detail})
    await send({"type": "http.response.start", "status": e.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# --- online state ---------------------------------------------------------------------------------

def check_room_for_post(st, settings: Settings) -> None:
    """409 when the online post store (posts added since the bundle was built) is full."""
    if st.delta.n >= settings.delta_max:
        raise HTTPException(409, f"the online post store is full ({settings.delta_max} posts, RECSYS_DELTA_MAX): "
                                 "publish a bundle with them (`recsys build-index`) and reload")


def check_room_for_events(st, events: list, settings: Settings) -> None:
    """409 when the events would take the online users or one user's online seen set past its cap
    (nothing is applied then)."""
    overlay = st.online.overlay
    new_posts: dict[int, set] = {}
    for e in events:
        new_posts.setdefault(e.user_id, set()).add(e.post_id)
    new_users = [u for u in new_posts if u not in overlay]
    if len(overlay) + len(new_users) > settings.online_users_max:
        raise HTTPException(409, f"online events are held for at most {settings.online_users_max} users "
                                 f"(RECSYS_ONLINE_USERS_MAX) and {len(overlay)} have some; {len(new_users)} new users "
                                 "would pass it: publish a bundle with the events and reload")
    for u, posts in new_posts.items():
        ov = overlay.get(u)
        seen = ov.seen if ov is not None else set()
        n = len(seen) + len(posts - seen)
        if n > settings.user_seen_max:
            raise HTTPException(409, f"user {u} would have {n} posts seen online, at most {settings.user_seen_max} "
                                     "(RECSYS_USER_SEEN_MAX): publish a bundle with the events and reload")
