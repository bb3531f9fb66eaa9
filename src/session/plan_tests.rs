//! Unit tests for the `batty work` plan.

use super::*;
use crate::status::AgentStatus;

fn req(n: usize) -> Request {
    Request {
        phase: "v1".into(),
        parallel: n,
        kind: "sh".into(),
        base: "main".into(),
        recreate: false,
        port_base: Some(3100),
    }
}

fn pane(window: &str, index: u32, id: &str, top: u32, dead: bool, name: &str) -> Pane {
    Pane {
        session_id: "$1".into(),
        window_id: window.into(),
        window_index: index,
        pane_id: id.into(),
        pane_index: 0,
        top,
        dead,
        dead_status: dead.then_some(1),
        pid: Some(1),
        current_command: "sh".into(),
        agent: String::new(),
        role: String::new(),
        window_name: name.into(),
    }
}

fn project() -> Project {
    Project::new("/r")
}

#[test]
fn fresh_run_creates_everything() {
    let world = World {
        folders: vec!["old-fox".into()],
        ..Default::default()
    };
    let plan = plan(&project(), &req(2), &world).unwrap();
    assert_eq!(plan.session_id, None);
    assert_eq!(plan.supervisor, SupervisorStep::WithSession);
    assert_eq!(plan.agents.len(), 2);
    // A leftover worktree folder is adopted before new names are made up.
    assert_eq!(plan.agents[0].name, "old-fox");
    assert_eq!(plan.agents[0].window, WindowStep::Create { index: 1 });
    assert_eq!(plan.agents[1].window, WindowStep::Create { index: 2 });
    assert_eq!(plan.state.agents[1].port, Some(3101));
    assert_eq!(
        plan.state.agents[0].worktree,
        Path::new("/r/.batty/worktrees/v1/old-fox")
    );
    assert_eq!(plan.state.agents[0].branch, "batty/v1/old-fox");
    assert!(!plan.is_noop());
}

fn running_world() -> World {
    let first = plan(&project(), &req(2), &World::default()).unwrap();
    let mut state = first.state;
    state.supervisor_pane = Some("%0".into());
    state.agents[0].window_id = Some("@1".into());
    state.agents[0].executor_pane = Some("%1".into());
    state.agents[1].window_id = Some("@2".into());
    state.agents[1].executor_pane = Some("%3".into());
    let (a, b) = (state.agents[0].name.clone(), state.agents[1].name.clone());
    let worktrees = state
        .agents
        .iter()
        .map(|a| WorktreeEntry {
            path: a.worktree.clone(),
            branch: Some(a.branch.clone()),
            prunable: false,
        })
        .collect();
    World {
        state: Some(state),
        session: Some((
            "$1".into(),
            vec![
                pane("@0", 0, "%0", 0, false, "batty"),
                pane("@1", 1, "%1", 0, false, &a),
                pane("@1", 1, "%2", 40, false, &a),
                pane("@2", 2, "%3", 0, false, &b),
                pane("@2", 2, "%4", 40, false, &b),
            ],
        )),
        worktrees,
        ..Default::default()
    }
}

#[test]
fn rerun_on_running_session_is_noop() {
    let world = running_world();
    let plan = plan(&project(), &req(2), &world).unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert_eq!(plan.state.agents, world.state.unwrap().agents);
}

#[test]
fn dead_and_missing_panes_are_repaired() {
    let mut world = running_world();
    let panes = &mut world.session.as_mut().unwrap().1;
    panes[0].dead = true; // supervisor
    panes[1].dead = true; // executor of agent 0
    panes.retain(|p| p.window_id != "@2"); // agent 1's window killed
    let plan = plan(&project(), &req(2), &world).unwrap();
    assert_eq!(
        plan.supervisor,
        SupervisorStep::Respawn {
            pane: "%0".into(),
            index: 0
        }
    );
    assert_eq!(
        plan.agents[0].window,
        WindowStep::Existing {
            window_id: "@1".into(),
            index: 1,
            executor: PaneStep::Respawn("%1".into()),
            log: PaneStep::Keep("%2".into()),
        }
    );
    assert_eq!(plan.agents[1].window, WindowStep::Create { index: 2 });
    let shown = plan.to_string();
    assert!(
        shown.contains("supervisor: restart it in window 0")
            && shown.contains("window 1: restart the agent")
            && shown.contains("create window 2")
            && !shown.contains('@')
            && !shown.contains('%'),
        "the plan names windows by the tab a person presses:\n{shown}"
    );
}

#[test]
fn the_same_world_gives_the_same_names() {
    let a = plan(&project(), &req(3), &World::default()).unwrap();
    let b = plan(&project(), &req(3), &World::default()).unwrap();
    let names = |p: &Plan| p.agents.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&a),
        names(&b),
        "a dry run names the agents the real run makes"
    );
    let other = plan(&Project::new("/elsewhere"), &req(3), &World::default()).unwrap();
    assert_ne!(names(&a), names(&other));
}

#[test]
fn going_down_needs_idle_agents() {
    let mut world = running_world();
    let second = world.state.as_ref().unwrap().agents[1].name.clone();
    let mut status = PhaseStatus::default();
    status.agents.insert(
        second.clone(),
        AgentStatus {
            state: AgentState::Busy,
            task: Some(7),
            question: None,
            since: 0,
        },
    );
    world.status = Some(status);
    let err = plan(&project(), &req(1), &world).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("cannot go down to 1 agent(s): `{second}` (task 7) still working")
    );
    world.status = None;
    let plan = plan(&project(), &req(1), &world).unwrap();
    assert_eq!(plan.agents.len(), 1);
    assert_eq!(plan.removals[0].window_id.as_deref(), Some("@2"));
    // Parked agents keep their record for the next time the phase grows.
    assert_eq!(plan.state.agents.len(), 2);
    assert_eq!(plan.state.active().len(), 1);
}

#[test]
fn new_recreates_known_worktrees() {
    let world = running_world();
    let mut r = req(2);
    r.recreate = true;
    let plan = plan(&project(), &r, &world).unwrap();
    assert_eq!(plan.agents[0].worktree, WorktreeStep::Recreate);
    assert!(matches!(plan.agents[0].window, WindowStep::Recreate { .. }));
}
