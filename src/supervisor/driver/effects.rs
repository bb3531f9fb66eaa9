//! Carrying out the core's effects: tmux calls, board writes (each conditional, as the write
//! says), git on the agents' branches, the merge queue, the record. An effect that answers
//! puts its event on the driver's queue; nothing here decides anything the core should.

use std::io::Write as _;
use std::process::Stdio;

use crate::agent::Reply;
use crate::board::{self, BoardError, Task};
use crate::git::Git;
use crate::session::launch::Launch;

use super::super::event::{BoardWrite, Effect, Event, PaneSeen, QueuedWork, Record};
use super::prepare::prepare;
use super::record::Facts;
use super::{Driver, Wake};

pub fn run(d: &mut Driver<'_>, effect: Effect) {
    // An agent's head read for the attempt record serves the merge queue's effect that
    // follows it (the core sends them together, a log line between), and nothing later.
    let head_read = match effect {
        Effect::Log { .. } => d.head_read.clone(),
        _ => d.head_read.take(),
    };
    match effect {
        Effect::Capture { agent, pane, seq } => capture(d, agent, &pane, seq),
        Effect::Claim { agent, task } => claim(d, agent, task),
        Effect::Prepare {
            agent,
            task,
            park_ref,
            resume_from,
        } => {
            let result = prepare(d, &agent, task, park_ref, resume_from);
            d.queue.push_back(Event::Prepared {
                agent,
                task,
                result,
            });
        }
        Effect::Deliver {
            agent,
            pane,
            task,
            text,
        } => {
            let result = d
                .tmux
                .paste_line_if_alive(&pane, &text)
                .map_err(|e| e.to_string());
            d.queue.push_back(Event::Delivered {
                agent,
                task,
                result,
            });
        }
        Effect::Keys { agent, pane, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            if let Err(err) = d.tmux.send_keys_if_alive(&pane, &keys) {
                let text = format!("keys not sent: {err}");
                d.log(Some(&agent), &text, false);
            }
        }
        Effect::Answer { agent, pane, reply } => {
            let sent = match &reply {
                Reply::Text(text) => d.tmux.paste_line_if_alive(&pane, text),
                Reply::Keys(keys) => {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    d.tmux.send_keys_if_alive(&pane, &keys)
                }
            };
            if let Err(err) = sent {
                let text = format!("answer not sent: {err}");
                d.log(Some(&agent), &text, false);
            }
        }
        Effect::Write(write) => board_write(d, write),
        Effect::QueueMerge {
            agent,
            task,
            attempt: _,
            base,
            head,
        } => {
            let head = head.or_else(|| head_read.filter(|(a, _)| *a == agent).map(|(_, h)| h));
            let result = queue_merge(d, &agent, task, base, head);
            d.queue.push_back(Event::Queued { task, result });
        }
        Effect::KeepRef { agent, name } => keep_ref(d, &agent, &name),
        Effect::Respawn { agent } => {
            let result = respawn(d, &agent);
            if let Ok(p) = &result
                && let Some(pid) = p.pid
            {
                d.pids.watch(&agent, pid);
            }
            d.queue.push_back(Event::Respawned { agent, result });
        }
        Effect::Escalate { agent, question } => escalate(d, &agent, question),
        Effect::Flag { agent } => rename(d, &agent, true),
        Effect::Unflag { agent } => rename(d, &agent, false),
        Effect::ListPanes => {
            let panes = d.agents.list_panes(&d.tmux, d.session.as_deref());
            for p in &panes {
                if let (false, Some(pid)) = (p.dead, p.pid) {
                    d.pids.watch(&p.agent, pid);
                }
            }
            d.queue.push_back(Event::Panes(panes));
        }
        Effect::Record(line) => {
            let facts = facts(d, &line);
            if let (Record::Ended { agent, .. }, Some(head)) = (&line, &facts.head) {
                d.head_read = Some((agent.clone(), head.clone()));
            }
            d.record.write(&line, facts);
        }
        Effect::Log { agent, text, bell } => d.log(agent.as_deref(), &text, bell),
        Effect::ReadBoard => {
            let mut board = d.core.board().clone();
            match board.rescan() {
                Ok(_) => d.queue.push_back(Event::Board(board)),
                Err(err) => {
                    // Not finished on a board that cannot be read; the core asks again.
                    let text = format!("board not readable: {err}");
                    d.log(None, &text, false);
                }
            }
        }
        Effect::Finish => finish(d),
    }
}

fn capture(d: &mut Driver<'_>, agent: String, pane: &str, seq: u64) {
    let Some(adapter) = d.core.adapter_of(&agent) else {
        return;
    };
    let screen = match d.tmux.capture_pane_styled_at(pane) {
        Ok((text, cursor_row)) => adapter.classify_at(&text, cursor_row),
        Err(err) => {
            // The pane may be gone: a listing tells the core.
            tracing::debug!(agent, %err, "capture failed");
            d.queue.push_back(Event::Panes(
                d.agents.list_panes(&d.tmux, d.session.as_deref()),
            ));
            crate::agent::Screen::Unknown
        }
    };
    d.queue.push_back(Event::Screen { agent, seq, screen });
}

fn claim(d: &mut Driver<'_>, agent: String, task: u64) {
    let dir = d.core.board().dir().to_owned();
    let statuses = d.core.settings().dispatch_statuses.clone();
    let result = board::claim(&dir, task, &agent, &statuses, board::now());
    if let Ok(t) = &result {
        d.queue.push_back(as_written(t.clone()));
    }
    d.queue.push_back(Event::Claimed {
        agent,
        task,
        result: result.map_err(|e| e.to_string()),
    });
}

fn queue_merge(
    d: &mut Driver<'_>,
    agent: &str,
    task: u64,
    base: String,
    head: Option<String>,
) -> Result<QueuedWork, String> {
    let io = d.agents.get(agent);
    let branch = io.map(|io| io.record.branch.clone()).unwrap_or_default();
    let worktree = io.map(|io| io.record.worktree.clone());
    let Some(m) = &d.merge else {
        return Ok(QueuedWork {
            head: head.unwrap_or_default(),
            unlanded: false,
        });
    };
    let repo = m.repo().to_owned();
    let target = m.target().to_owned();
    let (base, head) = match head {
        Some(h) if !base.is_empty() => (base, h),
        known => {
            let now = match known {
                Some(h) => h,
                None => {
                    let wt = worktree.ok_or("the agent left the run state")?;
                    Git::new(&wt).head().map_err(|e| e.to_string())?
                }
            };
            unwatched_range(
                d.core.board(),
                &repo,
                &target,
                &branch,
                agent,
                task,
                &base,
                &now,
            )?
        }
    };
    // No commits in the range: nothing to ask git.
    let unlanded = if base == head {
        Vec::new()
    } else {
        crate::merge::unlanded(&repo, &target, &base, &head).map_err(|e| e.to_string())?
    };
    if unlanded.is_empty() {
        return Ok(QueuedWork {
            head,
            unlanded: false,
        });
    }
    if let Some(m) = &mut d.merge {
        m.push(task, agent, &branch, &base, &head)
            .map_err(|e| e.to_string())?;
    }
    Ok(QueuedWork {
        head,
        unlanded: true,
    })
}

/// The range of an attempt no supervisor saw start or end (finished while none ran, or from
/// before batty kept a base): the board's claims and the branch's reflog say where its work
/// begins and ends, so the agent's next task's commits never ride along with it.
#[allow(clippy::too_many_arguments)]
fn unwatched_range(
    board: &crate::board::Board,
    repo: &std::path::Path,
    target: &str,
    branch: &str,
    agent: &str,
    task: u64,
    base: &str,
    head: &str,
) -> Result<(String, String), String> {
    let (began, next) = crate::merge::claim_bounds(board.tasks(), task, agent);
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    crate::merge::unwatched_range(repo, branch, target, base, head, began, next)
        .map_err(|e| e.to_string())
}

fn keep_ref(d: &mut Driver<'_>, agent: &str, name: &str) {
    let (Some(io), Some(m)) = (d.agents.get(agent), &d.merge) else {
        return;
    };
    let wt = Git::new(&io.record.worktree);
    let kept = (|| -> Result<bool, crate::git::GitError> {
        let head = wt.head()?;
        let target = format!("refs/heads/{}", m.target());
        if wt.unlanded(&target, &target, &head)?.is_empty() {
            return Ok(false);
        }
        wt.create_ref(
            name,
            &head,
            "batty: a task given to a person keeps its work",
        )
    })();
    if let Err(err) = kept {
        let text = format!("keeping its work at {name}: {err}");
        d.log(Some(agent), &text, false);
    }
}

/// The agent's process again in its window (a new window when the pane is gone).
fn respawn(d: &mut Driver<'_>, agent: &str) -> Result<PaneSeen, String> {
    let session = d
        .session
        .clone()
        .ok_or("the phase's tmux session is gone; run `batty work` again")?;
    let record = d
        .agents
        .get(agent)
        .map(|io| io.record.clone())
        .ok_or("the agent left the run state")?;
    let adapter = d
        .core
        .adapter_of(agent)
        .ok_or("the agent's adapter is unknown")?;
    let launch = Launch {
        project: &d.project,
        phase: &d.phase,
        exe: &d.exe,
        max_log_bytes: d.config.logs.max_bytes,
    };
    let seen = d
        .agents
        .list_panes(&d.tmux, Some(&session))
        .into_iter()
        .find(|p| p.agent == agent);
    match seen {
        Some(p) => launch
            .respawn(&d.tmux, &p.pane, &record, &adapter.command)
            .map_err(|e| e.to_string())?,
        None => {
            // Pane (or window) killed: the window comes back, in its place when free.
            if let Some(window) = d.agents.get(agent).and_then(|io| io.window.clone()) {
                let _ = d.tmux.kill_window(&window);
            }
            let used: Vec<u32> = d
                .tmux
                .list_panes_session(&session)
                .map(|ps| ps.iter().map(|p| p.window_index).collect())
                .unwrap_or_default();
            let want = record.index as u32 + 1;
            let index = (want..).find(|i| !used.contains(i)).unwrap_or(want);
            launch
                .window(&d.tmux, &session, index, &record, &adapter.command)
                .map_err(|e| e.to_string())?;
        }
    }
    d.agents
        .list_panes(&d.tmux, Some(&session))
        .into_iter()
        .find(|p| p.agent == agent)
        .ok_or_else(|| "the restarted pane is not found".to_owned())
}

fn rename(d: &mut Driver<'_>, agent: &str, flagged: bool) {
    let Some(window) = d.agents.get(agent).and_then(|io| io.window.clone()) else {
        return;
    };
    let name = if flagged {
        format!("{agent}!")
    } else {
        agent.to_owned()
    };
    let _ = d.tmux.rename_window(&window, &name);
}

/// A question no rule answers: flag the window, ring the bell, and run
/// `supervisor.escalate_command` if there is one.
fn escalate(d: &mut Driver<'_>, agent: &str, question: String) {
    rename(d, agent, true);
    let Some(cmd) = d.config.supervisor.escalate_command.clone() else {
        return;
    };
    let tx = d.wake_tx.clone();
    let cwd = d.project.root().to_owned();
    let env = [
        ("BATTY_PHASE", d.phase.clone()),
        ("BATTY_AGENT", agent.to_owned()),
    ];
    let agent = agent.to_owned();
    std::thread::spawn(move || {
        let reply = run_escalation(&cmd, &cwd, &env, &question);
        let _ = tx.send(Wake::Reply(Box::new(Event::EscalationReply {
            agent,
            question,
            reply,
        })));
    });
}

/// Runs the escalation command with the question on stdin; its stdout is the answer.
fn run_escalation(
    cmd: &str,
    cwd: &std::path::Path,
    env: &[(&str, String)],
    question: &str,
) -> Result<String, String> {
    let mut command = crate::proc::Cmd::new("sh")
        .args(["-c", cmd])
        .current_dir(cwd)
        .to_command();
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(question.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`{cmd}` {}: {}", out.status, err.trim()));
    }
    let answer = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    if answer.is_empty() {
        return Err(format!("`{cmd}` printed no answer"));
    }
    Ok(answer)
}

/// Git's word on an ended attempt (its head and files) and the merge's gate.
fn facts(d: &Driver<'_>, line: &Record) -> Facts {
    match line {
        Record::Ended {
            agent,
            task,
            base,
            outcome,
            ..
        } => {
            let Some(io) = d.agents.get(agent) else {
                return Facts::default();
            };
            let wt = Git::new(&io.record.worktree);
            let mut head = wt.head().ok();
            // Done while no supervisor ran: the attempt ends where its merge range does.
            if let (Some(m), Some(h), super::super::event::Outcome::Done) =
                (&d.merge, &head, outcome)
                && !base.is_empty()
                && let Ok((_, end)) = unwatched_range(
                    d.core.board(),
                    m.repo(),
                    m.target(),
                    &io.record.branch,
                    agent,
                    *task,
                    base,
                    h,
                )
            {
                head = Some(end);
            }
            let files = match (&head, base.is_empty(), outcome) {
                (Some(h), false, super::super::event::Outcome::Done) if h != base => match &d.merge
                {
                    Some(m) => crate::merge::task_diffstat(m.repo(), m.target(), base, h),
                    None => crate::merge::diffstat(&io.record.worktree, base, h),
                }
                .map(|s| {
                    s.files
                        .into_iter()
                        .map(|f| crate::record::FileChange {
                            path: f.path,
                            binary: f.insertions.is_none(),
                            insertions: f.insertions.unwrap_or(0),
                            deletions: f.deletions.unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
                _ => Vec::new(),
            };
            Facts {
                head,
                files,
                ..Facts::default()
            }
        }
        Record::Merged { task, .. } => {
            let entry = d.merge.as_ref().and_then(|m| m.entry(*task));
            let gate = d.merge.as_ref().and_then(|m| m.last_gate());
            Facts {
                base: entry.as_ref().map(|e| e.base.clone()),
                head: entry.map(|e| e.tip),
                gate: gate.map(|g| g.command.clone()),
                gate_secs: gate.map(|g| g.took.as_secs_f64()),
                exit_code: gate.and_then(|g| g.exit_code),
                error: d
                    .merge
                    .as_ref()
                    .and_then(|m| m.last_error())
                    .map(str::to_owned),
                ..Facts::default()
            }
        }
        _ => Facts::default(),
    }
}

/// One conditional board write; the task as written goes to the core.
fn board_write(d: &mut Driver<'_>, write: BoardWrite) {
    let dir = d.core.board().dir().to_owned();
    let statuses = d.core.settings().dispatch_statuses.clone();
    let now = board::now();
    let w = write.clone();
    let result = board::update(&dir, write.task(), now, move |t: &mut Task, cfg| {
        let working = board::working_status(cfg, &statuses).to_owned();
        let is_working = t.status == working;
        let back = board::release_status(cfg).to_owned();
        match &w {
            BoardWrite::Release { agent, .. } => {
                if t.claimed_by.as_deref() == Some(agent) || (is_working && t.claimed_by.is_none())
                {
                    t.claimed_by = None;
                    t.claimed_at = None;
                    if !cfg.is_terminal(&t.status) && !back.is_empty() {
                        t.status = back;
                    }
                }
            }
            BoardWrite::Requeue { .. } => {
                if t.status == cfg.done_status() || is_working {
                    t.claimed_by = None;
                    t.claimed_at = None;
                    if !back.is_empty() {
                        t.status = back;
                    }
                }
            }
            BoardWrite::Review { reason, .. } => {
                if is_working || t.status == cfg.done_status() {
                    if cfg.has_status("review") {
                        t.status = "review".to_owned();
                    }
                    t.blocked = true;
                    t.block_reason = Some(reason.clone());
                    t.claimed_by = None;
                    t.claimed_at = None;
                }
            }
            BoardWrite::RestoreClaim { agent, .. } => {
                // Still working, or put back in the queue by a copy older than the claim.
                let queued = statuses.contains(&t.status);
                if (is_working || queued) && t.claimed_by.is_none() {
                    t.claimed_by = Some(agent.clone());
                    t.claimed_at = Some(now);
                    if !working.is_empty() {
                        t.status = working;
                    }
                }
            }
            BoardWrite::Reopen { agent, .. } => {
                let free = t.claimed_by.as_deref().is_none_or(|c| c == agent);
                if (t.status == cfg.done_status() || is_working) && free && !working.is_empty() {
                    t.status = working;
                    t.claimed_by = Some(agent.clone());
                    t.claimed_at = Some(now);
                }
            }
            BoardWrite::Landed { .. } => {
                t.status = cfg.done_status().to_owned();
                t.blocked = false;
                t.block_reason = None;
            }
            BoardWrite::ClearClaim { agent, .. } => {
                if t.claimed_by.as_deref() == Some(agent) {
                    t.claimed_by = None;
                    t.claimed_at = None;
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(task) => d.queue.push_back(as_written(task)),
        // Gone from the board: nothing to write, nothing to retry.
        Err(BoardError::NotFound { .. }) => {}
        Err(err) => d.queue.push_back(Event::WriteFailed {
            write,
            reason: err.to_string(),
        }),
    }
}

/// Everything is finished: the report goes to `summary.txt` and the pane.
fn finish(d: &mut Driver<'_>) {
    let summary = super::publish::summary(d);
    let path = d.project.logs_dir(&d.phase).join("summary.txt");
    let _ = crate::fsutil::write_atomic(&path, summary.text.as_bytes());
    let line = format!(
        "phase {}: {}/{} tasks done, {} merged{}",
        d.phase,
        summary.done,
        summary.total,
        summary.merged,
        if summary.review.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = summary.review.iter().map(|i| format!("#{i}")).collect();
            format!(", in review: {}", ids.join(" "))
        }
    );
    d.log(None, &line, false);
    d.summary = Some(summary);
}

/// A task as batty just wrote it, for the core's board.
fn as_written(task: Task) -> Event {
    let path = task.path().to_owned();
    Event::TaskFiles(vec![(path, board::FileRead::Task(task))])
}
