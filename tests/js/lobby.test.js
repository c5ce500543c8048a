// Lobbies and the match lifecycle over Socket.IO with the official client: private rooms by
// code, ready-up to a match that ends with results (also in the match log), the owner's start,
// and the lobby's refusals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { useServer, call, waitFor, room } from "./helpers.js";

const ctx = useServer([
  "--drones", "0", "--match-secs", "1", "--countdown-secs", "1", "--results-secs", "1",
], { matchLog: true });
const open = ctx.open;
const stateIs = (socket, state) =>
  waitFor(socket, "room:event", (e) => e.type === "state" && e.state === state, `state ${state}`);

test("a private room is unlisted and joined by its code", async () => {
  const { socket: host } = await open({ name: "host" });
  const { socket: guest } = await open({ name: "guest" });
  const made = await call(host, "room:create", room("secret", 4, { private: true }));
  assert.equal(made.ok, true);
  assert.match(made.code, /^[A-Z2-9]{6}$/);
  assert.equal(made.room.private, true);
  const listed = await call(guest, "rooms:list", {});
  assert.ok(!listed.rooms.some((r) => r.id === made.room.id), "private rooms are not listed");
  assert.equal((await call(guest, "room:join", { roomId: made.room.id })).error.code, "not_found");
  assert.equal((await call(guest, "room:join", { code: "ZZZZZZ" })).error.code, "bad_code");
  const joined = await call(guest, "room:join", { code: made.code });
  assert.equal(joined.ok, true);
  assert.equal(joined.room.id, made.room.id);
  await call(guest, "room:leave");
  await call(host, "room:leave");
});

test("ready players play a match that ends with results, logged to disk", async () => {
  const { socket: a } = await open({ name: "ann" });
  const { socket: b } = await open({ name: "ben" });
  const made = await call(a, "room:create", room("match", 3));
  await call(b, "room:join", { roomId: made.room.id });
  const countdown = stateIs(a, "countdown");
  assert.deepEqual(await call(a, "room:ready", { ready: true }), { ok: true });
  assert.deepEqual(await call(b, "room:ready", { ready: true }), { ok: true });
  assert.ok((await countdown).seconds >= 1);
  // Listen now: the result and the state changes arrive together at the end of the match.
  const finished = stateIs(a, "finished");
  const waiting = stateIs(a, "waiting");
  const ended = waitFor(b, "room:event", (e) => e.type === "match_ended", "the results");
  await stateIs(a, "playing");
  // Nobody joins a match under way, and open listings skip it.
  const { socket: late } = await open({ name: "late" });
  assert.equal((await call(late, "room:join", { roomId: made.room.id })).error.code, "match_in_progress");
  const openRooms = await call(late, "rooms:list", { hasSpace: true });
  assert.ok(!openRooms.rooms.some((r) => r.id === made.room.id));
  const results = await ended;
  assert.deepEqual(results.players.map((p) => p.name).sort(), ["ann", "ben"]);
  for (const p of results.players) {
    assert.deepEqual(Object.keys(p).sort(), ["name", "playerId", "score", "stats"]);
    assert.deepEqual(Object.keys(p.stats).sort(), ["deaths", "kills"]);
  }
  assert.ok("winner" in results && "matchNo" in results);
  await finished;
  await waiting;
  const lines = readFileSync(ctx.logPath, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const logged = lines.find((l) => l.room === made.room.id && l.matchNo === results.matchNo);
  assert.ok(logged, "the result is in the match log");
  assert.deepEqual(logged.players, results.players);
  // After the results the room takes players again.
  assert.equal((await call(late, "room:join", { roomId: made.room.id })).ok, true);
  for (const s of [a, b, late]) await call(s, "room:leave");
});

test("only the owner starts early", async () => {
  const { socket: owner } = await open({ name: "owner" });
  const { socket: other } = await open({ name: "other" });
  const made = await call(owner, "room:create", room("owned", 4));
  await call(other, "room:join", { roomId: made.room.id });
  assert.equal((await call(other, "room:start")).error.code, "not_owner");
  const playing = stateIs(owner, "playing");
  assert.deepEqual(await call(owner, "room:start"), { ok: true });
  await playing;
  assert.equal((await call(owner, "room:start")).error.code, "match_in_progress");
  for (const s of [owner, other]) await call(s, "room:leave");
});

test("lobby refusals carry their codes", async () => {
  const { socket: a } = await open({ name: "solo" });
  const { socket: b } = await open({ name: "other" });
  const made = await call(a, "room:create", room("tiny", 1));
  assert.equal((await call(b, "room:join", { roomId: made.room.id })).error.code, "room_full");
  assert.equal((await call(a, "room:join", { roomId: made.room.id })).error.code, "already_in_room");
  assert.equal((await call(b, "room:chat", { text: "hi" })).error.code, "not_in_room");
  assert.equal((await call(b, "room:create", room("x".repeat(40), 2))).error.code, "bad_request");
  assert.equal((await call(b, "room:create", room("ok", 200))).error.code, "bad_request");
  await call(a, "room:leave");
});

test("a spectator watches a match without a seat", async () => {
  const { socket: p } = await open({ name: "player" });
  const made = await call(p, "room:create", room("watched", 2, { bots: 1 }));
  assert.equal(made.room.players, 2);
  const playing = stateIs(p, "playing");
  await call(p, "room:ready", { ready: true });
  await playing;
  const { socket: w } = await open({ name: "watcher", encoding: "json" });
  assert.equal((await call(w, "room:join", { roomId: made.room.id })).error.code, "match_in_progress");
  const watching = await call(w, "room:spectate", { roomId: made.room.id });
  assert.equal(watching.ok, true);
  assert.equal(watching.entity, 0);
  assert.equal(watching.room.players, 2);
  const snap = await waitFor(w, "snapshot", (s) => s.entities.filter((e) => e.kind === "player").length === 2);
  assert.ok(!snap.entities.some((e) => e.owner === watching.playerId));
  assert.equal((await call(w, "room:spectate", {})).error.code, "bad_request");
  await call(w, "room:leave");
  await call(p, "room:leave");
});

test("a dropped player resumes its seat with its reconnect token", async () => {
  const { socket: host } = await open({ name: "host" });
  const made = await call(host, "room:create", room("sticky", 4));
  const { socket: first } = await open({ name: "wanderer" });
  const joined = await call(first, "room:join", { roomId: made.room.id });
  const dropped = waitFor(host, "room:event", (e) => e.type === "player_disconnected" && e.playerId === joined.playerId);
  first.close();
  assert.ok((await dropped).graceSecs > 0);
  const { socket: back, welcome } = await open({ name: "wanderer", token: joined.reconnectToken, encoding: "json" });
  assert.equal(welcome.playerId, joined.playerId);
  assert.equal(welcome.resumed.entity, joined.entity);
  assert.equal(welcome.resumed.room.id, made.room.id);
  await waitFor(back, "snapshot", (s) => s.entities.some((e) => e.id === joined.entity && e.owner === joined.playerId));
  await call(back, "room:leave");
  await call(host, "room:leave");
});
