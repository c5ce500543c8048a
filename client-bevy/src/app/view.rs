//! The window: the arena drawn top-down, a HUD, keyboard and mouse controls, and an optional
//! screenshot. Only this module needs the `render` feature.

use bevy::camera::ScalingMode;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::window::PrimaryWindow;
use std::path::PathBuf;
use std::time::Instant;
use tickwire_arena::movement::{ARENA_SIZE, DRONE_RADIUS, PLAYER_RADIUS, PROJECTILE_RADIUS};
use tickwire_arena::{ArenaNews, EntityKind};
use tickwire_client_bevy::replication::SnapshotBuffer;
use tickwire_client_bevy::{
    CurrentRoom, LobbyRequest, LocalPlayer, NetEntity, NetState, NetStats, NetStatus, PlayerIntent,
    RoomEventMessage,
};
use tickwire_protocol::{Messages, PlayerId, RoomEvent, RoomState};

pub struct ViewPlugin {
    /// Save a screenshot to this file this many seconds after start, then exit.
    pub screenshot: Option<(PathBuf, f64)>,
    /// Keyboard and mouse drive the player (off when a bot does).
    pub keyboard: bool,
}

impl Plugin for ViewPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "tickwire arena".into(),
                resolution: (840, 840).into(),
                ..default()
            }),
            ..default()
        }))
        .insert_resource(ClearColor(Color::srgb(0.05, 0.05, 0.08)))
        .init_resource::<Score>()
        .add_systems(Startup, setup)
        .add_systems(Update, (dress_entities, update_hud, keep_score));
        if self.keyboard {
            app.add_systems(Update, (read_controls, lobby_keys));
        }
        if let Some((path, after)) = &self.screenshot {
            app.insert_resource(ScreenshotPlan {
                path: path.clone(),
                after: *after,
                taken: false,
            })
            .add_systems(Update, take_screenshot);
        }
    }
}

#[derive(Component)]
struct Hud;

#[derive(Component)]
struct Barrel;

/// Kills by this player in the current match, from the arena's kill messages.
#[derive(Resource, Default)]
struct Score(u32);

#[derive(Resource)]
struct ScreenshotPlan {
    path: PathBuf,
    after: f64,
    taken: bool,
}

/// Shapes and colours made once and shared by every entity of a kind.
#[derive(Resource)]
struct Palette {
    player: Handle<Mesh>,
    drone: Handle<Mesh>,
    projectile: Handle<Mesh>,
    barrel: Handle<Mesh>,
    me: Handle<ColorMaterial>,
    others: Handle<ColorMaterial>,
    drones: Handle<ColorMaterial>,
    shots: Handle<ColorMaterial>,
    barrels: Handle<ColorMaterial>,
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<ColorMaterial>>,
) {
    let centre = Vec2::splat(ARENA_SIZE / 2.0);
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scaling_mode: ScalingMode::AutoMin {
                min_width: ARENA_SIZE + 40.0,
                min_height: ARENA_SIZE + 40.0,
            },
            ..OrthographicProjection::default_2d()
        }),
        Transform::from_translation(centre.extend(10.0)),
    ));
    // The arena floor.
    commands.spawn((
        Sprite::from_color(Color::srgb(0.11, 0.12, 0.16), Vec2::splat(ARENA_SIZE)),
        Transform::from_translation(centre.extend(-1.0)),
    ));
    commands.insert_resource(Palette {
        player: meshes.add(Circle::new(PLAYER_RADIUS)),
        drone: meshes.add(RegularPolygon::new(DRONE_RADIUS, 6)),
        projectile: meshes.add(Circle::new(PROJECTILE_RADIUS)),
        barrel: meshes.add(Rectangle::new(PLAYER_RADIUS, 6.0)),
        me: materials.add(Color::srgb(0.30, 0.85, 0.45)),
        others: materials.add(Color::srgb(0.35, 0.55, 0.95)),
        drones: materials.add(Color::srgb(0.75, 0.35, 0.30)),
        shots: materials.add(Color::srgb(1.0, 0.85, 0.30)),
        barrels: materials.add(Color::srgb(0.85, 0.85, 0.85)),
    });
    commands.spawn((
        Hud,
        Text::new("connecting..."),
        TextFont::from_font_size(16.0),
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(8.0),
            left: Val::Px(10.0),
            ..default()
        },
    ));
}

/// Gives each new replicated entity its shape: players are circles with a barrel showing
/// their aim (the local one green), drones red hexagons, projectiles small yellow dots.
fn dress_entities(
    mut commands: Commands,
    palette: Res<Palette>,
    added: Query<(Entity, &NetEntity, Has<LocalPlayer>), Added<NetEntity>>,
) {
    for (entity, net, local) in &added {
        let (mesh, material) = match net.arena_kind() {
            Some(EntityKind::Player) if local => (&palette.player, &palette.me),
            Some(EntityKind::Player) => (&palette.player, &palette.others),
            Some(EntityKind::Drone) | None => (&palette.drone, &palette.drones),
            Some(EntityKind::Projectile) => (&palette.projectile, &palette.shots),
        };
        let mut e = commands.entity(entity);
        e.insert((Mesh2d(mesh.clone()), MeshMaterial2d(material.clone())));
        if net.arena_kind() == Some(EntityKind::Player) {
            e.with_child((
                Barrel,
                Mesh2d(palette.barrel.clone()),
                MeshMaterial2d(palette.barrels.clone()),
                Transform::from_xyz(PLAYER_RADIUS, 0.0, 0.1),
            ));
        }
    }
}

fn keep_score(
    mut events: MessageReader<RoomEventMessage>,
    status: Res<NetStatus>,
    mut score: ResMut<Score>,
) {
    for event in events.read() {
        match &event.0 {
            RoomEvent::Message { kind, slots } => {
                if let Ok(ArenaNews::Kill { killer, .. }) = ArenaNews::from_message(*kind, slots)
                    && status.player() == Some(PlayerId(killer))
                {
                    score.0 += 1;
                }
            }
            RoomEvent::MatchStarted { .. } => score.0 = 0,
            _ => {}
        }
    }
}

fn update_hud(
    status: Res<NetStatus>,
    room: Res<CurrentRoom>,
    stats: Res<NetStats>,
    score: Res<Score>,
    buffer: Res<SnapshotBuffer>,
    me: Query<&NetState, With<LocalPlayer>>,
    mut hud: Query<&mut Text, With<Hud>>,
) {
    let Ok(mut text) = hud.single_mut() else {
        return;
    };
    let line = match &*status {
        NetStatus::Connecting => "connecting...".to_owned(),
        NetStatus::Closed(why) => format!("disconnected: {why}"),
        NetStatus::Connected { .. } => {
            let tick = buffer.newest_tick().map_or(0, |t| t.0);
            let ping = stats
                .last_rtt_ms()
                .map_or("-".to_owned(), |r| format!("{r:.1} ms"));
            let health = me.single().map_or(0.0, |s| s.health);
            let room_line = match (&room.joined, room.state) {
                (Some(j), Some(state)) => {
                    let phase = match state {
                        RoomState::Waiting if room.ready => "waiting, ready".to_owned(),
                        RoomState::Waiting => "waiting - R: ready, Enter: start".to_owned(),
                        RoomState::Countdown => format!("starting in {}", room.seconds),
                        RoomState::Playing => "playing".to_owned(),
                        RoomState::Finished => format!("results, {} s", room.seconds),
                    };
                    format!(
                        "{} ({}/{}) - {phase}",
                        j.room.name, j.room.players, j.room.max_players
                    )
                }
                _ => "joining...".to_owned(),
            };
            format!(
                "score {}   health {health:.0}   ping {ping}   tick {tick}\n{room_line}",
                score.0
            )
        }
    };
    if text.0 != line {
        text.0 = line;
    }
}

/// WASD or arrows move, the mouse aims, the left button fires.
fn read_controls(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Res<ButtonInput<MouseButton>>,
    window: Query<&Window, With<PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform)>,
    me: Query<&NetState, With<LocalPlayer>>,
    mut intent: ResMut<PlayerIntent>,
) {
    let axis = |neg: [KeyCode; 2], pos: [KeyCode; 2]| {
        let n = keys.any_pressed(neg) as i8 as f32;
        let p = keys.any_pressed(pos) as i8 as f32;
        p - n
    };
    intent.move_dir = Vec2::new(
        axis(
            [KeyCode::KeyA, KeyCode::ArrowLeft],
            [KeyCode::KeyD, KeyCode::ArrowRight],
        ),
        axis(
            [KeyCode::KeyS, KeyCode::ArrowDown],
            [KeyCode::KeyW, KeyCode::ArrowUp],
        ),
    )
    .normalize_or_zero();
    intent.fire = buttons.pressed(MouseButton::Left);
    let cursor = window
        .single()
        .ok()
        .and_then(|w| w.cursor_position())
        .zip(camera.single().ok())
        .and_then(|(cursor, (camera, at))| camera.viewport_to_world_2d(at, cursor).ok());
    if let (Some(target), Ok(me)) = (cursor, me.single()) {
        let to = target - me.pos;
        if to.length_squared() > 1.0 {
            intent.aim = to.y.atan2(to.x);
        }
    }
}

/// R toggles ready, Enter asks to start now (the room's owner only), L leaves the room,
/// Q joins a room again after leaving.
fn lobby_keys(
    keys: Res<ButtonInput<KeyCode>>,
    room: Res<CurrentRoom>,
    mut requests: MessageWriter<LobbyRequest>,
) {
    if keys.just_pressed(KeyCode::KeyR) && room.joined.is_some() {
        requests.write(LobbyRequest::Ready(!room.ready));
    }
    if keys.just_pressed(KeyCode::Enter) && room.joined.is_some() {
        requests.write(LobbyRequest::Start);
    }
    if keys.just_pressed(KeyCode::KeyL) && room.joined.is_some() {
        requests.write(LobbyRequest::Leave);
    }
    if keys.just_pressed(KeyCode::KeyQ) && room.joined.is_none() {
        requests.write(LobbyRequest::QuickJoin {
            mode: "arena".into(),
        });
    }
}

/// When the time comes, captures the window to the file and exits once it is saved.
fn take_screenshot(
    mut commands: Commands,
    mut plan: ResMut<ScreenshotPlan>,
    mut started: Local<Option<Instant>>,
) {
    let started = *started.get_or_insert_with(Instant::now);
    if plan.taken || started.elapsed().as_secs_f64() < plan.after {
        return;
    }
    plan.taken = true;
    let mut save = save_to_disk(plan.path.clone());
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
            save(captured);
            exit.write(AppExit::Success);
        },
    );
}
