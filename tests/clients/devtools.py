"""Headless Chromium driven through the DevTools protocol (spoken with the Python
`websockets` library), for the browser tests in tests/clients/chromium_*.py.

    with browser(CHROMIUM) as devtools:
        page = devtools.open(URL)
        page.when("document.title === 'x'")   # waits for a JS condition, re-checked on DOM changes
        page.evaluate("1 + 1")
"""

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile

from websockets.sync.client import connect

# Resolves once `condition` (a JS expression) holds, re-checked on every DOM change.
WHEN = """new Promise(resolve => {
  const holds = () => { try { return Boolean(%s); } catch (e) { return false; } };
  if (holds()) return resolve(true);
  new MutationObserver(() => { if (holds()) resolve(true); })
    .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
})"""


@contextlib.contextmanager
def browser(chromium):
    """A headless Chromium with a fresh profile, and a DevTools connection to it."""
    profile = tempfile.mkdtemp(prefix="ioloop-chromium-")
    process = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-port=0", "--user-data-dir=" + profile, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        for line in process.stderr:
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                endpoint = found.group(1)
                break
        if endpoint is None:
            sys.exit("chromium did not start its DevTools endpoint")
        with connect(endpoint, max_size=None) as socket:
            yield DevTools(socket)
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)


class DevTools:
    def __init__(self, socket):
        self.socket = socket
        self.ids = iter(range(1, 1 << 30))

    def call(self, method, params=None, session=None, tolerate=False):
        """The result of `method`; an error ends the script, or is returned as
        `{"error": ..}` with `tolerate` (a page navigating away, say)."""
        request = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        self.socket.send(json.dumps(request))
        while True:
            try:
                reply = json.loads(self.socket.recv(timeout=30))
            except TimeoutError:
                sys.exit(f"{method} got no answer in 30 s: {json.dumps(params)[:300]}")
            if reply.get("id") == request["id"]:
                if "error" in reply:
                    if tolerate:
                        return {"error": reply["error"]}
                    sys.exit(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url):
        """A new page (tab) navigating to `url`."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=session)
        page = Page(self, session)
        page.navigate(url)
        return page


class Page:
    def __init__(self, devtools, session):
        self.devtools = devtools
        self.session = session

    def navigate(self, url):
        self.devtools.call("Page.navigate", {"url": url}, self.session)

    def evaluate(self, expression):
        result = self.devtools.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, self.session)
        if "exceptionDetails" in result:
            sys.exit(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def peek(self, expression):
        """`expression`'s value, or None while the page cannot answer (navigating)."""
        result = self.devtools.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True,
        }, self.session, tolerate=True)
        if "error" in result or "exceptionDetails" in result:
            return None
        return result["result"].get("value")

    def when(self, condition):
        """Waits until the JS expression `condition` holds (the DevTools call's 30 s
        timeout is the deadline)."""
        return self.evaluate(WHEN % condition)
