// Type-checked by test/types.test.js (tsc --strict): a game client written against index.d.ts,
// so the types describe what the library does. Never run.
import { connect, TickwireError, type Entity, type Room } from "@tickwire/client";
import { SnapshotStream } from "@tickwire/client/decoder";

export async function play(url: string): Promise<void> {
  const client = await connect(url, { name: "typed", encoding: "binary", inputRate: 30 });
  const rooms = await client.listRooms({ mode: "arena", hasSpace: true });
  const room: Room = rooms.length > 0 ? await client.join(rooms[0].id) : await client.quickJoin("arena");
  room.predict = (e: Entity, input, dt: number) => {
    const pos = e.pos as number[];
    const move = input.move as number[];
    e.pos = [pos[0] + move[0] * 220 * dt, pos[1] + move[1] * 220 * dt];
  };
  const off = room.onAdd((e) => console.log(e.kind, e.id, e.owner));
  room.listen("health", (e, value, previous) => console.log(e.id, value, previous), { kind: "player" });
  room.onMessage((name, values) => console.log(name, values));
  room.setInput({ move: [1, 0], aim: 0, buttons: false });
  const world: Entity[] = room.frame(performance.now() / 1000);
  console.log(world.length, room.me?.pos, client.stats.ping, room.stats.corrupt);
  off();
  try {
    await client.join("NOCODE");
  } catch (e) {
    if (e instanceof TickwireError) console.log(e.code, e.reason);
  }
  const stream = new SnapshotStream(room.schema);
  console.log(stream.current?.tick);
  await client.leave();
  client.close();
}
