use super::car::Action;
use super::policy::Fixed;
use super::score::{score, NoRecorder};
use super::world::Config;

#[test]
fn prefix_scores() {
    for n in [20usize, 30, 40] {
    let nothing = score(Config::default(), n, 2000, &mut Fixed(Action::Nothing), &mut NoRecorder);
    let slow = score(Config::default(), n, 2000, &mut Fixed(Action::Decelerate), &mut NoRecorder);
    let clean = score(Config { faithful: false, ..Config::default() }, n, 2000, &mut Fixed(Action::Nothing), &mut NoRecorder);
    eprintln!("{n}: {} {} {} {} clean {}", nothing.median, nothing.runs[n-1], slow.median, slow.runs[n-1], clean.median);
    }
}
