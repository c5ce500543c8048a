//! The derive macros declare exactly what a hand-written declaration would, and their
//! conversions round-trip through the slots.

use tickwire_game::glam::Vec2;
use tickwire_game::protocol::NetId;
use tickwire_game::protocol::schema::{Field, FieldType, Kind, Predict};
use tickwire_game::{Messages, Record};

#[derive(Debug, Clone, PartialEq, Record)]
struct Ship {
    #[tw(fixed(0.0, 1024.0, 1, 16), integrate = "vel")]
    pos: Vec2,
    #[tw(fixed(-64.0, 64.0, 1, 8))]
    vel: Vec2,
    #[tw(angle(10), heading = "vel")]
    heading: f32,
    #[tw(name = "hp", int(0, 100))]
    health: u8,
    #[tw(variants("idle", "boost", "dock"))]
    mode: u8,
    shielded: bool,
    target: NetId,
    #[tw(fixed_closed(-1.0, 1.0, 1, 4))]
    throttle: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Messages)]
enum Command {
    Buy {
        #[tw(int(1, 9))]
        count: u8,
        #[tw(entity)]
        from: u32,
    },
    #[tw(name = "pass")]
    Skip,
    Aim {
        #[tw(fixed_closed(-1.0, 1.0, 1, 64))]
        at: Vec2,
    },
}

#[test]
fn a_derived_record_declares_what_a_hand_written_one_would() {
    let fields = vec![
        Field::new("pos", FieldType::fixed(0.0, 1024.0, 1, 16), 2).predicted(Predict::Integrate(1)),
        Field::new("vel", FieldType::fixed(-64.0, 64.0, 1, 8), 2),
        Field::new("heading", FieldType::Angle { bits: 10 }, 1).predicted(Predict::Heading(1)),
        Field::new("hp", FieldType::Int { min: 0, max: 100 }, 1),
        Field::new(
            "mode",
            FieldType::Enum {
                variants: vec!["idle".into(), "boost".into(), "dock".into()],
            },
            1,
        ),
        Field::new("shielded", FieldType::Bool, 1),
        Field::new("target", FieldType::Entity, 1),
        Field::new("throttle", FieldType::fixed_closed(-1.0, 1.0, 1, 4), 1),
    ];
    assert_eq!(Ship::fields(), fields);
    let ship = Ship {
        pos: Vec2::new(100.5, 3.25),
        vel: Vec2::new(-2.0, 0.125),
        heading: 0.0,
        health: 42,
        mode: 2,
        shielded: true,
        target: NetId(4_000_000_007),
        throttle: 1.0,
    };
    let slots = ship.to_slots().unwrap();
    assert_eq!(slots.len(), 10);
    assert_eq!(Ship::from_slots(&slots).unwrap(), ship);
    let too_fast = Ship {
        vel: Vec2::new(99.0, 0.0),
        ..ship
    };
    assert!(too_fast.to_slots().is_err());
}

#[test]
fn derived_messages_name_their_kinds_in_snake_case_and_round_trip() {
    assert_eq!(
        Command::kinds(),
        vec![
            Kind::new(
                "buy",
                vec![
                    Field::new("count", FieldType::Int { min: 1, max: 9 }, 1),
                    Field::new("from", FieldType::Entity, 1),
                ]
            ),
            Kind::new("pass", vec![]),
            Kind::new(
                "aim",
                vec![Field::new(
                    "at",
                    FieldType::fixed_closed(-1.0, 1.0, 1, 64),
                    2
                )]
            ),
        ]
    );
    for c in [
        Command::Buy { count: 3, from: 7 },
        Command::Skip,
        Command::Aim {
            at: Vec2::new(0.5, -1.0),
        },
    ] {
        let (kind, slots) = c.to_message().unwrap();
        assert_eq!(Command::from_message(kind, &slots).unwrap(), c);
    }
    assert!(Command::Buy { count: 0, from: 1 }.to_message().is_err());
}
