//! Hostile or mistaken inputs: shell metacharacters in parameter and sweep
//! values, outputs that lead out of the workspace, and names and paths with
//! spaces and non-ASCII letters.

use std::fs;
use std::os::unix::fs::symlink;

use crate::support::{stage, Workspace};

/// Values that would run `touch` if a shell saw them unquoted.
const HOSTILE: [&str; 6] = [
    "1; touch pwned1",
    "$(touch pwned2)",
    "`touch pwned3`",
    "x' ; touch pwned4 ; '",
    "a && touch pwned5 | cat",
    "\"; touch pwned6; \"",
];

fn assert_nothing_touched(workspace: &Workspace) {
    for n in 1..=6 {
        assert!(!workspace.exists(&format!("pwned{n}")), "pwned{n} was created");
    }
}

#[test]
fn sweep_values_stay_quoted() {
    let workspace = Workspace::new();
    let values: Vec<String> = HOSTILE.iter().map(|v| format!("{v:?}")).collect();
    let text = format!(
        "name = \"p\"\n[params]\nlabel = \"x\"\n[sweep]\nlabel = [{}]\n\n{}",
        values.join(", "),
        stage("a", "mkdir -p out && echo ${label} > out/${xp.variant}.txt", &[], &["out/${xp.variant}.txt"])
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("6 ran"), "{}", run.stderr);
    assert_nothing_touched(&workspace);
    let mut written: Vec<String> = fs::read_dir(workspace.path().join("out"))
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<String> = HOSTILE.iter().map(|v| format!("{v}\n")).collect();
    expected.sort();
    assert_eq!(written, expected);
}

#[test]
fn override_values_stay_quoted() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nlabel = \"x\"\n\n{}",
        stage("a", "echo ${label} > a.txt", &[], &["a.txt"])
    );
    workspace.write("p.toml", &text);
    // `-S` reads a value written in TOML quotes as that string, so the last
    // value loses its outer quotes; the shell still gets one word.
    for (value, stored) in HOSTILE.iter().zip(HOSTILE.iter().take(5).copied().chain(["; touch pwned6; "])) {
        workspace.xp(&["run", "p.toml", "-S", &format!("label={value}")]).success();
        assert_nothing_touched(&workspace);
        assert_eq!(workspace.read("a.txt"), format!("{stored}\n"));
    }
}

#[test]
fn parameter_cannot_move_output_out() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nname = \"x\"\n\n{}",
        stage("a", "true", &[], &["out/${name}.txt"])
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml", "-S", "name=../../escape"]).expect_code(2);
    assert!(run.stderr.contains("leaves the workspace"), "{}", run.stderr);
    assert_eq!(workspace.executions("a"), 0);
}

/// Returns a workspace and, outside it, a folder that contains `keep.txt`.
fn with_outside() -> (Workspace, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep.txt"), "keep\n").unwrap();
    (Workspace::new(), outside)
}

#[test]
fn output_through_symlinked_folder_is_rejected() {
    let (workspace, outside) = with_outside();
    symlink(outside.path(), workspace.path().join("link")).unwrap();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo x > link/keep.txt", &[], &["link/keep.txt"])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
    assert!(
        run.stderr.contains("output `link/keep.txt` of stage `p/a` leads outside the workspace through the symbolic link `link`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("p.toml:7:12"), "{}", run.stderr);
    assert_eq!(workspace.executions("a"), 0);
    assert_eq!(fs::read_to_string(outside.path().join("keep.txt")).unwrap(), "keep\n");
}

#[test]
fn symlinked_output_file_is_rejected() {
    let (workspace, outside) = with_outside();
    symlink(outside.path().join("keep.txt"), workspace.path().join("out.txt")).unwrap();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo x > out.txt", &[], &["out.txt"])));
    let run = workspace.xp(&["status", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("leads outside the workspace through the symbolic link `out.txt`"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(outside.path().join("keep.txt")).unwrap(), "keep\n");
}

#[test]
fn dangling_symlink_out_is_rejected() {
    let (workspace, outside) = with_outside();
    symlink(outside.path().join("missing"), workspace.path().join("link")).unwrap();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo x > link/a.txt", &[], &["link/a.txt"])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("through the symbolic link `link`"), "{}", run.stderr);
    assert!(!outside.path().join("missing").exists());
}

#[test]
fn symlink_inside_workspace_is_accepted() {
    let workspace = Workspace::new();
    fs::create_dir(workspace.path().join("real")).unwrap();
    symlink("real", workspace.path().join("link")).unwrap();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo x > link/a.txt", &[], &["link/a.txt"])));
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.read("real/a.txt"), "x\n");
}

#[test]
fn symlink_made_by_earlier_stage_is_caught() {
    let (workspace, outside) = with_outside();
    let target = outside.path().display().to_string();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", &format!("ln -s '{target}' link && echo a > a.txt"), &[], &["a.txt"]),
        stage("b", "echo b > link/keep.txt", &["a.txt"], &["link/keep.txt"]),
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("FAILED  p/b"), "{}", run.stderr);
    assert!(run.stderr.contains("leads outside the workspace through the symbolic link `link`"), "{}", run.stderr);
    assert_eq!(workspace.executions("b"), 0);
    assert_eq!(fs::read_to_string(outside.path().join("keep.txt")).unwrap(), "keep\n");
}

#[test]
fn unicode_and_spaces_end_to_end() {
    let workspace = Workspace::with_prefix("wörk späce ü ");
    assert!(workspace.path().to_string_lossy().contains("wörk späce"));
    workspace.write("données d'entrée/été 2026.txt", "3\n");
    let text = "name = \"pipé\"\n\
                [params]\nlabel = \"naïve café ☕\"\n\n\
                [stages.\"préparer\"]\nkind = \"shell\"\n\
                command = \"mkdir -p 'résultats dir' && cat 'données d'\\\\''entrée/été 2026.txt' > 'résultats dir/fichier ü.txt' && echo ${label} >> 'résultats dir/fichier ü.txt'\"\n\
                inputs = [\"données d'entrée/été 2026.txt\"]\n\
                outputs = [\"résultats dir/fichier ü.txt\"]\n\n\
                [stages.\"数える\"]\nkind = \"shell\"\n\
                command = \"wc -l < 'résultats dir/fichier ü.txt' > 'nombre ☃.txt'\"\n\
                inputs = [\"résultats dir/fichier ü.txt\"]\n\
                outputs = [\"nombre ☃.txt\"]\n";
    workspace.write("pipé line.toml", text);
    let run = workspace.xp(&["run", "pipé line.toml"]).success();
    assert!(run.stderr.contains("done  pipé/préparer"), "{}", run.stderr);
    assert!(run.stderr.contains("done  pipé/数える"), "{}", run.stderr);
    assert_eq!(workspace.read("résultats dir/fichier ü.txt"), "3\nnaïve café ☕\n");
    assert_eq!(workspace.read("nombre ☃.txt").trim(), "2");
    assert!(workspace.exists("cache/logs/pipé/préparer.log"));

    let rerun = workspace.xp(&["run", "pipé line.toml"]).success();
    assert!(rerun.stderr.contains("2 cached"), "{}", rerun.stderr);
    fs::remove_dir_all(workspace.path().join("résultats dir")).unwrap();
    let restored = workspace.xp(&["run", "pipé line.toml"]).success();
    assert!(restored.stderr.contains("restored  pipé/préparer"), "{}", restored.stderr);
    assert_eq!(workspace.read("résultats dir/fichier ü.txt"), "3\nnaïve café ☕\n");

    let status = workspace.xp(&["status", "pipé line.toml", "--force", "数える"]).success();
    assert!(status.stdout.contains("run      pipé/数える"), "{}", status.stdout);
    let dag = workspace.xp(&["dag", "pipé line.toml"]).success();
    assert!(dag.stdout.contains("\"pipé/préparer\" -> \"pipé/数える\""), "{}", dag.stdout);

    // Run from elsewhere with -C and a path with spaces.
    let parent = workspace.path().parent().unwrap();
    let name = workspace.path().file_name().unwrap().to_string_lossy().into_owned();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xp"))
        .args(["-C", &name, "status", "pipé line.toml"])
        .current_dir(parent)
        .env_remove("XP_CACHE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 stages: 2 cached, 0 to run"), "{stdout}");
}

#[test]
fn stage_name_with_space_is_rejected() {
    let workspace = Workspace::new();
    workspace.write("p.toml", "name = \"p\"\n[stages.\"my stage\"]\nkind = \"shell\"\ncommand = \"true\"\n");
    let run = workspace.xp(&["status", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("invalid stage name `my stage`"), "{}", run.stderr);
}

#[test]
fn hand_edited_output_is_replaced_with_warning() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo good > a.txt", &[], &["a.txt"])));
    workspace.xp(&["run", "p.toml"]).success();
    workspace.write("a.txt", "edited by hand\n");
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(
        run.stderr.contains("output `a.txt` differs from the stored result; replacing it with the cached copy"),
        "{}",
        run.stderr
    );
    assert_eq!(workspace.read("a.txt"), "good\n");
    assert_eq!(workspace.executions("a"), 1);
    // A missing output is restored without the warning.
    fs::remove_file(workspace.path().join("a.txt")).unwrap();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(!run.stderr.contains("replacing it"), "{}", run.stderr);
}
