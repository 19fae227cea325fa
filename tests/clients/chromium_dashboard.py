"""Headless Chromium on examples/dashboard (run by tests/web/dashboard_example.rs): sign
in through the login form, land on the home page, which shows the name (as text, not
markup) and live stats from /live that keep changing, then add an item through the
page's form (a JSON POST with the X-XSRFToken header).

    chromium_dashboard.py CHROMIUM URL    prints "ok", or exits non-zero saying what failed
"""

import json
import sys
import time

from devtools import browser

NAME = "Ada <b>Lovelace</b>"


def main(chromium, base):
    with browser(chromium) as devtools:
        page = devtools.open(base + "/login?next=/")
        page.when("document.getElementById('login') !== null")
        page.evaluate("document.querySelector('input[name=name]').value = %s;"
                      "setTimeout(() => document.getElementById('login').click(), 0); true"
                      % json.dumps(NAME))
        # The form posts, the answer redirects to /: poll until the new page is there.
        deadline = time.monotonic() + 30
        while page.peek("location.pathname === '/' && document.getElementById('live') !== null") is not True:
            if time.monotonic() > deadline:
                sys.exit("the login did not land on /: " + str(page.peek("location.href")))
            time.sleep(0.05)
        user = page.evaluate("[document.getElementById('user').textContent,"
                             " document.querySelectorAll('#user b').length]")
        assert user == [NAME, 0], user
        # The cookie is HttpOnly: the page's scripts cannot read it; _xsrf they can.
        cookies = page.evaluate("document.cookie")
        assert "user=" not in cookies and "_xsrf=" in cookies, cookies
        page.when("document.getElementById('live').textContent === 'connected'")
        page.when("Number(document.getElementById('clients').textContent) >= 1")
        page.when("Number(document.getElementById('requests').textContent) >= 1")
        first = page.evaluate("Number(document.getElementById('uptime').textContent)")
        assert first >= 0, first
        page.when("Number(document.getElementById('uptime').textContent) > %r" % first)
        page.evaluate("document.getElementById('name').value = 'pear';"
                      "document.getElementById('qty').value = '2';"
                      "document.querySelector('#add button').click(); true")
        page.when("[...document.querySelectorAll('#items li')].some(li => li.textContent === '2 × pear')")
    print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].rstrip("/"))
