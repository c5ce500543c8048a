//! `app.replicate::<C>()` against a game that is not the arena: a headless Bevy app built for
//! the standard workload's schema mirrors its declared drone component onto every drone, the
//! values follow the server's (interpolated between snapshots), and a component that declares
//! other fields is mirrored nowhere.

use bevy::prelude::*;
use std::collections::HashMap;
use tickwire_client_bevy::{
    CurrentRoom, LobbyRequest, NetEntity, NetStatus, ReplicateApp, Replicated, TickwirePlugins,
    TickwireSettings,
};
use tickwire_game::Record;
use tickwire_game::glam::Vec2;
use tickwire_protocol::{CreateRoom, NetId};
use tickwire_tests::{pin, server};

mod common;
use common::frames_until;

/// The standard mode's drone, declared as the game declares it.
#[derive(Component, Record, Clone, Debug, PartialEq)]
struct Drone {
    #[tw(fixed(0.0, 1024.0, 1, 16), integrate = "vel")]
    pos: Vec2,
    #[tw(fixed(-256.0, 256.0, 1, 8))]
    vel: Vec2,
    #[tw(angle(10), heading = "vel")]
    angle: f32,
}

impl Replicated for Drone {
    const KIND: &'static str = "drone";
}

/// The same kind declared with another precision: must never be mirrored.
#[derive(Component, Record, Clone, Debug, PartialEq)]
struct Coarse {
    #[tw(fixed(0.0, 1024.0, 1, 4))]
    pos: Vec2,
}

impl Replicated for Coarse {
    const KIND: &'static str = "drone";
}

fn drones(world: &mut World) -> HashMap<NetId, Drone> {
    let mut q = world.query::<(&NetEntity, &Drone)>();
    q.iter(world).map(|(n, d)| (n.id, d.clone())).collect()
}

#[test]
fn a_standard_room_mirrors_its_declared_drones_into_bevy() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server(|_| {}));
    let settings = TickwireSettings::new(server.quic_addr, pin(&server), "std")
        .with_schema(tickwire_standard::schema());
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(settings)
        .add_plugins(TickwirePlugins)
        .replicate::<Drone>()
        .replicate::<Coarse>();
    frames_until(&mut app, "the connection", |w| {
        w.resource::<NetStatus>().player().is_some()
    });
    app.world_mut()
        .write_message(LobbyRequest::Create(CreateRoom {
            name: "standard in bevy".into(),
            mode: "standard".into(),
            max_players: 4,
            private: false,
            bots: 0,
            fill_bots: false,
        }));
    frames_until(&mut app, "the room", |w| {
        w.resource::<CurrentRoom>().joined.is_some()
    });
    frames_until(&mut app, "50 mirrored drones", |w| drones(w).len() == 50);
    let before = drones(app.world_mut());
    for d in before.values() {
        assert!((0.0..=1000.0).contains(&d.pos.x) && (0.0..=1000.0).contains(&d.pos.y));
        assert!(d.vel.length() <= 120.5, "{d:?}");
    }
    frames_until(&mut app, "the drones to move", |w| {
        let now = drones(w);
        now.len() == 50 && now.iter().all(|(id, d)| before[id].pos != d.pos)
    });
    // Between two snapshots a drone is shown part of the way along: off the 1/16 grid that
    // every snapshot's positions are on.
    frames_until(&mut app, "an interpolated drone", |w| {
        drones(w)
            .values()
            .any(|d| (d.pos * 16.0).fract().abs().max_element() > 0.01)
    });
    let mut coarse = app.world_mut().query::<&Coarse>();
    assert_eq!(coarse.iter(app.world()).count(), 0);
    rt.block_on(server.shutdown());
}
