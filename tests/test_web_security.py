"""The review app's rules, checked without a browser: who may look, who may change, what is refused."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from migrate.errors import InputError
from migrate.review import decision_log, list_items
from migrate.web.app import create_app
from migrate.web.security import Session
from migrate.web.server import ReviewServer
from tests.review_queue import Queue, change_record

TOKEN = "s3ssion-t0ken"
ORIGIN = "http://127.0.0.1:8765"


def client(q: Queue, signed_in: bool = True) -> TestClient:
    c = TestClient(create_app(q.project, TOKEN, who="steward"), base_url=ORIGIN)
    if signed_in:
        assert c.get(f"/?token={TOKEN}").status_code == 200
    return c


def form_of(c: TestClient, item: str) -> dict[str, str]:
    """The hidden fields of an item page's decision form, as the browser would send them."""
    page = c.get(f"/items/{item}").text
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))


def error_detail(html: str) -> str:
    return re.search(r'id="error-detail">([^<]*)<', html).group(1).replace("&#39;", "'").replace("&gt;", ">")


def test_nothing_but_the_stylesheet_and_script_opens_without_the_token(built_queue):
    c = client(built_queue, signed_in=False)
    for path in ("/", f"/items/{built_queue.strong_pair}", "/log", "/golden", "/?token=wrong"):
        response = c.get(path)
        assert response.status_code == 403, path
        assert "crm-migrate review serve" in response.text
    refused = c.post(f"/items/{built_queue.strong_pair}/decide", data={"decision": "match"}, headers={"origin": ORIGIN})
    assert refused.status_code == 403
    assert c.get("/static/style.css").status_code == 200
    assert decision_log(built_queue.project.workspace()).empty


def test_the_token_becomes_a_strict_http_only_cookie_and_leaves_the_address_bar(built_queue):
    c = client(built_queue, signed_in=False)
    response = c.get(f"/?kind=pair&token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?kind=pair"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{Session(TOKEN).cookie}={TOKEN};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert c.get("/?kind=pair").status_code == 200  # the cookie alone opens it now


def test_every_page_forbids_framing_and_foreign_scripts(built_queue):
    c = client(built_queue)
    for path in ("/", f"/items/{built_queue.strong_pair}", "/items/P-unknown", "/static/review.js"):
        headers = c.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


def test_a_host_name_other_than_this_machine_is_refused(built_queue):
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the app through a browser."""
    c = TestClient(create_app(built_queue.project, TOKEN), base_url="http://evil.example:8765")
    assert c.get(f"/?token={TOKEN}").status_code == 400


def test_a_decision_sent_from_another_site_is_refused_and_changes_nothing(queue):
    c = client(queue)
    form = {**form_of(c, queue.strong_pair), "decision": "match"}
    for headers in ({"origin": "http://127.0.0.1:9999"}, {"origin": "https://evil.example"},
                    {"referer": "https://evil.example/page"}, {}):
        response = c.post(f"/items/{queue.strong_pair}/decide", data=form, headers=headers)
        assert response.status_code == 403, headers
    assert decision_log(queue.project.workspace()).empty


def test_a_decision_without_the_form_token_is_refused(queue):
    c = client(queue)
    form = {**form_of(c, queue.strong_pair), "decision": "match"}
    for csrf in ("", "0" * 64, TOKEN):
        response = c.post(f"/items/{queue.strong_pair}/decide", data={**form, "csrf": csrf}, headers={"origin": ORIGIN})
        assert response.status_code == 403
        assert "form token" in error_detail(response.text)
    assert decision_log(queue.project.workspace()).empty


def test_a_decision_from_the_item_page_is_recorded_and_moves_on_to_the_next_item(queue):
    c = client(queue)
    form = {**form_of(c, queue.strong_pair), "decision": "no_match", "note": "different birth years"}
    # Without an Origin header, browsers still send a same-origin Referer.
    response = c.post(f"/items/{queue.strong_pair}/decide?kind=pair", data=form,
                      headers={"referer": f"{ORIGIN}/items/{queue.strong_pair}"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/items/{queue.weak_pair}?kind=pair&decided={queue.strong_pair}"
    log = decision_log(queue.project.workspace())
    assert log[["item_id", "constraint", "who", "note"]].values.tolist() == [
        [queue.strong_pair, "cannot_link", "steward", "different birth years"]]
    assert queue.strong_pair not in set(list_items(queue.project.workspace())["item_id"])


def test_picking_a_value_of_a_conflict_records_an_override(queue):
    c = client(queue)
    form = {**form_of(c, queue.conflict), "decision": "pick", "value": "Londres"}
    assert c.post(f"/items/{queue.conflict}/decide", data=form, headers={"origin": ORIGIN},
                  follow_redirects=False).status_code == 303
    log = decision_log(queue.project.workspace())
    assert log[["constraint", "attribute", "value", "record_key_r"]].values.tolist() == [
        ["override", "city", '"Londres"', "contacts:c1"]]


def test_a_decision_that_does_not_fit_the_item_is_a_bad_request(queue):
    c = client(queue)
    form = form_of(c, queue.strong_pair)
    for decision in ({"decision": "pick", "value": "Bob"}, {"decision": "maybe"}, {}):
        response = c.post(f"/items/{queue.strong_pair}/decide", data={**form, **decision}, headers={"origin": ORIGIN})
        assert response.status_code == 400, decision
    assert "match or no_match" in error_detail(c.post(f"/items/{queue.strong_pair}/decide", data={
        **form, "decision": "pick", "value": "Bob"}, headers={"origin": ORIGIN}).text)
    assert decision_log(queue.project.workspace()).empty


def test_a_decision_on_records_that_changed_since_the_page_was_shown_is_refused_with_what_changed(queue):
    c = client(queue)
    form = {**form_of(c, queue.strong_pair), "decision": "match"}
    change_record(queue.project, "contacts:c2", last_name="Stone-Smith")
    response = c.post(f"/items/{queue.strong_pair}/decide", data=form, headers={"origin": ORIGIN})
    assert response.status_code == 409
    assert "contacts:c2 changed (last_name 'Stone' -> 'Stone-Smith')" in error_detail(response.text)
    assert f'href="/items/{queue.strong_pair}?' in response.text  # a way back to the item as it is now
    assert decision_log(queue.project.workspace()).empty
    fresh = {**form_of(c, queue.strong_pair), "decision": "match"}
    assert c.post(f"/items/{queue.strong_pair}/decide", data=fresh, headers={"origin": ORIGIN},
                  follow_redirects=False).status_code == 303


def test_unknown_items_and_golden_records_are_404_pages(queue):
    c = client(queue)
    for path in ("/items/P-0000000000", "/golden/G-000000000000", "/no/such/page"):
        response = c.get(path)
        assert response.status_code == 404 and "Not found" in response.text, path
    form = form_of(c, queue.strong_pair)
    assert c.post("/items/P-0000000000/decide", data={**form, "decision": "match"},
                  headers={"origin": ORIGIN}).status_code == 404


def test_the_queue_filters_by_kind_source_and_probability_band_with_counts(built_queue):
    c = client(built_queue)
    q = built_queue

    def listed(query: str) -> set[str]:
        page = c.get(f"/?{query}")
        assert page.status_code == 200
        return set(re.findall(r'<td><a href="/items/([\w-]+)\?', page.text))

    assert listed("") == {q.strong_pair, q.weak_pair, q.conflict}
    assert listed("kind=pair") == {q.strong_pair, q.weak_pair}
    assert listed("kind=pair&band=0.8-0.9") == {q.strong_pair}
    assert listed("band=0.6-0.7") == {q.weak_pair}
    assert listed("status=decided") == set()
    page = c.get("/?kind=pair").text
    assert '<option value="0.8-0.9" >0.8-0.9 (1)</option>' in page  # a band's count under the other filters
    assert '<option value="conflict" >conflict (1)</option>' in page
    for bad in ("kind=merge", "band=0.5-0.55", "source=crm", "status=maybe"):
        assert c.get(f"/?{bad}").status_code == 400, bad


def test_the_item_page_shows_records_side_by_side_and_the_waterfall(built_queue):
    page = client(built_queue).get(f"/items/{built_queue.strong_pair}?kind=pair").text
    assert '<td class="differs">Bob</td><td class="differs">Robert</td>' in page
    assert "<td>Stone</td><td>Stone</td>" in page
    assert "<svg class='chart'" in page and "email · exact" in page and "p = 0.870" in page
    assert 'data-key="m"' in page and 'data-key="n"' in page
    assert f'href="/items/{built_queue.weak_pair}?kind=pair" data-key="j"' in page


def test_a_golden_record_page_shows_each_value_with_its_lineage(built_queue):
    c = client(built_queue)
    found = c.get("/golden?q=ann").text
    golden_id = re.search(r'href="/golden/(G-\w+)"', found).group(1)
    page = c.get(f"/golden/{golden_id}").text
    assert re.search(r"<th class=\"attr\">first_name</th><td>Ann</td>\s*<td>erp:101</td><td>\w+</td>", page)
    assert all(key in page for key in ("contacts:c1", "contacts:c3", "erp:101"))


def test_a_busy_port_is_reported_before_anything_is_served(built_queue):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(InputError, match="cannot listen on 127.0.0.1"):
            ReviewServer(built_queue.project, port=taken.getsockname()[1])


def test_review_serve_prints_a_link_that_opens_the_page_and_stops_on_ctrl_c(built_queue):
    exe = shutil.which("crm-migrate") or str(Path(sys.executable).parent / "crm-migrate")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([exe, "review", "serve", "-p", str(built_queue.project.dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line).group(0)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(url, timeout=30).read().decode()
        assert built_queue.strong_pair in page
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.split("?")[0], timeout=30)
        assert refused.value.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in stderr
    assert url.split("token=")[1] not in stderr  # no access log carries the token
