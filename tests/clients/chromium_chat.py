"""Two headless Chromium pages on examples/chat_web, driven through the DevTools
protocol (spoken with the Python `websockets` library): a message typed in one page
must appear, verbatim, in both. Run by tests/websocket/chromium_chat.rs.

    chromium_chat.py CHROMIUM URL [URL2]    prints "ok", or exits non-zero saying what failed

With two URLs (two chat_web processes sharing a room through Redis), page one opens the
first and page two the second: what page one types must appear in page two too.
"""

import json
import sys

from devtools import browser


def main(chromium, urls):
    with browser(chromium) as devtools:
        pages = [devtools.open(urls[i % len(urls)]) for i in range(2)]
        for page in pages:
            page.when("document.getElementById('status').textContent === 'connected'")
        text = "hello from page one: 异步世界 <b>not markup</b>"
        pages[0].evaluate("document.getElementById('message').value = %s;"
                          "document.getElementById('send').click(); true" % json.dumps(text))
        for page in pages:
            page.when("[...document.querySelectorAll('#log li')].some(li => li.textContent === %s)"
                      % json.dumps(text))
    print("ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
