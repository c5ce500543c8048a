//! The bandwidth report: snapshot sizes on the Colyseus schema benchmark's workload and on a
//! large arena, beside the anchors in docs/BENCHMARKS.md.
//!
//!   cargo run --release -p tickwire-benches --bin bandwidth [-- --json]
//!
//! Sizes are of the encoded snapshot (the delta body); a datagram adds 5 bytes (type and input
//! ack), counted in `bytes_per_client_per_sec`.

use glam::Vec2;
use std::collections::VecDeque;
use tickwire_arena::view as arena;
use tickwire_arena::{EntityKind, EntityState};
use tickwire_game::GameMode;
use tickwire_protocol::delta;
use tickwire_protocol::packet::SNAPSHOT_HEADER_BYTES;
use tickwire_protocol::{Input, InputBatch, NetId, PlayerId, Record, Snapshot, Tick};
use tickwire_server::room::RoomSim;
use tickwire_standard::{Standard as StandardGame, StandardConfig, StandardInput};

/// Trials averaged for each Colyseus row (positions are random).
const TRIALS: usize = 200;

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let colyseus = colyseus_xy();
    let arena = arena();
    let standard = standard();
    if json {
        println!(
            "{{\"colyseus_xy\":{{\"initial_100\":{:.1},\"change_1\":{:.2},\"change_50\":{:.1},\"change_100\":{:.1}}},\
             \"arena\":{{\"entities\":{},\"moving\":{:.1},\"hz\":{},\"bits_per_moving_entity\":{:.2},\
             \"bits_per_unchanged_entity\":{:.4},\"bytes_per_client_per_sec\":{:.0},\"full_snapshot_bytes\":{}}},\
             \"standard\":{{\"entities\":{},\"hz\":{},\"bits_per_entity\":{:.2},\"bytes_per_client_per_sec\":{:.0}}}}}",
            colyseus.initial_100,
            colyseus.change_1,
            colyseus.change_50,
            colyseus.change_100,
            arena.entities,
            arena.moving,
            arena.hz,
            arena.bits_per_moving_entity,
            arena.bits_per_unchanged_entity,
            arena.bytes_per_client_per_sec,
            arena.full_snapshot_bytes,
            standard.entities,
            standard.hz,
            standard.bits_per_entity,
            standard.bytes_per_client_per_sec,
        );
        return;
    }
    println!("Colyseus schema workload: 100 entities, random whole-unit x/y in 1000x1000");
    println!(
        "{:<14}{:>12}{:>12}{:>10}",
        "row", "tickwire B", "Colyseus B", "ratio"
    );
    for (row, ours, theirs) in [
        ("initial_100", colyseus.initial_100, 2671.0),
        ("change_1", colyseus.change_1, 9.0),
        ("change_50", colyseus.change_50, 342.0),
        ("change_100", colyseus.change_100, 668.0),
    ] {
        println!("{row:<14}{ours:>12.1}{theirs:>12.0}{:>10.2}", ours / theirs);
    }
    println!();
    println!(
        "Arena: {} entities ({} players, {} drones), {:.1} changed per snapshot, {} Hz, acks 2 ticks late, 5% lost",
        arena.entities, PLAYERS, DRONES, arena.moving, arena.hz
    );
    println!(
        "  bits per moving entity    {:.2}",
        arena.bits_per_moving_entity
    );
    println!(
        "  bits per unchanged entity {:.4}",
        arena.bits_per_unchanged_entity
    );
    println!(
        "  bytes per client per s    {:.0}",
        arena.bytes_per_client_per_sec
    );
    println!("  full snapshot bytes       {}", arena.full_snapshot_bytes);
    println!();
    println!(
        "Standard workload (DESIGN.md): {} entities ({} players, 50 drones whose velocity changes every tick), {} Hz snapshots",
        standard.entities, STANDARD_PLAYERS, standard.hz
    );
    println!(
        "  bits per entity           {:.2}",
        standard.bits_per_entity
    );
    println!(
        "  bytes per client per s    {:.0}",
        standard.bytes_per_client_per_sec
    );
}

struct Colyseus {
    initial_100: f64,
    change_1: f64,
    change_50: f64,
    change_100: f64,
}

/// As in the Colyseus schema benchmark: 100 entities at random whole-number x/y (here in a
/// 1000x1000 area), then x/y of 1, 50 or all 100 of them set to new random values.
fn colyseus_xy() -> Colyseus {
    let schema = arena::schema();
    let mut rng = fastrand::Rng::with_seed(2671);
    let mut sums = [0usize; 4];
    for _ in 0..TRIALS {
        let entities: Vec<EntityState> = (1..=100)
            .map(|i| resting(i, random_spot(&mut rng)))
            .collect();
        let base = arena::capture(Tick(1000), entities.iter().copied());
        sums[0] += delta::encode(&schema, None, &base).len();
        for (k, changes) in [1usize, 50, 100].into_iter().enumerate() {
            let mut moved = entities.clone();
            let mut picked: Vec<usize> = (0..100).collect();
            rng.shuffle(&mut picked);
            for &i in &picked[..changes] {
                moved[i] = resting(moved[i].id.0, random_spot(&mut rng));
            }
            let next = arena::capture(Tick(1001), moved);
            let bytes = delta::encode(&schema, Some(&base), &next);
            assert_eq!(
                delta::decode(&schema, &bytes, Some(&base)).as_ref(),
                Ok(&next)
            );
            sums[k + 1] += bytes.len();
        }
    }
    let mean = |s: usize| s as f64 / TRIALS as f64;
    Colyseus {
        initial_100: mean(sums[0]),
        change_1: mean(sums[1]),
        change_50: mean(sums[2]),
        change_100: mean(sums[3]),
    }
}

fn random_spot(rng: &mut fastrand::Rng) -> Vec2 {
    Vec2::new(rng.u32(0..1000) as f32, rng.u32(0..1000) as f32)
}

fn resting(id: u32, pos: Vec2) -> EntityState {
    EntityState::quantise(
        NetId(id),
        EntityKind::Drone,
        None,
        pos,
        Vec2::ZERO,
        0.0,
        100.0,
    )
}

const PLAYERS: u32 = 16;
const DRONES: u32 = 1000;
const HZ: u32 = 60;
const ACK_DELAY: usize = 2;
const ACK_LOSS: f64 = 0.05;
const WARMUP: u32 = 120;
const MEASURED: u32 = 1200;

struct Arena {
    entities: usize,
    moving: f64,
    hz: u32,
    bits_per_moving_entity: f64,
    bits_per_unchanged_entity: f64,
    bytes_per_client_per_sec: f64,
    full_snapshot_bytes: usize,
}

/// A synthetic arena (not the game's systems, so the movement pattern is exactly as described):
/// 16 players who move at 220 units/s, changing direction about every half second and turning
/// their aim all the time; 1,000 drones of which about 10% fly at 80 units/s at any moment,
/// turning now and then, stopping and starting so the share stays near 10%; the rest rest.
fn arena() -> Arena {
    let schema = arena::schema();
    let mut rng = fastrand::Rng::with_seed(1000);
    let dt = 1.0 / HZ as f32;
    struct Mover {
        pos: Vec2,
        heading: f32,
        speed: f32,
        moving: bool,
        aim: f32,
    }
    let mut movers: Vec<Mover> = (0..PLAYERS + DRONES)
        .map(|i| Mover {
            pos: Vec2::new(rng.f32() * 968.0 + 16.0, rng.f32() * 968.0 + 16.0),
            heading: rng.f32() * std::f32::consts::TAU,
            speed: if i < PLAYERS { 220.0 } else { 80.0 },
            moving: i < PLAYERS || rng.f64() < 0.1,
            aim: 0.0,
        })
        .collect();
    let capture = |movers: &[Mover], tick: u32| {
        let es: Vec<EntityState> = movers
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let player = (i as u32) < PLAYERS;
                let vel = if m.moving {
                    Vec2::from_angle(m.heading) * m.speed
                } else {
                    Vec2::ZERO
                };
                let kind = if player {
                    EntityKind::Player
                } else {
                    EntityKind::Drone
                };
                let owner = player.then_some(PlayerId(i as u32 + 1));
                let aim = if player { m.aim } else { m.heading };
                EntityState::quantise(NetId(i as u32 + 1), kind, owner, m.pos, vel, aim, 100.0)
            })
            .collect();
        arena::capture(Tick(tick), es).with_tick_rate(HZ as u8)
    };

    // The server's history and the client's acks in flight (arriving ACK_DELAY ticks later).
    let mut history: VecDeque<Snapshot> = VecDeque::new();
    let mut in_flight: VecDeque<Option<Tick>> = VecDeque::new();
    let mut acked: Option<Tick> = None;
    let (mut bits, mut changed, mut snapshots) = (0usize, 0usize, 0usize);
    let mut full_snapshot_bytes = 0;
    for tick in 1..=WARMUP + MEASURED {
        for (i, m) in movers.iter_mut().enumerate() {
            let player = (i as u32) < PLAYERS;
            if player {
                if rng.f64() < 1.0 / 30.0 {
                    m.heading = rng.f32() * std::f32::consts::TAU;
                }
                m.aim = (m.aim + 0.05 + 3.2).rem_euclid(std::f32::consts::TAU) - 3.2;
            } else if m.moving {
                if rng.f64() < 1.0 / 90.0 {
                    m.heading += rng.f32() - 0.5;
                }
                if rng.f64() < 1.0 / 300.0 {
                    m.moving = false;
                }
            } else if rng.f64() < 1.0 / 2700.0 {
                m.moving = true;
            }
            if m.moving {
                let next = m.pos + Vec2::from_angle(m.heading) * m.speed * dt;
                if next.x < 16.0 || next.x > 984.0 || next.y < 16.0 || next.y > 984.0 {
                    m.heading += std::f32::consts::PI;
                } else {
                    m.pos = next;
                }
            }
        }
        let mut snap = capture(&movers, tick);
        // As the server does: straight movers stay on their prediction from the last capture.
        if let Some(prev) = history.back() {
            delta::settle(&schema, prev, &mut snap);
        }
        // Acks sent ACK_DELAY ticks ago arrive now (5% never do).
        if in_flight.len() == ACK_DELAY
            && let Some(Some(t)) = in_flight.pop_front()
        {
            acked = Some(acked.map_or(t, |a: Tick| a.max(t)));
        }
        let base = acked.and_then(|t| history.iter().find(|s| s.tick == t));
        let bytes = delta::encode(&schema, base, &snap);
        let decoded = delta::decode(
            &schema,
            &bytes,
            base.filter(|b| delta::usable_baseline(b, &snap)),
        );
        assert_eq!(decoded.as_ref(), Ok(&snap), "arena round trip at {tick}");
        if tick > WARMUP {
            let diff = match base {
                Some(b) => count_changed(b, &snap),
                None => snap.len(),
            };
            bits += bytes.len() * 8;
            changed += diff;
            snapshots += 1;
        }
        if tick == WARMUP {
            full_snapshot_bytes = delta::encode(&schema, None, &snap).len();
        }
        in_flight.push_back((rng.f64() >= ACK_LOSS).then_some(snap.tick));
        history.push_back(snap);
        if history.len() > 64 {
            history.pop_front();
        }
    }
    // What unchanged entities cost: a delta in which nothing changed (every entity at rest in
    // both snapshots, so none moves either), spread over all of them.
    let last = history.back().expect("ran");
    let resting: Vec<EntityState> = arena::entities(last)
        .map(|e| EntityState {
            vel: EntityState::REST_VEL,
            ..e
        })
        .collect();
    let still = arena::capture(last.tick, resting.iter().copied()).with_tick_rate(HZ as u8);
    let same = arena::capture(Tick(last.tick.0 + 1), resting).with_tick_rate(HZ as u8);
    let idle_bits = delta::encode(&schema, Some(&still), &same).len() * 8;
    let entities = last.len();
    let mean_bits = bits as f64 / snapshots as f64;
    let moving = changed as f64 / snapshots as f64;
    Arena {
        entities,
        moving,
        hz: HZ,
        bits_per_moving_entity: (mean_bits - idle_bits as f64) / moving,
        bits_per_unchanged_entity: idle_bits as f64 / entities as f64,
        bytes_per_client_per_sec: (mean_bits / 8.0 + SNAPSHOT_HEADER_BYTES as f64) * HZ as f64,
        full_snapshot_bytes,
    }
}

fn count_changed(base: &Snapshot, next: &Snapshot) -> usize {
    next.iter().filter(|e| base.get(e.id) != Some(*e)).count()
}

/// The standard workload (DESIGN.md) through the real `standard` game and the server's room:
/// 16 players whose inputs {dx, dy} of about 4 units turn slowly, 30 a second, each acking the
/// snapshot before (5% of acks lost); 50 drones whose velocity changes every tick; 60 Hz, 30 Hz
/// snapshots.
struct Standard {
    entities: usize,
    hz: u32,
    bits_per_entity: f64,
    bytes_per_client_per_sec: f64,
}

const STANDARD_PLAYERS: u32 = 16;
const STANDARD_SECS: u32 = 30;

fn standard() -> Standard {
    let game = StandardGame::new_room(&StandardConfig::default(), 5);
    let mut sim = RoomSim::new(game, 60, 2);
    for p in 1..=STANDARD_PLAYERS {
        sim.join(PlayerId(p), &format!("p{p}"))
            .expect("the game seats every player");
    }
    let mut rng = fastrand::Rng::with_seed(30);
    let mut acked: Vec<Option<Tick>> = vec![None; STANDARD_PLAYERS as usize];
    let mut out = Vec::new();
    let (mut bytes, mut bits, mut entity_snapshots, mut snapshots) =
        (0usize, 0usize, 0usize, 0usize);
    let warmup = 60;
    for tick in 1..=(warmup + STANDARD_SECS * 60) {
        if tick % 2 == 1 {
            for p in 1..=STANDARD_PLAYERS {
                let heading = tick as f32 * 0.01 + p as f32;
                let step = Vec2::from_angle(heading) * 4.0;
                let slots = StandardInput {
                    dx: step.x,
                    dy: step.y,
                }
                .to_slots()
                .expect("within the standard input");
                sim.receive(
                    PlayerId(p),
                    &InputBatch {
                        ack_tick: acked[p as usize - 1],
                        inputs: vec![Input { seq: tick, slots }],
                    },
                );
            }
        }
        if !sim.step() {
            continue;
        }
        out.clear();
        sim.snapshot(&mut out);
        let tick_now = sim.tick();
        for o in &out {
            if tick > warmup {
                bytes += o.body.len() + SNAPSHOT_HEADER_BYTES;
                bits += o.body.len() * 8;
                entity_snapshots += sim.history().latest().map_or(0, |s| s.len());
                snapshots += 1;
            }
            if rng.f64() >= ACK_LOSS {
                acked[o.player.0 as usize - 1] = Some(tick_now);
            }
        }
    }
    let entities = sim.history().latest().map_or(0, |s| s.len());
    Standard {
        entities,
        hz: 30,
        bits_per_entity: bits as f64 / entity_snapshots as f64,
        bytes_per_client_per_sec: bytes as f64 / snapshots as f64 * 30.0,
    }
}
