// The board game (four in a row) with the official socket.io-client: a game whose state is
// room-level and whose moves are typed messages (`room:message {name, values}` with an ack).
// Two players ready up, are told their turns, have out-of-turn and undeclared moves refused,
// and play to a result; a third socket decodes the binary board with the transmitted schema.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer, call, waitFor, room, withTimeout } from "./helpers.js";
import { SnapshotStream, view } from "@tickwire/client/decoder";

const ctx = useServer(["--countdown-secs", "0", "--results-secs", "1"]);
const open = ctx.open;
const yourTurn = (socket) =>
  waitFor(socket, "room:event", (e) => e.type === "message" && e.name === "your_turn", "your_turn");
const drop = (socket, column) => call(socket, "room:message", { name: "drop", values: { column } });

test("two players play four in a row to a result through typed messages", async () => {
  const { socket: red, welcome: redWelcome } = await open({ name: "red" });
  const { socket: yellow } = await open({ name: "yellow" });
  const { socket: watcher } = await open({ name: "watcher" });
  const made = await call(red, "room:create", room("four", 3, { mode: "board" }));
  assert.equal(made.ok, true);
  assert.deepEqual(made.schema.kinds.map((k) => k.name), ["board"]);
  assert.deepEqual(made.schema.input, [], "the board takes no per-tick input");
  assert.deepEqual(made.schema.messages.toRoom.map((k) => k.name), ["drop", "resign"]);
  assert.equal((await call(yellow, "room:join", { roomId: made.room.id })).ok, true);
  assert.equal((await call(watcher, "room:spectate", { roomId: made.room.id })).ok, true);

  const refused = await drop(red, 0);
  assert.equal(refused.ok, false);
  assert.deepEqual(refused.error, { code: "refused", message: "no match is running" });

  const first = yourTurn(red);
  await call(red, "room:ready", { ready: true });
  await call(yellow, "room:ready", { ready: true });
  assert.equal((await first).values.moves, 0);

  // Out of turn (the game says no), and outside the declaration (the server says no).
  assert.equal((await drop(yellow, 0)).error.code, "refused");
  for (const bad of [
    { name: "drop", values: { column: 7 } },
    { name: "drop", values: { column: 1.5 } },
    { name: "drop", values: {} },
    { name: "drop", values: { column: 1, row: 2 } },
    { name: "castle" },
    { values: { column: 1 } },
  ]) {
    const reply = await call(yellow, "room:message", bad);
    assert.equal(reply.error?.code, "bad_request", JSON.stringify(bad));
  }

  // The watcher decodes the board from binary snapshots with the schema alone.
  const stream = new SnapshotStream(made.schema);
  let seq = 0;
  watcher.on("snapshot", (buf) => {
    const out = stream.apply(buf);
    if (out) watcher.emit("input", { seq: ++seq, ackTick: out.snapshot.tick });
  });

  // Each turn's word is awaited from before the move that causes it: it may arrive before
  // the mover's ack.
  for (const column of [0, 1, 2]) {
    const yellowsTurn = yourTurn(yellow);
    assert.equal((await drop(red, column)).ok, true);
    await yellowsTurn;
    const redsTurn = yourTurn(red);
    assert.equal((await drop(yellow, column)).ok, true);
    await redsTurn;
  }
  const ended = waitFor(yellow, "room:event", (e) => e.type === "match_ended", "the result");
  assert.equal((await drop(red, 3)).ok, true);
  const result = await ended;
  assert.equal(result.winner, redWelcome.playerId);
  assert.deepEqual(result.players.map((p) => p.score).sort(), [0, 1]);

  await withTimeout("the watcher to see the winning board", new Promise((resolve) => {
    const check = () => {
      const board = stream.current && view(stream.schema, stream.current.entities[0]);
      if (board?.winner === "red") {
        watcher.off("snapshot", check);
        resolve();
      }
    };
    watcher.on("snapshot", check);
    check();
  }));
  const board = view(stream.schema, stream.current.entities[0]);
  assert.deepEqual([board.r0c0, board.r0c1, board.r0c2, board.r0c3], ["red", "red", "red", "red"]);
  assert.deepEqual([board.r1c0, board.r1c1, board.r1c2], ["yellow", "yellow", "yellow"]);
  assert.equal(board.moves, 7);
  watcher.off("snapshot");
  for (const s of [red, yellow, watcher]) await call(s, "room:leave");
});

test("an arena room refuses an undeclared input field and a message it does not take", async () => {
  const { socket } = await open({ name: "shooter" });
  assert.equal((await call(socket, "room:create", room("arena", 2))).ok, true);
  const wrong = await call(socket, "input", { seq: 1, ackTick: null, dx: 1, dy: 0 });
  assert.equal(wrong.error.code, "bad_request");
  const nan = await call(socket, "input", { seq: 2, ackTick: null, move: [null, 0], aim: 0, buttons: 0 });
  assert.equal(nan.error.code, "bad_request");
  const far = await call(socket, "input", { seq: 3, ackTick: null, move: [3, 0], aim: 0, buttons: 0 });
  assert.equal(far.error.code, "bad_request");
  const message = await call(socket, "room:message", { name: "drop", values: { column: 1 } });
  assert.equal(message.error.code, "bad_request");
  await call(socket, "room:leave");
});

test("a client that names a schema's hash gets joins of that schema without the schema", async () => {
  const { socket: first } = await open({ name: "learner" });
  const made = await call(first, "room:create", room("hashes", 3, { mode: "board" }));
  assert.match(made.schemaHash, /^[0-9a-f]{16}$/);
  assert.ok(made.schema, "a client that named nothing gets the schema");
  const { socket: again } = await open({ name: "knower", extraAuth: { schemas: [made.schemaHash] } });
  const joined = await call(again, "room:join", { roomId: made.room.id });
  assert.equal(joined.ok, true);
  assert.equal(joined.schema, null);
  assert.equal(joined.schemaHash, made.schemaHash);
  const other = await call(again, "room:leave").then(() => call(again, "room:create", room("shooters", 2)));
  assert.ok(other.schema, "a room of another schema sends it");
  await assert.rejects(open({ name: "liar", extraAuth: { schemas: ["nothex"] } }), /bad_request/);
  for (const s of [first, again]) await call(s, "room:leave");
});
