//! Identifiers shared by both ends. All are plain numbers on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A room (a lobby entry and its match), unique within one server.
    RoomId,
    "r"
);
id_type!(
    /// A player, unique within one server for the server's lifetime.
    PlayerId,
    "p"
);
id_type!(
    /// A replicated entity, unique within one room; never reused while the room lives.
    NetId,
    "e"
);
id_type!(
    /// A simulation step number within one room; the first step is tick 1.
    Tick,
    "t"
);

impl Tick {
    pub fn next(self) -> Tick {
        Tick(self.0.wrapping_add(1))
    }
}
