//! `ivr listen` with and without a sound card. ALSA is pointed at a throw-away configuration through
//! HOME (`~/.asoundrc`), so the tests do not depend on the machine's hardware.

mod common;
use common::*;

fn home_with_asoundrc(name: &str, asoundrc: &str) -> std::path::PathBuf {
    let home = tempdir(name);
    std::fs::write(home.join(".asoundrc"), asoundrc).unwrap();
    home
}

#[test]
fn listen_runs_on_a_null_sound_device_and_stops_on_time() {
    let home = home_with_asoundrc("alsa-null", "pcm.!default { type null }\nctl.!default { type hw card 0 }\n");
    let (ok, out, err) = run(ivr().env("HOME", &home).args(["listen", "--seconds", "1.5"]));
    assert!(ok, "listen on the null device: {err}");
    assert!(err.contains("listening"), "{err}");
    assert!(out.trim().is_empty(), "silence transcribes to nothing: {out:?}");
}

#[test]
fn listen_without_a_usable_sound_card_fails_with_a_clear_message() {
    let home = home_with_asoundrc("alsa-none", "pcm.!default { type hw card 42 }\nctl.!default { type hw card 42 }\n");
    let (ok, _, err) = run(ivr().env("HOME", &home).args(["listen", "--seconds", "1"]));
    assert!(!ok, "no sound card: must fail");
    assert!(err.contains("sound device"), "{err}");
}
