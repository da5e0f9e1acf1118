//! Each class of pipeline-file error: message, location, hint and exit status 2.

use crate::support::Workspace;

/// Runs `xp status` on `text` and returns stderr, asserting exit status 2.
fn rejected(text: &str) -> String {
    let workspace = Workspace::new();
    workspace.write("p.toml", text);
    let run = workspace.xp(&["status", "p.toml"]).expect_code(2);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

#[test]
fn unknown_stage_key_suggests_field() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\ncomand = \"true\"\n");
    assert!(stderr.contains("unknown key `comand`"), "{stderr}");
    assert!(stderr.contains("--> p.toml:4:1"), "{stderr}");
    assert!(stderr.contains("did you mean `command`?"), "{stderr}");
    assert!(stderr.contains("4 | comand = \"true\""), "{stderr}");
}

#[test]
fn unknown_top_level_key_suggests_field() {
    let stderr = rejected("name = \"p\"\nparam = { a = 1 }\n");
    assert!(stderr.contains("unknown key `param`"), "{stderr}");
    assert!(stderr.contains("did you mean `params`?"), "{stderr}");
}

#[test]
fn wrong_type_names_location() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\nthreads = \"two\"\n");
    assert!(stderr.contains("invalid type"), "{stderr}");
    assert!(stderr.contains("p.toml:5:11"), "{stderr}");
}

#[test]
fn syntax_error_names_location() {
    let stderr = rejected("name = \"p\"\n[stages.a\n");
    assert!(stderr.contains("p.toml:2:"), "{stderr}");
}

#[test]
fn missing_stage_suggests_name() {
    let stderr = rejected(
        "name = \"p\"\n[stages.train]\nkind = \"shell\"\ncommand = \"true\"\n\
         [stages.eval]\nkind = \"shell\"\ncommand = \"true\"\nneeds = [\"trian\"]\n",
    );
    assert!(stderr.contains("stage `p/trian` not found"), "{stderr}");
    assert!(stderr.contains("p.toml:8:10"), "{stderr}");
    assert!(stderr.contains("did you mean `p/train`?"), "{stderr}");
}

#[test]
fn duplicate_output_is_rejected() {
    let stderr = rejected(
        "name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"x.txt\"]\n\
         [stages.b]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"./x.txt\"]\n",
    );
    assert!(stderr.contains("output `x.txt` of stage `p/b` is also `x.txt` of stage `p/a`"), "{stderr}");
    assert!(stderr.contains("p.toml:9:12"), "{stderr}");
}

#[test]
fn nested_output_is_rejected() {
    let stderr = rejected(
        "name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"out\"]\n\
         [stages.b]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"out/x.txt\"]\n",
    );
    assert!(stderr.contains("overlaps the output `out` of stage `p/a`"), "{stderr}");
}

#[test]
fn cycle_is_printed() {
    let stderr = rejected(
        "name = \"p\"\n\
         [stages.a]\nkind = \"shell\"\ncommand = \"true\"\nneeds = [\"c\"]\n\
         [stages.b]\nkind = \"shell\"\ncommand = \"true\"\nneeds = [\"a\"]\n\
         [stages.c]\nkind = \"shell\"\ncommand = \"true\"\nneeds = [\"b\"]\n",
    );
    assert!(stderr.contains("dependency cycle: p/a -> p/b -> p/c -> p/a"), "{stderr}");
    assert!(stderr.contains("p.toml:"), "{stderr}");
}

#[test]
fn cycle_through_files_is_printed() {
    let stderr = rejected(
        "name = \"p\"\n\
         [stages.a]\nkind = \"shell\"\ncommand = \"true\"\ninputs = [\"b.txt\"]\noutputs = [\"a.txt\"]\n\
         [stages.b]\nkind = \"shell\"\ncommand = \"true\"\ninputs = [\"a.txt\"]\noutputs = [\"b.txt\"]\n",
    );
    assert!(stderr.contains("dependency cycle: p/a -> p/b -> p/a"), "{stderr}");
}

#[test]
fn unknown_kind_suggests_kind() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shel\"\ncommand = \"true\"\n");
    assert!(stderr.contains("unknown stage kind `shel`"), "{stderr}");
    assert!(stderr.contains("did you mean `shell`?"), "{stderr}");
    assert!(stderr.contains("p.toml:3:8"), "{stderr}");
}

#[test]
fn unknown_parameter_reference_suggests_param() {
    let stderr = rejected(
        "name = \"p\"\n[params]\nrate = 1\n[stages.a]\nkind = \"shell\"\ncommand = \"echo ${rat}\"\n",
    );
    assert!(stderr.contains("parameter `rat` not found"), "{stderr}");
    assert!(stderr.contains("p.toml:6:17"), "{stderr}");
    assert!(stderr.contains("did you mean `rate`?"), "{stderr}");
}

#[test]
fn parameter_default_of_wrong_type() {
    let stderr = rejected("name = \"p\"\n[params]\nlr = { type = \"float\", default = \"fast\" }\n");
    assert!(stderr.contains("default of parameter `lr` is a string, expected a float"), "{stderr}");
    assert!(stderr.contains("p.toml:3:"), "{stderr}");
}

#[test]
fn shell_stage_without_command() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\n");
    assert!(stderr.contains("a `shell` stage needs a `command`"), "{stderr}");
}

#[test]
fn output_outside_workspace_is_rejected() {
    let stderr = rejected(
        "name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"../x\"]\n",
    );
    assert!(stderr.contains("output `../x` leaves the workspace"), "{stderr}");
    let stderr = rejected(
        "name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"/tmp/x\"]\n",
    );
    assert!(stderr.contains("output `/tmp/x` is absolute"), "{stderr}");
}

#[test]
fn override_of_unknown_param() {
    let workspace = Workspace::new();
    workspace.write("p.toml", "name = \"p\"\n[params]\nrate = 1\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\n");
    let run = workspace.xp(&["status", "p.toml", "-S", "rte=2"]).expect_code(2);
    assert!(run.stderr.contains("parameter `rte` not found"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `rate`?"), "{}", run.stderr);
}

#[test]
fn override_of_wrong_type() {
    let workspace = Workspace::new();
    workspace.write("p.toml", "name = \"p\"\n[params]\nrate = 1\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\n");
    let run = workspace.xp(&["status", "p.toml", "-S", "rate=fast"]).expect_code(2);
    assert!(run.stderr.contains("expected an int for parameter `rate`"), "{}", run.stderr);
}

#[test]
fn missing_pipeline_file() {
    let workspace = Workspace::new();
    let run = workspace.xp(&["status", "nope.toml"]).expect_code(2);
    assert!(run.stderr.contains("failed to read pipeline file `nope.toml`"), "{}", run.stderr);
}

#[test]
fn missing_include_names_including_line() {
    let stderr = rejected("include = [\"other.toml\"]\n");
    assert!(stderr.contains("failed to read pipeline file"), "{stderr}");
    assert!(stderr.contains("p.toml:1:12"), "{stderr}");
}

#[test]
fn include_cycle_is_rejected() {
    let workspace = Workspace::new();
    workspace.write("a.toml", "include = [\"b.toml\"]\n");
    workspace.write("b.toml", "include = [\"a.toml\"]\n");
    let run = workspace.xp(&["status", "a.toml"]).expect_code(2);
    assert!(run.stderr.contains("include cycle"), "{}", run.stderr);
}

#[test]
fn error_rendering_has_caret_under_key() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\ncomand = \"true\"\n");
    let expected = "error: unknown key `comand`\n  --> p.toml:4:1\n  |\n4 | comand = \"true\"\n  | ^^^^^^\n  = help: did you mean `command`?\n";
    assert_eq!(stderr, expected);
}

#[test]
fn profile_with_unknown_parameter() {
    let stderr = rejected("name = \"p\"\n[params]\nepochs = 3\n[profiles.quick]\nepoch = 1\n");
    assert!(stderr.contains("profile `quick` sets `epoch`"), "{stderr}");
    assert!(stderr.contains("p.toml:5:9"), "{stderr}");
    assert!(stderr.contains("did you mean `epochs`?"), "{stderr}");
}

#[test]
fn builtin_stage_rejects_command() {
    let stderr = rejected("name = \"p\"\n[stages.t]\nkind = \"train\"\ncommand = \"true\"\n");
    assert!(stderr.contains("a `train` stage takes no `command`"), "{stderr}");
    assert!(stderr.contains("p.toml:4:11"), "{stderr}");
}

#[test]
fn output_overlapping_cache_is_rejected() {
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"cache\"]\n");
    assert!(stderr.contains("output `cache` of stage `p/a` overlaps the cache folder `cache`"), "{stderr}");
    let stderr = rejected("name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\noutputs = [\"cache/index/x\"]\n");
    assert!(stderr.contains("overlaps the cache folder"), "{stderr}");
}

#[test]
fn input_that_is_own_output() {
    let stderr = rejected(
        "name = \"p\"\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\ninputs = [\"a.txt\"]\noutputs = [\"a.txt\"]\n",
    );
    assert!(stderr.contains("`a.txt` is both an input and an output of stage `p/a`"), "{stderr}");
}

#[test]
fn non_finite_override_is_rejected() {
    let workspace = Workspace::new();
    workspace.write("p.toml", "name = \"p\"\n[params]\nf = 1.5\n[stages.a]\nkind = \"shell\"\ncommand = \"true\"\n");
    for value in ["nan", "inf", "-inf"] {
        let run = workspace.xp(&["status", "p.toml", "-S", &format!("f={value}")]).expect_code(2);
        assert!(run.stderr.contains("expected a float for parameter `f`"), "{value}: {}", run.stderr);
    }
}
