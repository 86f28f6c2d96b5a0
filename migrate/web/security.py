"""Who may use the review app: the person holding this session's token, from pages it served.

* The token is random per ``review serve`` and printed once. Opening ``/?token=…`` swaps it
  for an HttpOnly, SameSite=Strict cookie and redirects to the same page without it, so it
  does not linger in the address bar, history or a Referer.
* Every other request needs that cookie; without it the answer is 403.
* A state-changing request (POST) must also come from one of our pages: its Origin (or,
  without one, its Referer) must be this server, and its form must carry the session's
  CSRF token. A page elsewhere cannot read that token; on another site the browser does not
  even send the cookie (another port of 127.0.0.1 is the same site, so the checks matter).
* The Host header must name this machine, so a hostile DNS name pointed at 127.0.0.1
  (DNS rebinding) cannot reach the app through a victim's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

#: Hosts the app answers for when bound to the loopback interface.
LOCAL_HOSTS = ("127.0.0.1", "localhost")

#: Sent with every response: no framing, no sniffing, only our own scripts and styles.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Paths anyone may fetch: the stylesheet and script hold no data.
PUBLIC_PREFIX = "/static/"


def new_token() -> str:
    """A fresh session token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class Session:
    """The secrets of one ``review serve`` session and the checks built on them.

    Example:
        >>> s = Session("t0ken")
        >>> s.valid("t0ken"), s.valid("guess"), s.valid(None)
        (True, False, False)
    """

    def __init__(self, token: str):
        self.token = token
        digest = hashlib.sha256(token.encode()).hexdigest()
        # Cookies are not scoped by port: a per-token name keeps two servers on one machine apart.
        self.cookie = f"crm_migrate_{digest[:12]}"
        self.csrf = hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()

    def valid(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is this session's token (constant-time)."""
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def authenticate(self, request: Request) -> Response | None:
        """None when the request may go on; otherwise the response to send instead.

        Raises:
            HTTPException: 403 when neither the cookie nor the token is right.
        """
        if request.url.path.startswith(PUBLIC_PREFIX) or self.valid(request.cookies.get(self.cookie)):
            return None
        if self.valid(request.query_params.get("token")):
            query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
            return response
        raise HTTPException(403, "This page needs the link `crm-migrate review serve` printed when it started "
                                 "(it carries this session's token).")

    async def checked_form(self, request: Request) -> FormData:
        """The form of a state-changing request, once it is shown to come from our own pages.

        Raises:
            HTTPException: 403 when the Origin/Referer is foreign or missing, or the CSRF token is wrong.
        """
        ours = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is None:
            referer = urlsplit(request.headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
        if origin != ours:
            raise HTTPException(403, f"Refused a change sent from {origin or 'an unknown page'}: changes are only "
                                     "accepted from this review app's own pages.")
        form = await request.form()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), self.csrf.encode()):
            raise HTTPException(403, "Refused a change without this session's form token; reload the page and "
                                     "try again.")
        return form

