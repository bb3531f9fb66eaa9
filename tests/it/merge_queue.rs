//! The merge queue library on real git repos: attempts, conflicts, gates, the user's checkout,
//! compare-and-swap races, crash recovery and agent worktree sync.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Sandbox, wait_until};
use batty::config::MergeConfig;
use batty::merge::{
    self, EntryState, MergeCtx, MergeEntry, MergeError, MergeOutcome, MergeQueue, NextStep,
    SyncOutcome,
};
use batty::paths::Project;

struct Fixture {
    sb: Sandbox,
    ctx: MergeCtx,
    queue: MergeQueue,
}

impl Fixture {
    /// A repo on `main` with `.batty/` ignored, merging into `target` behind `gate`.
    fn new(target: &str, gate: Option<&str>) -> Fixture {
        let sb = Sandbox::new();
        // The library's git calls run with this process's environment, so the identity the
        // sandbox gives through env vars is also set in the repo.
        for (k, v) in [
            ("user.name", "Batty Test"),
            ("user.email", "test@batty.invalid"),
            ("commit.gpgsign", "false"),
        ] {
            sb.git(["config", k, v]);
        }
        sb.write(".gitignore", ".batty/\n");
        sb.git(["add", ".gitignore"]);
        sb.git(["commit", "-qm", "ignore batty"]);
        std::fs::create_dir_all(sb.path(".batty")).unwrap();
        if target != "main" {
            sb.git(["branch", target, "main"]);
        }
        let config = MergeConfig {
            gate: gate.map(str::to_owned),
            gate_timeout: Duration::from_secs(20),
            ..MergeConfig::default()
        };
        let ctx = MergeCtx::new(&Project::new(&sb.repo), "v1", target, &config);
        Fixture {
            sb,
            ctx,
            queue: MergeQueue::default(),
        }
    }

    /// An agent worktree on `batty/v1/<name>` from the target.
    fn agent(&self, name: &str) -> PathBuf {
        let wt = self.sb.path(format!(".batty/worktrees/v1/{name}"));
        let branch = format!("batty/v1/{name}");
        self.sb.git([
            "worktree",
            "add",
            "-q",
            "-b",
            &branch,
            wt.to_str().unwrap(),
            &self.ctx.target,
        ]);
        wt
    }

    fn commit(&self, wt: &Path, file: &str, text: &str, msg: &str) -> String {
        let p = wt.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self.sb.git_in(wt, ["add", file]);
        self.sb.git_in(wt, ["commit", "-qm", msg]);
        self.head(wt)
    }

    fn head(&self, wt: &Path) -> String {
        self.sb.git_in(wt, ["rev-parse", "HEAD"])
    }

    fn target_tip(&self) -> String {
        self.sb
            .git(["rev-parse", &format!("refs/heads/{}", self.ctx.target)])
    }

    /// Queues task `id` as the agent's commits `base..HEAD`.
    fn push(&mut self, id: u64, agent: &str, base: &str) {
        let wt = self.sb.path(format!(".batty/worktrees/v1/{agent}"));
        let tip = self.head(&wt);
        self.queue
            .push(id, agent, &format!("batty/v1/{agent}"), base, &tip);
    }

    /// Takes task `id` and runs one attempt, as the supervisor's worker does.
    fn attempt(&mut self, id: u64) -> Result<MergeOutcome, MergeError> {
        let entry: MergeEntry = self.queue.mark_merging(id).unwrap();
        let ctx = self.ctx.clone();
        // On a thread of its own, as in the supervisor: owned inputs, a plain value back.
        std::thread::spawn(move || merge::attempt(&ctx, &entry))
            .join()
            .unwrap()
    }

    fn record(&mut self, id: u64, outcome: &Result<MergeOutcome, MergeError>) -> NextStep {
        let target = self.ctx.target.clone();
        self.queue.record(id, outcome, &target, 3).unwrap()
    }

    /// The merge worktree holds nothing: no operation in progress, no changed files.
    fn assert_merge_worktree_clean(&self) {
        let wt = &self.ctx.merge_worktree;
        let status = self
            .sb
            .git_in(wt, ["status", "--porcelain", "--untracked-files=all"]);
        assert_eq!(status, "", "merge worktree left dirty");
        let git_dir = PathBuf::from(self.sb.git_in(wt, ["rev-parse", "--absolute-git-dir"]));
        for marker in [
            "CHERRY_PICK_HEAD",
            "sequencer",
            "rebase-merge",
            "MERGE_HEAD",
        ] {
            assert!(!git_dir.join(marker).exists(), "{marker} left behind");
        }
        let detached = self.sb.git_in(wt, ["rev-parse", "--abbrev-ref", "HEAD"]);
        assert_eq!(detached, "HEAD", "merge worktree is not detached");
    }

    fn has_ref(&self, name: &str) -> bool {
        !self
            .sb
            .git(["for-each-ref", "--format=%(refname)", name])
            .is_empty()
    }

    fn subjects(&self, rev: &str) -> Vec<String> {
        self.sb
            .git(["log", "--format=%s", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn merged_tip(outcome: &Result<MergeOutcome, MergeError>) -> String {
    match outcome {
        Ok(MergeOutcome::Merged { new_tip, .. }) => new_tip.clone(),
        other => panic!("wanted Merged, got {other:?}"),
    }
}

#[test]
fn three_agents_land_linearly_with_one_gate_run_each() {
    let gate_runs = tempfile::NamedTempFile::new().unwrap();
    let gate = format!(
        "echo \"$BATTY_MERGE_TASK\" >> {}; test -f README.md",
        gate_runs.path().display()
    );
    let mut f = Fixture::new("main", Some(&gate));
    let start = f.target_tip();
    for (i, name) in ["ann", "bob", "cy"].into_iter().enumerate() {
        let wt = f.agent(name);
        let base = f.head(&wt);
        f.commit(
            &wt,
            &format!("src/{name}.txt"),
            name,
            &format!("task {} by {name}", i + 1),
        );
        f.commit(
            &wt,
            &format!("docs/{name}.md"),
            name,
            &format!("docs for {name}"),
        );
        f.push(i as u64 + 1, name, &base);
    }
    while let Some(id) = f.queue.next_waiting().map(|e| e.task) {
        let outcome = f.attempt(id);
        let tip = merged_tip(&outcome);
        assert_eq!(f.record(id, &outcome), NextStep::Landed);
        assert_eq!(f.target_tip(), tip);
        f.assert_merge_worktree_clean();
    }
    assert!(f.queue.list().iter().all(|e| e.state == EntryState::Merged));
    assert_eq!(
        std::fs::read_to_string(gate_runs.path()).unwrap(),
        "1\n2\n3\n",
        "gate runs once per merge, in queue order"
    );
    // Linear: no merge commits, every new commit on the first-parent line.
    assert_eq!(
        f.sb.git(["rev-list", "--merges", &format!("{start}..main")]),
        ""
    );
    assert_eq!(
        f.sb.git(["rev-list", "--count", &format!("{start}..main")]),
        "6"
    );
    // The main checkout was fast-forwarded with its files and index consistent.
    assert_eq!(f.sb.git(["status", "--porcelain"]), "");
    for name in ["ann", "bob", "cy"] {
        assert_eq!(f.sb.read(format!("src/{name}.txt")), name);
    }
}

#[test]
fn same_line_edits_give_one_merge_and_one_conflict_that_is_redone() {
    let mut f = Fixture::new("main", None);
    let a = f.agent("ann");
    let b = f.agent("bob");
    let base_a = f.head(&a);
    let base_b = f.head(&b);
    f.commit(&a, "README.md", "ann's line\n", "ann edits readme");
    f.commit(&b, "README.md", "bob's line\n", "bob edits readme");
    f.push(1, "ann", &base_a);
    f.push(2, "bob", &base_b);

    let first = f.attempt(1);
    merged_tip(&first);
    f.record(1, &first);
    let after_first = f.target_tip();

    let second = f.attempt(2);
    assert_eq!(
        second.as_ref().unwrap(),
        &MergeOutcome::Conflict {
            files: vec!["README.md".into()],
            kept: Some("refs/batty/v1/rejected/2-1".into()),
        }
    );
    // The rejected work has a ref of its own; the queue no longer holds it.
    assert_eq!(
        f.subjects("refs/batty/v1/rejected/2-1")[0],
        "bob edits readme"
    );
    assert!(!f.has_ref("refs/batty/v1/queue/2"));
    assert_eq!(f.target_tip(), after_first, "a conflict moves nothing");
    f.assert_merge_worktree_clean();
    let NextStep::SendBack { message } = f.record(2, &second) else {
        panic!("conflict should go back to the agent")
    };
    assert!(message.contains("`README.md`"), "{message}");
    assert_eq!(f.queue.get(2).unwrap().attempts, 1);
    // The agent's commit is still on its branch: nothing dropped.
    assert_eq!(f.subjects("batty/v1/bob")[0], "bob edits readme");

    // The agent redoes the task on the new target and reports done again.
    f.sb.git_in(&b, ["reset", "-q", "--hard", "main"]);
    let redo_base = f.head(&b);
    f.commit(
        &b,
        "README.md",
        "ann's line\nbob's line\n",
        "bob edits readme again",
    );
    f.push(2, "bob", &redo_base);
    let redo = f.attempt(2);
    merged_tip(&redo);
    assert_eq!(f.sb.read("README.md"), "ann's line\nbob's line\n");
    assert_eq!(
        f.queue.get(2).unwrap().attempts,
        1,
        "attempts survive a re-push"
    );
}

#[test]
fn red_gate_reports_tail_and_gives_up_after_the_limit() {
    let gate = "for i in $(seq 1 40); do echo \"compiling $i\"; done; \
                echo 'test parser::rejects_tabs ... FAILED' >&2; exit 101";
    let mut f = Fixture::new("main", Some(gate));
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "a.txt", "a", "add a");
    let before = f.target_tip();
    f.push(7, "ann", &base);
    for round in 1..=3 {
        let outcome = f.attempt(7);
        let Ok(MergeOutcome::GateFailed {
            status,
            tail,
            log,
            kept,
            gate: ran,
        }) = &outcome
        else {
            panic!("wanted GateFailed, got {outcome:?}")
        };
        assert_eq!((ran.command.as_str(), ran.exit_code), (gate, Some(101)));
        assert!(ran.took > Duration::ZERO);
        // The same work rejected again is kept at the same ref.
        assert_eq!(kept.as_deref(), Some("refs/batty/v1/rejected/7-1"));
        assert_eq!(status, "exit code 101");
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), merge::TAIL_LINES);
        assert_eq!(lines.last(), Some(&"test parser::rejects_tabs ... FAILED"));
        assert_eq!(log, &f.sb.path(".batty/logs/v1/merge-7.log"));
        assert_eq!(f.target_tip(), before, "a red gate moves nothing");
        f.assert_merge_worktree_clean();
        match f.record(7, &outcome) {
            NextStep::SendBack { message } if round < 3 => {
                assert!(message.contains("rejects_tabs"), "{message}")
            }
            NextStep::GiveUp { block_reason } if round == 3 => {
                assert!(
                    block_reason.contains("gate failed (exit code 101)"),
                    "{block_reason}"
                )
            }
            other => panic!("round {round}: {other:?}"),
        }
        f.push(7, "ann", &base);
    }
    let log = std::fs::read_to_string(f.ctx.log_path(7)).unwrap();
    assert_eq!(
        log.matches("compiling 40").count(),
        3,
        "every attempt is logged"
    );
}

#[test]
fn dirty_main_checkout_is_never_touched() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "notes.txt", "agent notes\n", "add notes");
    f.push(1, "ann", &base);
    let before = f.target_tip();

    // A tracked file edited but not committed.
    f.sb.write("README.md", "user's edit in progress\n");
    let outcome = f.attempt(1);
    assert_eq!(
        outcome.as_ref().unwrap(),
        &MergeOutcome::MainDirty {
            worktree: f.sb.repo.clone(),
            files: vec!["README.md".into()]
        }
    );
    assert_eq!(f.target_tip(), before);
    assert_eq!(f.sb.read("README.md"), "user's edit in progress\n");
    let NextStep::RetryLater { reason } = f.record(1, &outcome) else {
        panic!("a dirty checkout means wait")
    };
    assert!(reason.contains("README.md"), "{reason}");
    assert_eq!(
        f.queue.get(1).unwrap().attempts,
        0,
        "waiting is not failing"
    );

    // An untracked file the merge would overwrite.
    f.sb.git(["checkout", "-q", "README.md"]);
    f.sb.write("notes.txt", "the user's own notes\n");
    let outcome = f.attempt(1);
    assert_eq!(
        outcome.as_ref().unwrap(),
        &MergeOutcome::MainDirty {
            worktree: f.sb.repo.clone(),
            files: vec!["notes.txt".into()]
        }
    );
    assert_eq!(f.target_tip(), before);
    assert_eq!(f.sb.read("notes.txt"), "the user's own notes\n");
    f.record(1, &outcome);

    // Once the user is done, it lands and the checkout follows.
    std::fs::remove_file(f.sb.path("notes.txt")).unwrap();
    f.sb.write("scratch.txt", "untracked and unrelated\n");
    let outcome = f.attempt(1);
    merged_tip(&outcome);
    assert_eq!(f.sb.read("notes.txt"), "agent notes\n");
    assert_eq!(f.sb.read("scratch.txt"), "untracked and unrelated\n");
    assert_eq!(f.sb.git(["status", "--porcelain"]), "?? scratch.txt");
}

#[test]
fn target_not_checked_out_moves_only_the_ref() {
    let mut f = Fixture::new("trunk", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "a.txt", "a", "add a");
    f.push(1, "ann", &base);
    let main_before = f.sb.git(["rev-parse", "main"]);
    let tip = merged_tip(&f.attempt(1));
    assert_eq!(f.target_tip(), tip);
    assert_eq!(f.sb.git(["rev-parse", "main"]), main_before);
    assert_eq!(f.sb.git(["status", "--porcelain"]), "");
    assert_eq!(f.subjects("trunk")[0], "add a");
}

#[test]
fn target_moving_during_the_gate_means_retry_not_overwrite() {
    for target in ["main", "trunk"] {
        // The gate itself moves the target, as a person committing meanwhile would.
        let sneak = if target == "main" {
            "git -C \"$REPO\" commit -q --allow-empty -m sneaky".to_owned()
        } else {
            "git -C \"$REPO\" update-ref refs/heads/trunk \"$(git -C \"$REPO\" commit-tree \
             -p trunk -m sneaky trunk^{tree})\""
                .to_owned()
        };
        let mut f = Fixture::new(target, None);
        f.ctx.gate = Some(format!("REPO={}; {sneak}", f.sb.repo.display()));
        let wt = f.agent("ann");
        let base = f.head(&wt);
        f.commit(&wt, "a.txt", "a", "add a");
        f.push(1, "ann", &base);
        let outcome = f.attempt(1);
        assert_eq!(
            outcome.as_ref().unwrap(),
            &MergeOutcome::TargetMoved,
            "{target}"
        );
        assert_eq!(
            f.subjects(target)[0],
            "sneaky",
            "{target}: the other commit stays"
        );
        assert_eq!(f.record(1, &outcome), NextStep::RetryNow);
        assert_eq!(f.queue.get(1).unwrap().attempts, 0);
        f.ctx.gate = None;
        merged_tip(&f.attempt(1));
        assert_eq!(f.subjects(target)[..2], ["add a", "sneaky"], "{target}");
        assert_eq!(f.sb.git(["status", "--porcelain"]), "", "{target}");
    }
}

#[test]
fn task_without_commits_has_nothing_to_merge() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.push(1, "ann", &base);
    let before = f.target_tip();
    let outcome = f.attempt(1);
    assert_eq!(outcome.as_ref().unwrap(), &MergeOutcome::NothingToMerge);
    assert_eq!(f.record(1, &outcome), NextStep::Landed);
    assert_eq!(f.target_tip(), before);
}

/// Starts a long-running "gate" in the merge worktree in its own process group, as a real one.
fn fake_gate(dir: &Path) -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("300")
        .current_dir(dir)
        .process_group(0)
        .spawn()
        .unwrap()
}

#[test]
fn crash_after_the_ref_moved_recovers_as_merged_exactly_once() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    let commit = f.commit(&wt, "a.txt", "a", "add a");
    f.push(1, "ann", &base);
    f.queue.mark_merging(1).unwrap();
    let qfile = merge::queue_file(&Project::new(&f.sb.repo), "v1");
    f.queue.save(&qfile).unwrap();

    // What a worker did before dying: apply, journal the candidate, move the target...
    let mwt = f.ctx.merge_worktree.clone();
    let old = f.target_tip();
    f.sb.git([
        "worktree",
        "add",
        "-q",
        "--detach",
        mwt.to_str().unwrap(),
        &old,
    ]);
    f.sb.git_in(&mwt, ["cherry-pick", &commit]);
    let candidate = f.head(&mwt);
    f.sb.git(["merge", "-q", "--ff-only", &candidate]);
    // ...and the mess a later step left: a half cherry-pick, stray files, a running gate.
    f.sb.git_in(&mwt, ["checkout", "-q", "--detach", &old]);
    std::fs::write(mwt.join("a.txt"), "conflicting\n").unwrap();
    f.sb.git_in(&mwt, ["add", "a.txt"]);
    f.sb.git_in(&mwt, ["commit", "-qm", "other"]);
    let picked = std::process::Command::new("git")
        .args(["cherry-pick", &commit])
        .current_dir(&mwt)
        .output()
        .unwrap();
    assert!(
        !picked.status.success(),
        "the cherry-pick was meant to stop halfway"
    );
    std::fs::write(mwt.join("stray.txt"), "junk").unwrap();
    let mut gate = fake_gate(&mwt);
    let journal = merge::Journal {
        task: 1,
        target: "main".into(),
        old_tip: old,
        tip: Some(commit.clone()),
        candidate: Some(candidate.clone()),
        gate_pgid: Some(gate.id()),
    };
    journal.save(&f.ctx.journal).unwrap();

    // The supervisor restarts.
    let mut queue = MergeQueue::load(&qfile).unwrap();
    let recovered = merge::recover(&f.ctx, &mut queue).unwrap();
    assert_eq!(
        recovered,
        [merge::Recovered {
            task: 1,
            state: EntryState::Merged
        }]
    );
    assert_eq!(
        queue.get(1).unwrap().candidate.as_deref(),
        Some(candidate.as_str())
    );
    wait_until(
        "the orphaned gate to be killed",
        Duration::from_secs(5),
        || gate.try_wait().unwrap(),
    );
    f.assert_merge_worktree_clean();
    assert_eq!(
        f.subjects("main").iter().filter(|s| *s == "add a").count(),
        1
    );
    assert_eq!(f.sb.git(["status", "--porcelain"]), "");
    assert!(queue.next_waiting().is_none(), "nothing left to merge");
}

#[test]
fn crash_before_the_ref_moved_recovers_as_waiting_then_lands_once() {
    let mut f = Fixture::new("main", Some("true"));
    let wt = f.agent("ann");
    let base = f.head(&wt);
    let commit = f.commit(&wt, "a.txt", "a", "add a");
    f.push(1, "ann", &base);
    // A first, complete attempt of another task creates the merge worktree.
    let other = f.agent("bob");
    let other_base = f.head(&other);
    f.commit(&other, "b.txt", "b", "add b");
    f.push(2, "bob", &other_base);
    let landed = f.attempt(2);
    merged_tip(&landed);
    assert_eq!(f.record(2, &landed), NextStep::Landed);

    // Task 1 dies halfway through its cherry-pick (the test makes it stop on a conflict).
    f.queue.mark_merging(1).unwrap();
    let mwt = f.ctx.merge_worktree.clone();
    std::fs::write(mwt.join("a.txt"), "in the way\n").unwrap();
    f.sb.git_in(&mwt, ["add", "a.txt"]);
    f.sb.git_in(&mwt, ["commit", "-qm", "in the way"]);
    let picked = std::process::Command::new("git")
        .args(["cherry-pick", &commit])
        .current_dir(&mwt)
        .output()
        .unwrap();
    assert!(!picked.status.success());
    let journal = merge::Journal {
        task: 1,
        target: "main".into(),
        old_tip: f.target_tip(),
        tip: None,
        candidate: None,
        gate_pgid: None,
    };
    journal.save(&f.ctx.journal).unwrap();

    let recovered = merge::recover(&f.ctx, &mut f.queue).unwrap();
    assert_eq!(recovered[0].state, EntryState::Waiting);
    f.assert_merge_worktree_clean();
    assert_eq!(f.queue.next_waiting().unwrap().task, 1);
    let outcome = f.attempt(1);
    merged_tip(&outcome);
    assert_eq!(
        f.subjects("main").iter().filter(|s| *s == "add a").count(),
        1
    );
    assert!(!f.subjects("main").contains(&"in the way".to_owned()));
}

#[test]
fn crash_with_the_journal_lost_still_lands_once() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "a.txt", "a", "add a");
    f.push(1, "ann", &base);
    // The attempt landed, then the supervisor died before recording it, and the in-flight
    // record was lost too.
    merged_tip(&f.attempt(1));
    std::fs::remove_file(&f.ctx.journal).unwrap();
    let recovered = merge::recover(&f.ctx, &mut f.queue).unwrap();
    assert_eq!(recovered[0].state, EntryState::Waiting);
    // The re-attempt finds every commit already on the target.
    let again = f.attempt(1);
    assert_eq!(again.as_ref().unwrap(), &MergeOutcome::NothingToMerge);
    assert_eq!(
        f.subjects("main").iter().filter(|s| *s == "add a").count(),
        1
    );
}

#[test]
fn sync_moves_agents_onto_the_target_and_parks_what_did_not_land() {
    let mut f = Fixture::new("main", None);
    let a = f.agent("ann");
    let b = f.agent("bob");
    let c = f.agent("cy");
    for (id, (wt, name)) in [(&a, "ann"), (&b, "bob"), (&c, "cy")]
        .into_iter()
        .enumerate()
    {
        let base = f.head(wt);
        f.commit(wt, &format!("{name}.txt"), name, &format!("task by {name}"));
        f.push(id as u64 + 1, name, &base);
        merged_tip(&f.attempt(id as u64 + 1));
    }
    let tip = f.target_tip();

    // ann: everything merged -> her branch moves to the target tip, nothing parked.
    assert_eq!(
        merge::sync_agent_worktree(&a, "batty/v1/ann", &tip).unwrap(),
        SyncOutcome::Reset {
            to: tip.clone(),
            parked: None
        }
    );
    assert_eq!(f.head(&a), tip);

    // bob: one more commit nobody queued -> moved off his branch to a ref, never lost.
    let extra = f.commit(&b, "bob-extra.txt", "more", "bob's unmerged work");
    let SyncOutcome::Reset {
        to,
        parked: Some(parked),
    } = merge::sync_agent_worktree(&b, "batty/v1/bob", &tip).unwrap()
    else {
        panic!("wanted bob's work parked")
    };
    assert_eq!((to.as_str(), f.head(&b)), (tip.as_str(), tip.clone()));
    assert_eq!(
        parked,
        format!("refs/batty/v1/rejected/bob-{}", &extra[..10])
    );
    assert_eq!(f.sb.git(["rev-parse", &parked]), extra);
    assert_eq!(
        f.subjects("main")[0],
        "task by cy",
        "the target never got it"
    );

    // cy: uncommitted work -> nothing moves, nothing is lost (the untracked file, which the
    // target has no path for, is not what stops it).
    std::fs::write(c.join("cy.txt"), "half-done edit").unwrap();
    std::fs::write(c.join("new.txt"), "untracked").unwrap();
    f.commit(&c, "cy-more.txt", "x", "cy's next commit");
    let cy_head = f.head(&c);
    let SyncOutcome::SkippedDirty { files } =
        merge::sync_agent_worktree(&c, "batty/v1/cy", &tip).unwrap()
    else {
        panic!("a dirty worktree must be skipped")
    };
    assert_eq!(files, ["cy.txt"]);
    assert_eq!(f.head(&c), cy_head);
    assert_eq!(
        std::fs::read_to_string(c.join("cy.txt")).unwrap(),
        "half-done edit"
    );
    assert_eq!(
        std::fs::read_to_string(c.join("new.txt")).unwrap(),
        "untracked"
    );

    // The wrong branch is an error naming the worktree and both branches.
    let err = merge::sync_agent_worktree(&a, "batty/v1/bob", &tip).unwrap_err();
    assert!(
        err.to_string().contains("not on branch `batty/v1/bob`"),
        "{err}"
    );
}

/// Aider leaves `.aider*` files in its worktree, untracked: they must not keep the branch off
/// the target. An untracked file the target has a path for would be overwritten: that still
/// stops the move, naming it.
#[test]
fn untracked_files_stop_the_move_only_where_the_target_has_a_path() {
    let mut f = Fixture::new("main", None);
    let ann = f.agent("ann");
    let bob = f.agent("bob");
    let rejected = f.commit(&ann, "mine.txt", "rejected\n", "ann's rejected attempt");
    let base = f.head(&bob);
    f.commit(&bob, "docs/guide.md", "bob's guide\n", "bob's task");
    f.push(2, "bob", &base);
    merged_tip(&f.attempt(2));
    let aider = [
        (".aider.chat.history.md", "# aider chat started\n"),
        (".aider.input.history", "+/add src/lib.rs\n"),
        (".aider.tags.cache.v4/cache.db", "sqlite"),
    ];
    for (path, text) in aider {
        let p = ann.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let tip = f.target_tip();
    // `head`: the branch's commit as the supervisor reads it with the tip, or None (read here).
    let prepare_from = |tip: &str, head: Option<&str>| {
        merge::prepare_branch(&merge::Prepare {
            worktree: &ann,
            branch: "batty/v1/ann",
            target_tip: tip,
            head,
            phase: "v1",
            park_as: &merge::rejected_ref("v1", 1, 1),
        })
    };
    let prepare = |tip: &str| prepare_from(tip, None);
    assert_eq!(
        prepare_from(&tip, Some(&rejected)).unwrap(),
        merge::Prepared::Moved {
            to: tip.clone(),
            parked: Some(merge::Parked {
                name: "refs/batty/v1/rejected/1-1".into(),
                commits: 1
            })
        }
    );
    assert_eq!(f.head(&ann), tip);
    assert_eq!(
        f.sb.git(["rev-parse", "refs/batty/v1/rejected/1-1"]),
        rejected
    );
    assert!(
        !ann.join("mine.txt").exists(),
        "the rejected work left the worktree"
    );
    for (path, text) in aider {
        assert_eq!(
            std::fs::read_to_string(ann.join(path)).unwrap(),
            text,
            "{path}"
        );
    }

    // ann keeps notes of her own where bob's next task puts a file: moving would lose them.
    std::fs::write(ann.join("docs/notes.md"), "ann's notes\n").unwrap();
    let base = f.head(&bob);
    f.commit(&bob, "docs/notes.md", "bob's notes\n", "bob's notes");
    f.push(3, "bob", &base);
    merged_tip(&f.attempt(3));
    let tip = f.target_tip();
    let blocked = prepare(&tip).unwrap();
    assert_eq!(
        blocked,
        merge::Prepared::Dirty {
            changed: vec![],
            in_the_way: vec!["docs/notes.md".into()]
        }
    );
    let why = blocked.not_moved_because().unwrap();
    assert_eq!(
        why,
        "untracked `docs/notes.md` would be overwritten by the target's files (commit, move or delete them)"
    );
    assert_ne!(f.head(&ann), tip, "not moved");
    assert_eq!(
        std::fs::read_to_string(ann.join("docs/notes.md")).unwrap(),
        "ann's notes\n"
    );
    // Gone (moved away by a person), the branch moves and Aider's files still stay.
    std::fs::remove_file(ann.join("docs/notes.md")).unwrap();
    assert_eq!(
        prepare(&tip).unwrap(),
        merge::Prepared::Moved {
            to: tip.clone(),
            parked: None
        }
    );
    assert_eq!(f.sb.read("docs/notes.md"), "bob's notes\n");
    assert!(ann.join(".aider.chat.history.md").exists());
}

#[test]
fn work_the_queue_holds_is_not_parked_again_and_a_taken_name_is_never_overwritten() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    let queued = f.commit(&wt, "a.txt", "a", "queued work");
    f.push(1, "ann", &base);
    merge::hold(&f.sb.repo, "v1", 1, &queued).unwrap();
    let tip = f.target_tip();
    let prepare = |park_as: &str| {
        merge::prepare_branch(&merge::Prepare {
            worktree: &wt,
            branch: "batty/v1/ann",
            target_tip: &tip,
            head: None,
            phase: "v1",
            park_as,
        })
    };
    // The queue's ref keeps the work: the branch moves on to the tip with nothing parked.
    assert_eq!(
        prepare(&merge::rejected_ref("v1", 1, 1)).unwrap(),
        merge::Prepared::Moved {
            to: tip.clone(),
            parked: None
        }
    );
    assert!(!f.has_ref("refs/batty/v1/rejected/1-1"));
    // Its merge still lands exactly its range, from the ref, with the branch moved away.
    merged_tip(&f.attempt(1));
    assert_eq!(f.subjects("main")[0], "queued work");
    assert!(!f.has_ref("refs/batty/v1/queue/1"), "released once landed");

    // New work of a rejected attempt goes to the name given; a name taken by other work is
    // refused, and the branch is left as it was.
    f.sb.git_in(&wt, ["reset", "-q", "--hard", "main"]);
    let tip = f.target_tip();
    let other = f.commit(&wt, "b.txt", "b", "some other work");
    f.sb.git(["update-ref", "refs/batty/v1/rejected/2-1", &other]);
    let rejected = f.commit(&wt, "c.txt", "c", "rejected work");
    let prepare = |park_as: &str| {
        merge::prepare_branch(&merge::Prepare {
            worktree: &wt,
            branch: "batty/v1/ann",
            target_tip: &tip,
            head: None,
            phase: "v1",
            park_as,
        })
    };
    let err = prepare("refs/batty/v1/rejected/2-1").unwrap_err();
    assert!(
        err.to_string().contains("already keeps other work"),
        "{err}"
    );
    assert_eq!(f.head(&wt), rejected);
    let moved = prepare("refs/batty/v1/rejected/2-2").unwrap();
    assert_eq!(
        moved,
        merge::Prepared::Moved {
            to: tip.clone(),
            parked: Some(merge::Parked {
                name: "refs/batty/v1/rejected/2-2".into(),
                commits: 2
            })
        }
    );
    assert_eq!(
        f.sb.git(["rev-parse", "refs/batty/v1/rejected/2-2"]),
        rejected
    );
    assert_eq!(f.head(&wt), tip);
}

#[test]
fn an_attempt_applies_exactly_its_range() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    // An earlier attempt's commit stays on the branch below this attempt's base.
    f.commit(&wt, "rejected.txt", "no", "an earlier, rejected attempt");
    let base = f.head(&wt);
    f.commit(&wt, "mine.txt", "yes", "this attempt");
    f.push(1, "ann", &base);
    let repo = f.sb.repo.clone();
    let head = f.head(&wt);
    assert_eq!(
        merge::unlanded(&repo, "main", &base, &head).unwrap().len(),
        1
    );
    let stat = merge::diffstat(&repo, &base, &head).unwrap();
    assert_eq!(
        stat.summary(),
        "1 file changed, 1 insertion(+), 0 deletions(-)"
    );
    assert_eq!(stat.files[0].path, "mine.txt");

    let outcome = f.attempt(1);
    assert!(
        matches!(outcome, Ok(MergeOutcome::Merged { commits: 1, .. })),
        "{outcome:?}"
    );
    assert_eq!(f.subjects("main")[..2], ["this attempt", "ignore batty"]);
    assert!(!f.sb.path("rejected.txt").exists());
    // Now on the target by patch id: neither queued again nor reopened.
    assert!(
        merge::unlanded(&repo, "main", &base, &head)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_commit_whose_change_is_already_on_the_target_is_dropped() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "x.txt", "x\n", "ann adds x");
    f.sb.git_in(
        &wt,
        ["commit", "-q", "--allow-empty", "-m", "ann's empty note"],
    );
    f.commit(&wt, "y.txt", "y\n", "ann adds y");
    f.push(1, "ann", &base);
    // The target got the same change inside a bigger commit (another patch id).
    f.sb.write("x.txt", "x\n");
    f.sb.write("z.txt", "z\n");
    f.sb.git(["add", "x.txt", "z.txt"]);
    f.sb.git(["commit", "-qm", "x and z"]);
    let outcome = f.attempt(1);
    assert!(
        matches!(outcome, Ok(MergeOutcome::Merged { .. })),
        "{outcome:?}"
    );
    assert_eq!(
        f.subjects("main")[..3],
        ["ann adds y", "ann's empty note", "x and z"],
        "the redundant commit dropped, the empty one kept, with {}",
        f.sb.git(["--version"])
    );
    f.assert_merge_worktree_clean();
}

#[test]
fn an_attempt_that_ended_without_its_outcome_recorded_is_not_left_merging() {
    let mut f = Fixture::new("main", None);
    let wt = f.agent("ann");
    let base = f.head(&wt);
    f.commit(&wt, "a.txt", "a", "add a");
    f.push(1, "ann", &base);
    let qfile = merge::queue_file(&Project::new(&f.sb.repo), "v1");
    f.queue.mark_merging(1).unwrap();
    f.queue.save(&qfile).unwrap();
    // The attempt lands, then writing its outcome fails (a full disk): the file still says
    // `merging`, but no attempt runs.
    let entry = f.queue.get(1).unwrap().clone();
    merged_tip(&merge::attempt(&f.ctx, &entry));
    // A process another test thread forks during the attempt shares its lock until it
    // execs; the attempt has ended once that child lets go.
    let mut queue = wait_until("the attempt's lock let go", Duration::from_secs(5), || {
        let q = MergeQueue::load(&qfile).unwrap();
        (q.get(1).unwrap().state != EntryState::Merging).then_some(q)
    });
    let e = queue.get(1).unwrap();
    assert_eq!((e.state, e.interrupted), (EntryState::Waiting, true));
    assert_eq!(queue.next_waiting().map(|e| e.task), Some(1));
    // Recovery settles it as landed, once.
    let recovered = merge::recover(&f.ctx, &mut queue).unwrap();
    assert_eq!(recovered[0].state, EntryState::Merged);
    assert_eq!(queue.merged_count(), 1);
    assert!(queue.next_waiting().is_none());
    assert_eq!(
        f.subjects("main").iter().filter(|s| *s == "add a").count(),
        1
    );
}

/// CPU time (user + system) of this process's finished children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; nothing else is touched.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One merge attempt (gate `true`) on a small repo against a baseline measured in the same
/// run: the bare git work an attempt cannot do without (a cherry-pick in a worktree, the gate,
/// a compare-and-swap of the branch). Wall time and the CPU time of the processes it runs,
/// medians of 15, interleaved. Run with
/// `cargo test --test it merge_queue -- --ignored --nocapture attempt_timing`.
#[test]
#[ignore]
fn attempt_timing() {
    let mut f = Fixture::new("main", Some("true"));
    let wt = f.agent("ann");
    let scratch = f.sb.root.join("scratch");
    f.sb.git(["branch", "scratch", "main"]);
    f.sb.git([
        "worktree",
        "add",
        "-q",
        "--detach",
        scratch.to_str().unwrap(),
        "main",
    ]);
    let (mut wall, mut cpu, mut bare_wall, mut bare_cpu) = (vec![], vec![], vec![], vec![]);
    for id in 1..=15 {
        let base = f.head(&wt);
        let commit = f.commit(&wt, &format!("f{id}.txt"), "x", &format!("task {id}"));
        f.push(id, "ann", &base);
        let (t, c) = (Instant::now(), children_cpu());
        merged_tip(&f.attempt(id));
        wall.push(t.elapsed());
        cpu.push(children_cpu() - c);

        let (t, c) = (Instant::now(), children_cpu());
        let old = f.sb.git_in(&scratch, ["rev-parse", "HEAD"]);
        f.sb.git_in(&scratch, ["cherry-pick", "--allow-empty", &commit]);
        std::process::Command::new("sh")
            .args(["-c", "true"])
            .current_dir(&scratch)
            .status()
            .unwrap();
        let new = f.sb.git_in(&scratch, ["rev-parse", "HEAD"]);
        f.sb.git(["update-ref", "refs/heads/scratch", &new, &old]);
        bare_wall.push(t.elapsed());
        bare_cpu.push(children_cpu() - c);
    }
    let (w, c, bw, bc) = (
        median(wall),
        median(cpu),
        median(bare_wall),
        median(bare_cpu),
    );
    println!(
        "attempt median wall {w:?} ({:.2}x bare git {bw:?}), cpu {c:?} ({:.2}x bare git {bc:?})",
        w.as_secs_f64() / bw.as_secs_f64(),
        c.as_secs_f64() / bc.as_secs_f64()
    );
}
