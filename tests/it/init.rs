//! `batty init`: config, board and .gitignore; never overwrites a board.

use crate::common::Sandbox;

#[test]
fn init_writes_config_board_and_gitignore() {
    let sb = Sandbox::new();
    sb.write(".gitignore", "target");
    let out = sb.batty(["init"]).ok();
    assert_eq!(
        out.stdout,
        "created .batty/config.yml\ncreated board .batty/kanban/main/\nupdated .gitignore\n\
         next: batty task add --phase main \"First task\"\n"
    );
    assert_eq!(
        sb.read(".batty/config.yml"),
        batty::config::DEFAULT_CONFIG_YML
    );
    assert_eq!(
        sb.read(".batty/kanban/main/config.yml"),
        batty::board::default_config_yml("main")
    );
    assert!(sb.path(".batty/kanban/main/tasks").is_dir());
    assert_eq!(
        sb.read(".gitignore"),
        "target\n.batty/worktrees/\n.batty/logs/\n.batty/run/\n"
    );
    // The board reads back with kanban-md's v11 defaults.
    let board = batty::board::Board::load(&sb.path(".batty/kanban/main")).unwrap();
    assert_eq!(board.config().version, 11);
    assert!(board.tasks().is_empty() && board.problems().is_empty());
}

#[test]
fn init_refuses_an_existing_board_and_keeps_existing_files() {
    let sb = Sandbox::new();
    sb.write(".batty/config.yml", "# mine\n");
    sb.batty(["init", "--phase", "v1"]).ok();
    assert_eq!(sb.read(".batty/config.yml"), "# mine\n");
    sb.batty(["init", "--phase", "v1"])
        .fails(1)
        .error_mentions("the board `.batty/kanban/v1` already exists");
    let out = sb.batty(["init", "--phase", "v2"]).ok();
    assert!(
        !out.stdout.contains(".gitignore"),
        "gitignore already complete: {}",
        out.stdout
    );
    sb.batty(["init", "--phase", "../x"])
        .fails(1)
        .error_mentions("invalid phase name");
}

#[test]
fn init_from_a_subfolder_uses_the_repository_top() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("src/deep")).unwrap();
    sb.batty(["init"]).cwd(sb.path("src/deep")).ok();
    assert!(sb.path(".batty/kanban/main/config.yml").is_file());
}
