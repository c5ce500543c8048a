//! A game's replicated schema: the kinds of entity it replicates, each a list of fields with
//! their type and precision, and the prediction relations between them. The server's capture,
//! the snapshot codec ([`crate::delta`]) and every client read this one descriptor; a game
//! declares it (usually with the derive macro) and never touches bits itself.
//!
//! Every value is held quantised, as an unsigned *slot* (`u32`): a field of `dims` components
//! takes `dims` slots. What a slot means depends on the field's [`FieldType`]; docs/PROTOCOL.md
//! ("Schemas") gives the exact rules a second implementation follows.

use serde::{Deserialize, Serialize};

/// Real value of one quantum of a fixed-point field: `num / den` units.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    pub num: u32,
    pub den: u32,
}

/// How a field's slots are quantised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FieldType {
    /// A real number in steps of `step` from `min_q · step`: slot `q` is the value
    /// `(min_q + q) · step`, `q` in `0..count`.
    #[serde(rename_all = "camelCase")]
    Fixed {
        step: Step,
        min_q: i64,
        count: u32,
    },
    /// A whole number in `min..=max`, held as `value − min`.
    Int {
        min: i64,
        max: i64,
    },
    /// An angle in `2^bits` steps of a turn, wrapping.
    Angle {
        bits: u8,
    },
    /// One of the named variants, by index.
    Enum {
        variants: Vec<String>,
    },
    Bool,
    /// Another entity's net id (0: none).
    Entity,
}

/// What the codec predicts a field to be before anything is sent about it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "from", rename_all = "camelCase")]
pub enum Predict {
    /// As it was in the baseline.
    #[default]
    Hold,
    /// A position that moves along the named velocity field (same dims, both fixed-point).
    Integrate(u16),
    /// An angle that points along the named 2-d velocity field.
    Heading(u16),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(flatten)]
    pub ty: FieldType,
    /// Components (1 for a scalar, 2 for a `Vec2`); all share the type and change together.
    pub dims: u8,
    #[serde(default)]
    pub predict: Predict,
}

impl Field {
    /// A field held as it was (no prediction).
    pub fn new(name: impl Into<String>, ty: FieldType, dims: u8) -> Field {
        Field {
            name: name.into(),
            ty,
            dims,
            predict: Predict::Hold,
        }
    }

    pub fn predicted(mut self, predict: Predict) -> Field {
        self.predict = predict;
        self
    }
}

/// One kind of replicated entity (one replicated component type), or one kind of message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kind {
    pub name: String,
    pub fields: Vec<Field>,
}

impl Kind {
    pub fn new(name: impl Into<String>, fields: Vec<Field>) -> Kind {
        Kind {
            name: name.into(),
            fields,
        }
    }
}

/// Largest numerator or denominator of a fixed-point step: it keeps a prediction's arithmetic
/// (the product of two steps' terms and a tick rate) well inside 64 bits.
pub const MAX_STEP_TERM: u32 = 1 << 20;

/// The whole declared schema of a game: the kinds of entity it replicates, the fields of its
/// input, and the messages each way. Serialised as `{"kinds": [...], "input": [...],
/// "messages": {"toRoom": [...], "toPlayer": [...]}}` (docs/PROTOCOL.md, "Schemas"); what is
/// read is checked like [`Schema::new`] and the `with_` builders check it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "SchemaDef", into = "SchemaDef")]
pub struct Schema {
    kinds: Vec<Kind>,
    input: Vec<Field>,
    messages: MessageKinds,
    layout: Vec<KindLayout>,
}

/// The messages a game declares, by direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageKinds {
    /// What a player may send its room.
    #[serde(default)]
    pub to_room: Vec<Kind>,
    /// What the room sends a player (or all of them).
    #[serde(default)]
    pub to_player: Vec<Kind>,
}

#[derive(Serialize, Deserialize)]
struct SchemaDef {
    kinds: Vec<Kind>,
    #[serde(default)]
    input: Vec<Field>,
    #[serde(default)]
    messages: MessageKinds,
}

impl TryFrom<SchemaDef> for Schema {
    type Error = SchemaError;

    fn try_from(def: SchemaDef) -> Result<Schema, SchemaError> {
        Schema::new(def.kinds)?
            .with_input(def.input)?
            .with_messages(def.messages)
    }
}

impl From<Schema> for SchemaDef {
    fn from(s: Schema) -> SchemaDef {
        SchemaDef {
            kinds: s.kinds,
            input: s.input,
            messages: s.messages,
        }
    }
}

/// Where each field's slots start, and the order the codec sends fields in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct KindLayout {
    pub(crate) offsets: Vec<usize>,
    pub(crate) slots: usize,
    /// Fields without a prediction first (the values a prediction reads), then the predicted.
    pub(crate) order: Vec<usize>,
    pub(crate) plans: Vec<Plan>,
    /// How the codec sends each field.
    pub(crate) codes: Vec<crate::code::Code>,
    /// The fields with a prediction, as (first slot, plan): what carrying an entity forward
    /// works through.
    pub(crate) predicted: Vec<(usize, Plan)>,
}

/// A field's prediction with what it needs worked out once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Plan {
    Hold,
    /// Moves by `(velocity slot − zero) · kn / kd` quanta per second.
    Integrate {
        velocity: usize,
        dims: usize,
        zero: i64,
        kn: i64,
        kd: i64,
        max: u32,
    },
    Heading {
        velocity: usize,
        zero: i64,
        steps: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("a schema needs at least one kind, and at most {MAX_KINDS}")]
    Kinds,
    #[error("kind {0:?} is declared twice")]
    DuplicateKind(String),
    #[error("{kind}.{field}: {why}")]
    Field {
        kind: String,
        field: String,
        why: &'static str,
    },
}

/// Most kinds a schema may declare.
pub const MAX_KINDS: usize = 1 << 12;
/// Most fields a kind may declare (masks are written field by field, so this is not a cost cap
/// but a bound on what a peer may claim).
pub const MAX_FIELDS: usize = 1 << 10;
/// How far from zero a fixed-point range may start, in steps: keeps every value's arithmetic
/// within 64 bits (and exact in a JavaScript number).
const MAX_FIXED_MIN: u64 = 1 << 40;

impl Schema {
    pub fn new(kinds: Vec<Kind>) -> Result<Schema, SchemaError> {
        if kinds.is_empty() || kinds.len() > MAX_KINDS {
            return Err(SchemaError::Kinds);
        }
        let mut layout = Vec::with_capacity(kinds.len());
        for (i, kind) in kinds.iter().enumerate() {
            if kinds[..i].iter().any(|k| k.name == kind.name) {
                return Err(SchemaError::DuplicateKind(kind.name.clone()));
            }
            layout.push(kind.check()?);
        }
        Ok(Schema {
            kinds,
            input: Vec::new(),
            messages: MessageKinds::default(),
            layout,
        })
    }

    /// The schema with the game's input declared as `fields` (none: the game takes no input).
    pub fn with_input(mut self, fields: Vec<Field>) -> Result<Schema, SchemaError> {
        check_record(&Kind::new("input", fields.clone()))?;
        self.input = fields;
        Ok(self)
    }

    /// The schema with the game's messages declared.
    pub fn with_messages(mut self, messages: MessageKinds) -> Result<Schema, SchemaError> {
        for list in [&messages.to_room, &messages.to_player] {
            if list.len() > MAX_KINDS {
                return Err(SchemaError::Kinds);
            }
            for (i, kind) in list.iter().enumerate() {
                if list[..i].iter().any(|k| k.name == kind.name) {
                    return Err(SchemaError::DuplicateKind(kind.name.clone()));
                }
                check_record(kind)?;
            }
        }
        self.messages = messages;
        Ok(self)
    }

    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// The schema's name in joins: 16 hex digits of the 64-bit FNV-1a hash of its JSON text
    /// as this crate writes it. A client that holds a schema (from an earlier join, or built
    /// in) names it in its hello, and joins into rooms of that schema then carry only the
    /// hash. A client never needs to compute it: it may echo what a join reply said.
    pub fn hash(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The fields of the game's input, in the order its slots travel.
    pub fn input(&self) -> &[Field] {
        &self.input
    }

    pub fn messages(&self) -> &MessageKinds {
        &self.messages
    }

    pub fn kind(&self, index: u16) -> Option<&Kind> {
        self.kinds.get(index as usize)
    }

    /// The index of the kind named `name`.
    pub fn kind_index(&self, name: &str) -> Option<u16> {
        self.kinds
            .iter()
            .position(|k| k.name == name)
            .map(|i| i as u16)
    }

    /// Slots of every entity in a snapshot: the most any kind needs.
    pub fn stride(&self) -> usize {
        self.layout.iter().map(|l| l.slots).max().unwrap_or(0)
    }

    pub(crate) fn layout(&self, kind: u16) -> &KindLayout {
        &self.layout[kind as usize]
    }

    /// Bits of a kind index on the wire.
    pub(crate) fn kind_bits(&self) -> u32 {
        bits_for(self.kinds.len() as u64)
    }

    /// Where `self` (what a client was built for) and `other` (what a room declares) first
    /// differ, as `kind.field: what`, or None when they are the same.
    pub fn first_difference(&self, other: &Schema) -> Option<String> {
        kinds_difference("", &self.kinds, &other.kinds)
            .or_else(|| fields_difference("input", &self.input, &other.input))
            .or_else(|| {
                kinds_difference(
                    "message to the room ",
                    &self.messages.to_room,
                    &other.messages.to_room,
                )
            })
            .or_else(|| {
                kinds_difference(
                    "message to a player ",
                    &self.messages.to_player,
                    &other.messages.to_player,
                )
            })
    }
}

fn kinds_difference(what: &str, mine: &[Kind], theirs: &[Kind]) -> Option<String> {
    for (i, m) in mine.iter().enumerate() {
        let Some(t) = theirs.get(i) else {
            return Some(format!("{what}{}: the room has no such kind", m.name));
        };
        if m.name != t.name {
            return Some(format!(
                "{what}kind {i}: {:?} here, {:?} in the room",
                m.name, t.name
            ));
        }
        if let Some(d) = fields_difference(&format!("{what}{}", m.name), &m.fields, &t.fields) {
            return Some(d);
        }
    }
    theirs
        .get(mine.len())
        .map(|k| format!("{what}{}: a kind this client does not know", k.name))
}

fn fields_difference(owner: &str, mine: &[Field], theirs: &[Field]) -> Option<String> {
    for (j, f) in mine.iter().enumerate() {
        match theirs.get(j) {
            None => return Some(format!("{owner}.{}: the room has no such field", f.name)),
            Some(g) if g != f => {
                return Some(format!(
                    "{owner}.{}: declared differently in the room ({g:?})",
                    f.name
                ));
            }
            Some(_) => {}
        }
    }
    theirs
        .get(mine.len())
        .map(|g| format!("{owner}.{}: a field this client does not know", g.name))
}

/// Checks an input or a message: fields like a kind's, none predicted.
fn check_record(kind: &Kind) -> Result<(), SchemaError> {
    if let Some(f) = kind.fields.iter().find(|f| f.predict != Predict::Hold) {
        return Err(SchemaError::Field {
            kind: kind.name.clone(),
            field: f.name.clone(),
            why: "an input's or a message's fields are not predicted",
        });
    }
    kind.check().map(|_| ())
}

impl Kind {
    fn check(&self) -> Result<KindLayout, SchemaError> {
        let bad = |field: &Field, why| SchemaError::Field {
            kind: self.name.clone(),
            field: field.name.clone(),
            why,
        };
        if self.fields.len() > MAX_FIELDS {
            return Err(SchemaError::Field {
                kind: self.name.clone(),
                field: String::new(),
                why: "too many fields",
            });
        }
        let mut offsets = Vec::with_capacity(self.fields.len());
        let mut slots = 0;
        for (i, f) in self.fields.iter().enumerate() {
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(bad(f, "declared twice"));
            }
            if !(1..=4).contains(&f.dims) {
                return Err(bad(f, "dims must be 1 to 4"));
            }
            match &f.ty {
                FieldType::Fixed { step, min_q, count } => {
                    if step.num == 0 || step.den == 0 || *count == 0 {
                        return Err(bad(f, "a fixed-point field needs a step and a range"));
                    }
                    if step.num > MAX_STEP_TERM || step.den > MAX_STEP_TERM {
                        return Err(bad(f, "a fixed-point step's terms must be at most 2^20"));
                    }
                    if min_q.unsigned_abs() > MAX_FIXED_MIN {
                        return Err(bad(f, "a fixed-point field's range starts too far out"));
                    }
                }
                FieldType::Int { min, max } => {
                    if max
                        .checked_sub(*min)
                        .is_none_or(|d| !(0..=u32::MAX as i64).contains(&d))
                    {
                        return Err(bad(f, "an int field's range must fit 32 bits"));
                    }
                }
                FieldType::Angle { bits } => {
                    if !(1..=24).contains(bits) {
                        return Err(bad(f, "an angle takes 1 to 24 bits"));
                    }
                }
                FieldType::Enum { variants } => {
                    if variants.is_empty() {
                        return Err(bad(f, "an enum needs a variant"));
                    }
                }
                FieldType::Bool | FieldType::Entity => {}
            }
            let source = |v: u16| -> Result<&Field, SchemaError> {
                let s = self
                    .fields
                    .get(v as usize)
                    .ok_or_else(|| bad(f, "predicted from a field that does not exist"))?;
                if s.predict != Predict::Hold {
                    return Err(bad(f, "predicted from a field that is itself predicted"));
                }
                Ok(s)
            };
            match f.predict {
                Predict::Hold => {}
                Predict::Integrate(v) => {
                    let v = source(v)?;
                    let (FieldType::Fixed { .. }, FieldType::Fixed { .. }) = (&f.ty, &v.ty) else {
                        return Err(bad(f, "integrates only a fixed-point velocity"));
                    };
                    if v.dims != f.dims {
                        return Err(bad(f, "integrates a velocity of other dims"));
                    }
                }
                Predict::Heading(v) => {
                    let v = source(v)?;
                    if !matches!(f.ty, FieldType::Angle { .. })
                        || f.dims != 1
                        || v.dims != 2
                        || !matches!(v.ty, FieldType::Fixed { .. })
                    {
                        return Err(bad(f, "a heading is an angle along a 2-d velocity"));
                    }
                }
            }
            offsets.push(slots);
            slots += f.dims as usize;
        }
        let plans: Vec<Plan> = self
            .fields
            .iter()
            .map(|f| plan(f, &self.fields, &offsets))
            .collect();
        let predicted = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| **p != Plan::Hold)
            .map(|(f, p)| (offsets[f], *p))
            .collect();
        let held = (0..self.fields.len()).filter(|&i| self.fields[i].predict == Predict::Hold);
        let predicted_fields =
            (0..self.fields.len()).filter(|&i| self.fields[i].predict != Predict::Hold);
        Ok(KindLayout {
            offsets,
            slots,
            order: held.chain(predicted_fields).collect(),
            plans,
            codes: self
                .fields
                .iter()
                .map(|f| crate::code::Code::of(&f.ty))
                .collect(),
            predicted,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The plan of a field already checked by [`Kind::check`].
fn plan(f: &Field, fields: &[Field], offsets: &[usize]) -> Plan {
    let fixed = |v: u16| match fields[v as usize].ty {
        FieldType::Fixed { step, min_q, .. } => (offsets[v as usize], step, -min_q),
        _ => unreachable!("checked: predicted from a fixed-point field"),
    };
    match f.predict {
        Predict::Hold => Plan::Hold,
        Predict::Integrate(v) => {
            let (velocity, vstep, zero) = fixed(v);
            let FieldType::Fixed { step, count, .. } = f.ty else {
                unreachable!("checked: only fixed-point fields integrate")
            };
            // Position quanta per velocity quantum per second.
            let (kn, kd) = (
                vstep.num as i64 * step.den as i64,
                vstep.den as i64 * step.num as i64,
            );
            let g = gcd(kn, kd);
            Plan::Integrate {
                velocity,
                dims: f.dims as usize,
                zero,
                kn: kn / g,
                kd: kd / g,
                max: count - 1,
            }
        }
        Predict::Heading(v) => {
            let (velocity, _, zero) = fixed(v);
            let FieldType::Angle { bits } = f.ty else {
                unreachable!("checked: a heading is an angle")
            };
            Plan::Heading {
                velocity,
                zero,
                steps: 1 << bits,
            }
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Bits that hold every value below `count` (0 when there is only one).
pub(crate) fn bits_for(count: u64) -> u32 {
    if count <= 1 {
        0
    } else {
        64 - (count - 1).leading_zeros()
    }
}

impl FieldType {
    /// A fixed-point type over `[min, max)` in steps of `num/den` (`min` rounded down to a
    /// step).
    pub fn fixed(min: f64, max: f64, num: u32, den: u32) -> FieldType {
        let step = num as f64 / den as f64;
        let min_q = (min / step).floor() as i64;
        let count = ((max / step).ceil() as i64 - min_q).clamp(1, u32::MAX as i64) as u32;
        FieldType::Fixed {
            step: Step { num, den },
            min_q,
            count,
        }
    }

    /// A fixed-point type over the closed range `[min, max]` in steps of `num/den`: for a
    /// value that reaches its bound (a unit vector's component, a step of exactly the most
    /// allowed).
    pub fn fixed_closed(min: f64, max: f64, num: u32, den: u32) -> FieldType {
        let step = num as f64 / den as f64;
        FieldType::fixed(min, max + step, num, den)
    }

    /// Bits of one slot written absolutely.
    pub(crate) fn bits(&self) -> u32 {
        match self {
            FieldType::Fixed { count, .. } => bits_for(*count as u64),
            FieldType::Int { min, max } => bits_for((max - min) as u64 + 1),
            FieldType::Angle { bits } => *bits as u32,
            FieldType::Enum { variants } => bits_for(variants.len() as u64),
            FieldType::Bool => 1,
            FieldType::Entity => 32,
        }
    }

    /// Slots hold `0..=max_slot()`.
    pub fn max_slot(&self) -> u32 {
        match self {
            FieldType::Fixed { count, .. } => count - 1,
            FieldType::Int { min, max } => (max - min) as u32,
            FieldType::Angle { bits } => (1u32 << bits) - 1,
            FieldType::Enum { variants } => variants.len() as u32 - 1,
            FieldType::Bool => 1,
            FieldType::Entity => u32::MAX,
        }
    }

    /// The slot of the value 0 (false, the first variant, no entity), clamped into range.
    pub fn zero_slot(&self) -> u32 {
        match self {
            FieldType::Fixed { min_q, count, .. } => (-min_q).clamp(0, *count as i64 - 1) as u32,
            FieldType::Int { min, max } => (0i64.clamp(*min, *max) - min) as u32,
            _ => 0,
        }
    }

    /// Quantises a real value; NaN becomes the zero slot, anything out of range the nearest end.
    pub fn quantise(&self, v: f32) -> u32 {
        self.quantise_f64(v as f64)
    }

    /// [`FieldType::quantise`] of a double.
    pub fn quantise_f64(&self, v: f64) -> u32 {
        self.try_quantise_f64(v).unwrap_or_else(|_| {
            if v.is_nan() {
                self.zero_slot()
            } else if v > 0.0 {
                self.max_slot()
            } else {
                0
            }
        })
    }

    /// Quantises a real value, refusing NaN and values outside the declared range (for what a
    /// client sends, which is refused rather than clamped).
    pub fn try_quantise(&self, v: f32) -> Result<u32, OutOfRange> {
        self.try_quantise_f64(v as f64)
    }

    /// [`FieldType::try_quantise`] of a double: exact for every whole number a slot holds (an
    /// id past 2^24, say).
    pub fn try_quantise_f64(&self, v: f64) -> Result<u32, OutOfRange> {
        if !v.is_finite() {
            return Err(OutOfRange);
        }
        let q = match self {
            FieldType::Fixed { step, min_q, .. } => {
                round(v * step.den as f64 / step.num as f64) - min_q
            }
            FieldType::Int { min, .. } => round(v) - min,
            FieldType::Angle { bits } => {
                let steps = 1i64 << bits;
                let turns = v.rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU;
                round(turns * steps as f64).rem_euclid(steps)
            }
            FieldType::Enum { .. } | FieldType::Entity => round(v),
            FieldType::Bool => (v != 0.0) as i64,
        };
        if (0..=self.max_slot() as i64).contains(&q) {
            Ok(q as u32)
        } else {
            Err(OutOfRange)
        }
    }

    /// The real value of a slot (angles in [−π, π)).
    pub fn dequantise(&self, q: u32) -> f32 {
        self.dequantise_f64(q) as f32
    }

    /// [`FieldType::dequantise`] as a double (a whole value exactly; an enum's index, an
    /// entity's id, a bool's 0 or 1).
    pub fn dequantise_f64(&self, q: u32) -> f64 {
        match self {
            FieldType::Fixed { step, min_q, .. } => {
                (min_q + q as i64) as f64 * step.num as f64 / step.den as f64
            }
            FieldType::Int { min, .. } => (min + q as i64) as f64,
            FieldType::Angle { bits } => {
                let steps = 1u32 << bits;
                let a = (q % steps) as f64 / steps as f64 * std::f64::consts::TAU;
                if a >= std::f64::consts::PI {
                    a - std::f64::consts::TAU
                } else {
                    a
                }
            }
            _ => q as f64,
        }
    }
}

/// A value outside its declared range, or not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value out of its declared range")]
pub struct OutOfRange;

/// One turn in the units [`heading`] works in.
const TURN: i64 = 1 << 32;
/// `atan(2^-i)` in turns · 2^32, rounded: the CORDIC table of docs/PROTOCOL.md.
const ATAN_TABLE: [i64; 28] = [
    536870912, 316933406, 167458907, 85004756, 42667331, 21354465, 10679838, 5340245, 2670163,
    1335087, 667544, 333772, 166886, 83443, 41722, 20861, 10430, 5215, 2608, 1304, 652, 326, 163,
    81, 41, 20, 10, 5,
];

/// The direction of `(x, y)` in `steps` (a power of two: an angle field's) steps of a turn,
/// computed in integers only (CORDIC), so every implementation gets the same answer. `None` for
/// the zero vector.
pub fn heading(x: i64, y: i64, steps: u32) -> Option<u32> {
    let m = x.unsigned_abs().max(y.unsigned_abs());
    if m == 0 {
        return None;
    }
    let (mut x, mut y, base) = if x < 0 { (-x, -y, TURN / 2) } else { (x, y, 0) };
    // Bring the larger component to [2^28, 2^29): enough precision, and small enough that the
    // CORDIC gain (1.65) keeps every value below 2^31.
    let shift = 28 - (63 - m.leading_zeros() as i32);
    if shift >= 0 {
        x <<= shift;
        y <<= shift;
    } else {
        x >>= -shift;
        y >>= -shift;
    }
    let mut z = 0i64;
    for (i, atan) in ATAN_TABLE.iter().enumerate() {
        let (dx, dy) = (y >> i, x >> i);
        if y > 0 {
            x += dx;
            y -= dy;
            z += atan;
        } else {
            x -= dx;
            y += dy;
            z -= atan;
        }
    }
    let turns = (base + z).rem_euclid(TURN) as u64;
    Some((((turns * steps as u64) + (1 << 31)) >> 32) as u32 & (steps - 1))
}

/// `x` (finite) rounded half away from zero, as `f64::round`, saturating. Without SSE4.1 a
/// float `round` is a library call, and quantising rounds every value a client sends and a
/// server captures; this truncates instead (exact: below 2^52 the fraction `x - trunc(x)` is
/// exact, above it `x` is whole).
fn round(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    t.saturating_add((frac >= 0.5) as i64)
        .saturating_sub((frac <= -0.5) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_f64_round() {
        for x in [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.4999999999999996,
            4503599627370495.5,
            4503599627370497.0,
            1e20,
            -1e20,
            9.3e18,
        ] {
            assert_eq!(round(x), x.round() as i64, "{x}");
        }
    }

    fn field(name: &str, ty: FieldType, dims: u8, predict: Predict) -> Field {
        Field {
            name: name.into(),
            ty,
            dims,
            predict,
        }
    }

    #[test]
    fn fixed_point_quantises_within_its_step_and_refuses_out_of_range() {
        let pos = FieldType::fixed(0.0, 1024.0, 1, 16);
        assert_eq!(pos.bits(), 14);
        let vel = FieldType::fixed(-1024.0, 1024.0, 1, 8);
        assert_eq!((vel.bits(), vel.zero_slot()), (14, 8192));
        for v in [0.0f32, 1.03, 499.97, 1000.0] {
            assert!((pos.dequantise(pos.quantise(v)) - v).abs() <= 0.5 / 16.0);
        }
        for v in [-1000.0f32, -3.3, 0.0, 219.99] {
            assert!((vel.dequantise(vel.quantise(v)) - v).abs() <= 0.5 / 8.0);
        }
        assert_eq!(pos.try_quantise(f32::NAN), Err(OutOfRange));
        assert_eq!(pos.try_quantise(2000.0), Err(OutOfRange));
        assert_eq!(pos.quantise(2000.0), 16383);
        assert_eq!(pos.quantise(f32::NAN), 0);
        let aim = FieldType::Angle { bits: 10 };
        for a in [-3.1f32, -1.0, 0.0, 0.5, 3.1] {
            let back = aim.dequantise(aim.quantise(a));
            let d = (back - a + std::f32::consts::PI).rem_euclid(std::f32::consts::TAU)
                - std::f32::consts::PI;
            assert!(d.abs() <= std::f32::consts::TAU / 1024.0);
        }
        let health = FieldType::Int { min: 0, max: 255 };
        assert_eq!(
            (health.bits(), health.try_quantise(256.0)),
            (8, Err(OutOfRange))
        );
    }

    #[test]
    fn predictions_must_name_a_plain_field_of_the_right_shape() {
        let vel = || field("vel", FieldType::fixed(-8.0, 8.0, 1, 8), 2, Predict::Hold);
        let kind = |fields| Kind {
            name: "k".into(),
            fields,
        };
        let pos = |p| field("pos", FieldType::fixed(0.0, 64.0, 1, 16), 2, p);
        let ok = Schema::new(vec![kind(vec![pos(Predict::Integrate(1)), vel()])]).unwrap();
        assert_eq!(ok.layout(0).order, vec![1, 0]);
        assert_eq!(ok.stride(), 4);
        for bad in [
            vec![pos(Predict::Integrate(5)), vel()],
            vec![pos(Predict::Integrate(0)), vel()],
            vec![pos(Predict::Heading(1)), vel()],
        ] {
            assert!(matches!(
                Schema::new(vec![kind(bad)]),
                Err(SchemaError::Field { .. })
            ));
        }
    }

    #[test]
    fn heading_agrees_with_atan2() {
        let steps = 1024;
        let mut rng = 12345u64;
        for _ in 0..20_000 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            let x = ((rng >> 33) % 20_000) as i64 - 10_000;
            let y = ((rng >> 13) % 20_000) as i64 - 10_000;
            let Some(h) = heading(x, y, steps) else {
                assert_eq!((x, y), (0, 0));
                continue;
            };
            let want = (y as f64).atan2(x as f64).rem_euclid(std::f64::consts::TAU)
                / std::f64::consts::TAU
                * steps as f64;
            let diff = (h as f64 - want).rem_euclid(steps as f64);
            assert!(diff.min(steps as f64 - diff) <= 0.5 + 1e-3, "({x}, {y})");
        }
        assert_eq!(heading(1, 0, steps), Some(0));
        assert_eq!(heading(0, 5, steps), Some(256));
        assert_eq!(heading(-3, 0, steps), Some(512));
        assert_eq!(heading(0, -1, steps), Some(768));
        assert_eq!(heading(0, 0, steps), None);
    }
}
