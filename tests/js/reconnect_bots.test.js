// Over Socket.IO with the official client: the seat is freed once the reconnect grace is over, a
// token used while its seat is connected takes it over, and the server hosts a match of its own
// bots with no human in the room.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { useServer, call, waitFor, withTimeout, room } from "./helpers.js";

const ctx = useServer([
  "--drones", "0", "--match-secs", "1", "--countdown-secs", "0", "--results-secs", "1",
  "--reconnect-grace-secs", "1",
], { matchLog: true });
const open = ctx.open;

test("after the grace period the seat is freed and the room is told", async () => {
  const { socket: host } = await open({ name: "host" });
  const made = await call(host, "room:create", room("brief", 4));
  const { socket: gone } = await open({ name: "gone" });
  const joined = await call(gone, "room:join", { roomId: made.room.id });
  const disconnected = waitFor(host, "room:event", (e) => e.type === "player_disconnected" && e.playerId === joined.playerId);
  const left = waitFor(host, "room:event", (e) => e.type === "player_left" && e.playerId === joined.playerId);
  gone.close();
  assert.equal((await disconnected).graceSecs, 1);
  await left;
  const { welcome } = await open({ name: "gone", token: joined.reconnectToken });
  assert.equal(welcome.resumed, undefined, "the token no longer holds a seat");
  assert.notEqual(welcome.playerId, joined.playerId);
  await call(host, "room:leave");
});

test("a token used while its seat is connected takes the seat; the old socket is told and closed", async () => {
  const { socket: host } = await open({ name: "host" });
  const made = await call(host, "room:create", room("contested", 4));
  const { socket: first } = await open({ name: "owner" });
  const joined = await call(first, "room:join", { roomId: made.room.id });
  const told = waitFor(first, "room:event", (e) => e.type === "seat_taken");
  const closed = withTimeout("the old socket to be closed", new Promise((resolve) => first.on("disconnect", resolve)));
  const { socket: second, welcome } = await open({ name: "owner", token: joined.reconnectToken });
  assert.equal(welcome.resumed.playerId, joined.playerId);
  assert.equal(welcome.resumed.entity, joined.entity);
  await told;
  // The server's own disconnect: the official client does not reconnect by itself after it.
  assert.equal(await closed, "io server disconnect");
  const listed = await call(second, "rooms:list", {});
  assert.equal(listed.rooms.find((r) => r.id === made.room.id).players, 2, "one seat, not two");
  await call(host, "room:leave");
  await call(second, "room:leave");
});

test("a room of server bots plays its match with no human in it", async () => {
  const { socket: creator } = await open({ name: "creator" });
  const made = await call(creator, "room:create", room("bots only", 3, { bots: 2 }));
  assert.equal(made.ok, true);
  assert.equal(made.room.players, 3);
  await call(creator, "room:leave");
  // The bots are ready and alone: their match runs and its result lands in the match log.
  const logged = await withTimeout("the bots' match in the log", new Promise((resolve) => {
    const look = () => {
      const lines = existsSync(ctx.logPath) ? readFileSync(ctx.logPath, "utf8").trim().split("\n").filter(Boolean) : [];
      const line = lines.map((l) => JSON.parse(l)).find((l) => l.room === made.room.id);
      if (line) resolve(line);
      else setTimeout(look, 100);
    };
    look();
  }));
  assert.equal(logged.players.length, 2);
  assert.ok(logged.players.every((p) => p.name.startsWith("bot")));
});

test("bots fill the empty seats for a match and leave after it", async () => {
  const { socket } = await open({ name: "topped", encoding: "json" });
  const made = await call(socket, "room:create", room("topped up", 4, { fillBots: true }));
  assert.equal(made.room.players, 1);
  const waiting = waitFor(socket, "room:event", (e) => e.type === "state" && e.state === "waiting");
  const left = waitFor(socket, "room:event", (e) => e.type === "player_left");
  await call(socket, "room:ready", { ready: true });
  await waitFor(socket, "snapshot", (s) => s.entities.filter((e) => e.kind === "player").length === 4, "three fillers");
  await left;
  await waiting;
  const listed = await call(socket, "rooms:list", {});
  assert.equal(listed.rooms.find((r) => r.id === made.room.id).players, 1);
  await call(socket, "room:leave");
});
