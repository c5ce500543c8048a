//! The lobby as command-line flags: once connected, carry out the plan (quick-join, create,
//! join, join by code, or list and exit), and say ready when asked to.

use super::cli::Plan;
use bevy::prelude::*;
use tickwire_client_bevy::{CurrentRoom, LobbyRequest, LobbyResponse, NetStatus};
use tickwire_protocol::{Reply, Request, RoomState};

#[derive(Resource)]
pub struct LobbyPlan {
    pub plan: Plan,
    /// Say ready whenever seated in a waiting room.
    pub auto_ready: bool,
    sent: bool,
    ready_asked: bool,
}

impl LobbyPlan {
    pub fn new(plan: Plan, auto_ready: bool) -> LobbyPlan {
        LobbyPlan {
            plan,
            auto_ready,
            sent: false,
            ready_asked: false,
        }
    }
}

pub struct LobbyPlanPlugin;

impl Plugin for LobbyPlanPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, (carry_out, read_replies));
    }
}

fn carry_out(
    status: Res<NetStatus>,
    room: Res<CurrentRoom>,
    mut plan: ResMut<LobbyPlan>,
    mut requests: MessageWriter<LobbyRequest>,
) {
    if status.player().is_none() {
        return;
    }
    if !plan.sent {
        plan.sent = true;
        // A resumed session is already seated.
        if room.joined.is_none() {
            requests.write(match plan.plan.clone() {
                Plan::Quick(mode) => LobbyRequest::QuickJoin { mode },
                Plan::Create(create) => LobbyRequest::Create(create),
                Plan::Join(room) => LobbyRequest::Join(room),
                Plan::Code(code) => LobbyRequest::JoinByCode(code),
                Plan::List => LobbyRequest::List { mode: None },
            });
        }
    }
    if plan.auto_ready
        && !plan.ready_asked
        && !room.ready
        && room.joined.is_some()
        && room.state == Some(RoomState::Waiting)
    {
        plan.ready_asked = true;
        requests.write(LobbyRequest::Ready(true));
    }
}

fn read_replies(
    mut replies: MessageReader<LobbyResponse>,
    mut plan: ResMut<LobbyPlan>,
    mut exit: MessageWriter<AppExit>,
) {
    for reply in replies.read() {
        match (&reply.request, &reply.result) {
            (Request::ListRooms { .. }, Ok(Reply::Rooms(rooms))) => {
                println!(
                    "{:>6}  {:<20} {:<8} {:>7}  state",
                    "id", "name", "mode", "players"
                );
                for r in rooms {
                    println!(
                        "{:>6}  {:<20} {:<8} {:>3}/{:<3}  {:?}",
                        r.id.0, r.name, r.mode, r.players, r.max_players, r.state
                    );
                }
                exit.write(AppExit::Success);
            }
            (_, Ok(Reply::Joined(joined))) => {
                info!(room = joined.room.id.0, name = %joined.room.name, "joined");
                if let Some(code) = &joined.code {
                    println!("private room code: {code}");
                }
            }
            (Request::SetReady { .. }, _) => plan.ready_asked = false,
            (
                Request::QuickJoin { .. }
                | Request::CreateRoom(_)
                | Request::JoinRoom { .. }
                | Request::JoinByCode { .. }
                | Request::ListRooms { .. },
                Err(e),
            ) => {
                error!("{:?} failed: {e}", reply.request);
                eprintln!("cannot get into a room: {e}");
                exit.write(AppExit::error());
            }
            _ => {}
        }
    }
}
