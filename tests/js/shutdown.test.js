// A server stopped with SIGTERM tells its Socket.IO players before it goes: each socket, over
// websocket and over long-polling, gets a `server_shutdown` event and then the server's own
// disconnect (no reconnect to a server that is going away), and the process exits cleanly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, call, withTimeout, room } from "./helpers.js";

test("SIGTERM sends server_shutdown, then a server disconnect, to every socket", async () => {
  const server = await startServer(["--no-match-log", "--drones", "2"]);
  const sockets = [];
  try {
    for (const transports of [["websocket"], ["polling"]]) {
      const { socket } = await connect(server.url, { name: `bye-${transports[0]}`, transports });
      sockets.push(socket);
    }
    await call(sockets[0], "room:create", room("closing", 4));
    const told = sockets.map((s) => withTimeout("server_shutdown", new Promise((resolve) => s.once("server_shutdown", resolve))));
    const gone = sockets.map((s) => withTimeout("the disconnect", new Promise((resolve) => s.once("disconnect", resolve))));
    server.child.removeAllListeners("exit");
    const exited = withTimeout("the server to exit", new Promise((resolve) => server.child.once("exit", (code) => resolve(code))));
    server.child.kill("SIGTERM");
    for (const payload of await Promise.all(told)) {
      assert.equal(payload.reason, "server shutting down");
    }
    assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect"]);
    assert.equal(await exited, 0);
  } finally {
    for (const s of sockets) s.close();
    server.child.kill("SIGKILL");
  }
});
