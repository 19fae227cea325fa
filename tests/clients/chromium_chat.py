"""Two headless Chromium pages on examples/chat_web, driven through the DevTools
protocol (spoken with the Python `websockets` library): a message typed in one page
must appear, verbatim, in both. Run by tests/chromium_chat.rs.

    chromium_chat.py CHROMIUM URL [URL2]    prints "ok", or exits non-zero saying what failed

With two URLs (two chat_web processes sharing a room through Redis), page one opens the
first and page two the second: what page one types must appear in page two too.
"""

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
    .observe(document, {subtree: true, childList: true, characterData: true});
})"""


def main(chromium, urls):
    profile = tempfile.mkdtemp(prefix="ioloop-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-port=0", "--user-data-dir=" + profile, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        for line in browser.stderr:
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                endpoint = found.group(1)
                break
        if endpoint is None:
            sys.exit("chromium did not start its DevTools endpoint")
        with connect(endpoint, max_size=None) as devtools:
            run(devtools, urls)
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def run(devtools, urls):
    ids = iter(range(1, 1 << 30))

    def call(method, params=None, session=None):
        request = {"id": next(ids), "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        devtools.send(json.dumps(request))
        while True:
            try:
                reply = json.loads(devtools.recv(timeout=30))
            except TimeoutError:
                sys.exit(f"{method} got no answer in 30 s: {json.dumps(params)[:300]}")
            if reply.get("id") == request["id"]:
                if "error" in reply:
                    sys.exit(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(session, expression):
        result = call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, session)
        if "exceptionDetails" in result:
            sys.exit(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    pages = []
    for i in range(2):
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        call("Page.enable", session=session)
        call("Page.navigate", {"url": urls[i % len(urls)]}, session)
        pages.append(session)
    for page in pages:
        evaluate(page, WHEN % "document.getElementById('status').textContent === 'connected'")
    text = "hello from page one: 异步世界 <b>not markup</b>"
    evaluate(pages[0], "document.getElementById('message').value = %s;"
             "document.getElementById('send').click(); true" % json.dumps(text))
    for page in pages:
        evaluate(page, WHEN % (
            "[...document.querySelectorAll('#log li')].some(li => li.textContent === %s)"
            % json.dumps(text)))
    print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
