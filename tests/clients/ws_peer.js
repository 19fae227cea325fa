// A WebSocket client no one here wrote: Node's `ws` package, driven by
// tests/websocket/outside_peers.rs.
//
//     node ws_peer.js echo URL    echo text, binary and 1 MiB messages, a ping; close 1000
const WebSocket = require("ws");

function fail(why) {
  console.error(why);
  process.exit(1);
}

function echo(url) {
  const messages = [
    ["Hello, 异步世界!", false],
    [Buffer.from([...Array(256).keys()]), true],
    ["x".repeat(1 << 20), false],
  ];
  const ws = new WebSocket(url);
  let index = 0;
  let ponged = false;
  const timer = setTimeout(() => fail("timed out"), 20000);
  ws.on("open", () => {
    ws.ping("hello");
    ws.send(messages[0][0], { binary: messages[0][1] });
  });
  ws.on("pong", (data) => {
    ponged = data.toString() === "hello";
  });
  ws.on("message", (data, isBinary) => {
    const [sent, binary] = messages[index];
    const same = binary ? isBinary && Buffer.compare(data, sent) === 0 : !isBinary && data.toString() === sent;
    if (!same) fail("echo " + index + " differs");
    index += 1;
    if (index < messages.length) {
      ws.send(messages[index][0], { binary: messages[index][1] });
    } else {
      ws.close(1000, "done");
    }
  });
  ws.on("close", (code) => {
    clearTimeout(timer);
    if (code !== 1000 || !ponged || index !== messages.length) fail("closed with " + code + " after " + index);
    console.log("ok");
  });
  ws.on("error", (e) => fail(String(e)));
}

const [command, url] = process.argv.slice(2);
if (command === "echo") echo(url);
else fail("unknown command " + command);
