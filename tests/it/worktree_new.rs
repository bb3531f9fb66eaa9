//! `batty work --new`: recreating worktrees never loses work without `--force`; leftovers.

use crate::common::{Sandbox, shell_project as project};

fn agent(sb: &Sandbox) -> String {
    let st: serde_json::Value = serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap();
    st["agents"][0]["name"].as_str().unwrap().to_owned()
}

#[test]
fn new_refuses_on_dirty_or_unmerged_worktree_and_force_recreates() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let name = agent(&sb);
    let wt = sb.path(format!(".batty/worktrees/v1/{name}"));
    std::fs::write(wt.join("draft.rs"), "fn main() {}\n").unwrap();

    let out = sb.batty(["work", "v1", "--new"]).fails(1);
    out.error_mentions(&format!("`{name}`: uncommitted changes in `draft.rs`"));
    assert!(wt.join("draft.rs").exists());

    sb.git_in(&wt, ["add", "draft.rs"]);
    sb.git_in(&wt, ["commit", "-q", "-m", "draft the thing"]);
    let out = sb.batty(["work", "v1", "--new"]).fails(1);
    out.error_mentions("1 commit(s) not on the base branch");
    out.error_mentions("draft the thing");

    sb.batty(["work", "v1", "--new", "--force"]).ok();
    assert!(!wt.join("draft.rs").exists());
    assert_eq!(agent(&sb), name, "same agent, fresh worktree");
    assert_eq!(sb.git_in(&wt, ["log", "--format=%s"]), "initial");
    let windows = sb.tmux(["list-windows", "-t", "=batty-v1", "-F", "#{window_name}"]);
    assert_eq!(windows.lines().count(), 2, "{windows}");
}

#[test]
fn worktree_copy_and_unknown_folder_moved_aside() {
    let sb = project(
        "worktree:\n  copy: [\".env\", \"conf/*.local\"]\n  post_create: \"echo set-up > setup.txt\"\n",
    );
    sb.write(".env", "SECRET=1\n");
    sb.write("conf/a.local", "x\n");
    // A folder where a worktree belongs that git does not know.
    sb.write(".batty/worktrees/v1/old-otter/stray.txt", "keep me\n");
    let out = sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    assert!(
        out.stdout.contains("was not a git worktree; moved it to"),
        "{}",
        out.stdout
    );
    let wt = sb.path(".batty/worktrees/v1/old-otter");
    assert_eq!(
        std::fs::read_to_string(wt.join(".env")).unwrap(),
        "SECRET=1\n"
    );
    assert!(wt.join("conf/a.local").exists());
    assert_eq!(
        std::fs::read_to_string(wt.join("setup.txt")).unwrap(),
        "set-up\n"
    );
    let orphans: Vec<_> = std::fs::read_dir(sb.path(".batty/worktrees/v1/.orphaned"))
        .unwrap()
        .collect();
    assert_eq!(orphans.len(), 1);
}

#[test]
fn branch_checked_out_elsewhere_is_reported() {
    let sb = project("");
    let elsewhere = sb.root.join("elsewhere");
    sb.git([
        "worktree",
        "add",
        "-q",
        "-b",
        "batty/v1/old-otter",
        elsewhere.to_str().unwrap(),
    ]);
    let out = sb
        .batty(["work", "v1", "-n", "1", "--agent", "shell"])
        .fails(1);
    assert!(
        out.stderr.contains(&format!(
            "branch `batty/v1/old-otter` is already checked out in another worktree at `{}`",
            elsewhere.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn new_worktrees_are_fully_checked_out_and_run_the_post_checkout_hook() {
    let sb = project("");
    sb.write("src/lib.rs", "pub fn f() {}\n");
    sb.git(["add", "src/lib.rs"]);
    sb.git(["commit", "-q", "-m", "a file in a folder"]);
    let hook = sb.path(".git/hooks/post-checkout");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho \"$3\" > .post-checkout-ran\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    sb.batty(["work", "v1", "-n", "2", "--agent", "shell"]).ok();
    let st: serde_json::Value = serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap();
    for a in st["agents"].as_array().unwrap() {
        let wt = std::path::PathBuf::from(a["worktree"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(wt.join("src/lib.rs")).unwrap(),
            "pub fn f() {}\n"
        );
        // A clean checkout: every tracked file in place and in the index.
        assert_eq!(
            sb.git_in(&wt, ["status", "--porcelain", "--untracked-files=no"]),
            ""
        );
        // The hook ran for a branch checkout (its third argument is 1).
        assert_eq!(
            std::fs::read_to_string(wt.join(".post-checkout-ran")).unwrap(),
            "1\n"
        );
    }
}

#[test]
fn work_already_landed_by_cherry_pick_is_not_at_risk() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let name = agent(&sb);
    let wt = sb.path(format!(".batty/worktrees/v1/{name}"));
    std::fs::write(wt.join("landed.rs"), "fn landed() {}\n").unwrap();
    sb.git_in(&wt, ["add", "landed.rs"]);
    sb.git_in(&wt, ["commit", "-q", "-m", "landed work"]);
    std::fs::write(wt.join("pending.rs"), "fn pending() {}\n").unwrap();
    sb.git_in(&wt, ["add", "pending.rs"]);
    sb.git_in(&wt, ["commit", "-q", "-m", "pending work"]);
    // The merge queue lands by cherry-picking: main gets an equal commit, not the same one.
    let landed = sb.git_in(&wt, ["rev-parse", "HEAD~1"]);
    sb.git(["cherry-pick", &landed]);

    let out = sb.batty(["stop", "v1", "--clean"]).fails(1);
    out.error_mentions("pending work");
    assert!(!out.stderr.contains("landed work"), "{}", out.stderr);

    sb.git_in(&wt, ["reset", "-q", "--hard", "HEAD~1"]);
    sb.batty(["stop", "v1", "--clean"]).ok();
    assert!(!wt.exists());
}

/// A folder with a `git` that says it is `version` and otherwise runs the real one.
fn fake_git(sb: &Sandbox, version: &str) -> std::path::PathBuf {
    let real = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("git"))
                .find(|g| g.is_file())
        })
        .expect("git on PATH");
    let dir = sb.root.join("old-git");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'git version {version}'; exit 0; }}\nexec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn work_and_init_refuse_a_git_older_than_2_30_in_one_line() {
    let sb = project("");
    let dir = fake_git(&sb, "2.25.1");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    for args in [
        &["work", "v1", "-n", "1", "--agent", "shell"][..],
        &["init"][..],
    ] {
        sb.batty(args)
            .env("PATH", &path)
            .fails(1)
            .error_mentions("git 2.25.1 is too old: batty needs git 2.30.0 or newer; upgrade it");
    }
    assert!(!sb.path(".batty/worktrees").exists(), "nothing was set up");
    // The minimum itself is fine.
    let dir = fake_git(&sb, "2.30.0");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"])
        .env("PATH", &path)
        .ok();
}

#[test]
fn a_calling_gits_repository_variables_do_not_leak_in() {
    // What batty sees when run from a hook of another repository.
    let other = Sandbox::new();
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"])
        .env("GIT_DIR", other.repo.join(".git"))
        .env("GIT_WORK_TREE", &other.repo)
        .env("GIT_INDEX_FILE", other.repo.join(".git/index"))
        .ok();
    let name = agent(&sb);
    assert_eq!(
        sb.git([
            "branch",
            "--list",
            "batty/v1/*",
            "--format=%(refname:short)"
        ]),
        format!("batty/v1/{name}")
    );
    assert_eq!(
        other.git(["branch", "--list", "batty/*"]),
        "",
        "the other repository is untouched"
    );
    assert_eq!(other.git(["worktree", "list"]).lines().count(), 1);
}
